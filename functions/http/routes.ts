/**
 * The API's routes, declared once: the local server (local/server.ts) dispatches with this table
 * and the CDK stack (infra/stack.ts) creates one HTTP API route and one function per entry,
 * granting each exactly the access it declares.
 */
import type { Access } from '../adapters/dynamodb/grants.js';

export type { Access };

export interface Route {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE';
  path: string;
  /** File name under functions/http/ (without .ts), exporting `handler`. */
  handler: string;
  agents: Access;
  records: Access;
  /** May start the stop workflow. */
  startsWorkflow?: boolean;
  /** May start the fleet stop workflow. */
  startsFleetWorkflow?: boolean;
  /** Publishes lifecycle events. */
  publishes?: boolean;
  /** Puts jobs on the worker's queue: asynchronous messages, and the close of a stop it forces. */
  queuesMessages?: boolean;
  /** Runs agents' runtimes (an llm agent's key may be in Secrets Manager). */
  runsRuntimes?: boolean;
  /** Checks an llm agent's key against its base URL (create, update): may read the agents-llm/ secrets. */
  checksModelKeys?: boolean;
  /** Answers without an API key (the health check: it reads nothing and holds no data). */
  public?: true;
  /** Lambda timeout; the stop route waits up to the stop window, messages up to the runtime. */
  timeoutSeconds?: number;
}

/** API Gateway HTTP API's integration timeout, and the longest a route's function may run under it. */
export const API_GATEWAY_LIMIT_S = 30;
export const LONGEST_ROUTE_TIMEOUT_S = API_GATEWAY_LIMIT_S - 1;

/** The route's name in the stack (function and integration ids): `stop-agent` -> `StopAgent`. */
export const routeName = (route: Pick<Route, 'handler'>) => route.handler.replace(/(^|-)(\w)/g, (_, __, c: string) => c.toUpperCase());

export const routes: readonly Route[] = [
  { method: 'POST', path: '/agents', handler: 'create-agent', agents: 'write', records: 'write', checksModelKeys: true },
  { method: 'GET', path: '/agents', handler: 'list-agents', agents: 'read', records: 'read' },
  { method: 'GET', path: '/agents/counts', handler: 'count-agents', agents: 'read', records: 'none' },
  // Before /agents/{agentId}...: a literal segment wins, as in API Gateway.
  { method: 'POST', path: '/agents/stop', handler: 'stop-fleet', agents: 'none', records: 'write', startsFleetWorkflow: true },

  { method: 'GET', path: '/agents/{agentId}', handler: 'get-agent', agents: 'read', records: 'read' },
  { method: 'PATCH', path: '/agents/{agentId}', handler: 'update-agent', agents: 'write', records: 'write', checksModelKeys: true },
  { method: 'DELETE', path: '/agents/{agentId}', handler: 'delete-agent', agents: 'write', records: 'write' },
  { method: 'POST', path: '/agents/{agentId}/start', handler: 'start-agent', agents: 'write', records: 'read', publishes: true, checksModelKeys: true },
  {
    method: 'POST',
    path: '/agents/{agentId}/stop',
    handler: 'stop-agent',
    agents: 'write',
    records: 'write',
    startsWorkflow: true,
    publishes: true,
    queuesMessages: true,
    timeoutSeconds: LONGEST_ROUTE_TIMEOUT_S,
  },
  {
    method: 'POST',
    path: '/agents/{agentId}/messages',
    handler: 'send-message',
    agents: 'write',
    records: 'write',
    publishes: true,
    queuesMessages: true,
    runsRuntimes: true,
    timeoutSeconds: LONGEST_ROUTE_TIMEOUT_S,
  },
  { method: 'POST', path: '/agents/{agentId}/signing-secret', handler: 'rotate-signing-secret', agents: 'write', records: 'write' },
  { method: 'GET', path: '/agents/{agentId}/messages', handler: 'list-messages', agents: 'read', records: 'read' },
  { method: 'GET', path: '/agents/{agentId}/messages/{messageId}', handler: 'get-message', agents: 'read', records: 'read' },
  { method: 'GET', path: '/agents/{agentId}/stops', handler: 'list-stops', agents: 'read', records: 'read' },
  // For load balancers and uptime checks: public, reads nothing, says only that the API answers.
  { method: 'GET', path: '/health', handler: 'health', agents: 'none', records: 'none', public: true },
  // A fleet stop's progress: its own resource (under /agents/ it would be ambiguous with /agents/{agentId}/stops).
  { method: 'GET', path: '/fleet-stops/{operationId}', handler: 'get-fleet-stop', agents: 'none', records: 'read' },
];

/**
 * The operator console (console/, served by functions/http/console.ts): public static files on the
 * API's own origin, outside the OpenAPI document (they are a page, not the API).
 */
export const consoleRoutes: readonly Route[] = ['/', '/console', '/console/{file}', '/favicon.ico'].map((path) => ({
  method: 'GET',
  path,
  handler: 'console',
  agents: 'none',
  records: 'none',
  public: true,
}));

/** Everything no route matches: 404, or 405 with Allow when the path exists under another method. */
export const fallbackRoute = { routeKey: '$default', handler: 'not-found' } as const;

const patterns = [...routes, ...consoleRoutes].map((route) => ({
  route,
  regex: new RegExp(`^${route.path.replace(/\{(\w+)\}/g, (_, name: string) => `(?<${name}>[^/]+)`)}$`),
}));

/**
 * The methods a path allows. A path that is a route's literal path (`/agents/stop`,
 * `/agents/counts`) allows only the methods of its literal routes, never those of a route whose
 * parameter it happens to fit (`/agents/{agentId}`): API Gateway sends `PATCH /agents/stop` to the
 * PATCH route's function, which answers 405 with this list.
 */
export function allowedAt(path: string): string[] {
  const literal = patterns.filter(({ route }) => !route.path.includes('{') && route.path === path).map(({ route }) => route.method);
  return literal.length > 0 ? literal : patterns.filter(({ regex }) => regex.test(path)).map(({ route }) => route.method);
}

/** Match a raw path against the table: the route (if the method matches) and the methods the path allows. */
export function matchRoute(method: string, path: string): { route?: Route; params: Record<string, string>; allowed: string[] } {
  const allowed: string[] = [];
  // A literal path is matched by its literal routes only (see allowedAt).
  const literal = patterns.some(({ route }) => route.path === path);
  for (const { route, regex } of literal ? patterns.filter(({ route }) => route.path === path) : patterns) {
    const m = regex.exec(path);
    if (!m) continue;
    allowed.push(route.method);
    if (route.method === method) return { route, params: { ...m.groups }, allowed };
  }
  return { params: {}, allowed };
}
