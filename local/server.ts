import { randomUUID } from 'node:crypto';
import { STATUS_CODES, createServer, maxHeaderSize, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Context } from 'aws-lambda';
import type { Deps } from '../functions/adapters/deps.js';
import { invokeLocally } from './invoke.js';
import type { LocalEndpoints } from './endpoints.js';
import { ValidationError } from '../functions/agents/errors.js';
import { parserRefusal, payloadTooLarge } from '../functions/http/errors.js';
import { MAX_BODY_BYTES, errorResponse, type Event, type Result } from '../functions/http/middleware.js';
import { consoleRoutes, fallbackRoute, matchRoute, routeName, routes } from '../functions/http/routes.js';
import { serveDocs } from './docs-site.js';

type Handler = (event: Event, context: Context) => Promise<Result>;

/** Load every route's handler module, as Lambda would (one module per route). */
export async function loadHandlers(): Promise<Map<string, Handler>> {
  const names = [...routes.map((r) => r.handler), consoleRoutes[0]!.handler, fallbackRoute.handler];
  const entries = await Promise.all(
    names.map(async (name) => [name, ((await import(`../functions/http/${name}.ts`)) as { handler: Handler }).handler] as const),
  );
  return new Map(entries);
}

class BodyTooLarge extends Error {}

/** Read the body, refusing more than `limit` bytes without buffering them. */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        reject(new BodyTooLarge());
        req.resume();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** Path and query of a raw request target, without URL's host parsing (`//x/y` is a path here). */
function splitTarget(target: string | undefined): { pathname: string; search: string; searchParams: URLSearchParams } {
  const raw = target ?? '/';
  const q = raw.indexOf('?');
  const pathname = q === -1 ? raw : raw.slice(0, q);
  const search = q === -1 ? '' : raw.slice(q);
  return { pathname, search, searchParams: new URLSearchParams(search) };
}

/** An HTTP request as API Gateway HTTP API (payload format 2.0) hands it to Lambda. */
export function toEvent(req: IncomingMessage, body: Buffer, routeKey: string, pathParameters: Record<string, string>): Event {
  const url = splitTarget(req.url);
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers[name.toLowerCase()] = Array.isArray(value) ? value.join(',') : value;
  }
  const query: Record<string, string> = {};
  for (const [name, value] of url.searchParams) query[name] = name in query ? `${query[name]},${value}` : value;
  const now = new Date();
  const requestId = randomUUID();
  return {
    version: '2.0',
    routeKey,
    rawPath: url.pathname,
    rawQueryString: url.search.slice(1),
    headers,
    ...(Object.keys(query).length > 0 && { queryStringParameters: query }),
    ...(Object.keys(pathParameters).length > 0 && { pathParameters }),
    ...(body.length > 0 && { body: body.toString('utf8') }),
    isBase64Encoded: false,
    requestContext: {
      accountId: '000000000000',
      apiId: 'local',
      domainName: headers.host ?? 'localhost',
      domainPrefix: 'localhost',
      http: {
        method: req.method ?? 'GET',
        path: url.pathname,
        protocol: `HTTP/${req.httpVersion}`,
        sourceIp: req.socket.remoteAddress ?? '127.0.0.1',
        userAgent: headers['user-agent'] ?? '',
      },
      requestId,
      routeKey,
      stage: '$default',
      time: now.toISOString(),
      timeEpoch: now.getTime(),
    },
  };
}

function write(res: ServerResponse, result: Result): void {
  res.writeHead(result.statusCode ?? 200, result.headers as Record<string, string>);
  // As API Gateway does: a base64 body (the console's gzipped files) goes out as its bytes.
  res.end(result.isBase64Encoded ? Buffer.from(result.body ?? '', 'base64') : (result.body ?? ''));
}

export interface LocalServerOptions {
  handlers: Map<string, Handler>;
  log?: (line: string) => void;
  /** Whether requests need a key now (the docs page shows its lock only then). */
  authRequired?: () => Promise<boolean>;
  /** Each handler's own dependencies (its grants), as each route is its own Lambda function. */
  depsFor?: (handler: string) => Deps;
  /** The local-only endpoints (metrics, event stream). */
  endpoints?: LocalEndpoints;
  /** Host names answered while auth is off, besides the loopback ones (HOST, ALLOWED_HOSTS). */
  hostNames?: string[];
}

const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '[::1]'];

/** The host name a request was sent to (its Host header, without the port). */
const hostNameOf = (host: string | undefined) => (host ?? '').toLowerCase().replace(/:\d+$/, '');

/**
 * While auth is off anyone who can reach the server may use it, so it answers only the names it is
 * reached by on this machine: a page elsewhere whose name is made to resolve to this machine (DNS
 * rebinding) is refused. Once a key exists every request carries one, whatever its Host.
 */
async function misdirected(req: IncomingMessage, opts: LocalServerOptions): Promise<Result | undefined> {
  const name = hostNameOf(req.headers.host);
  if ([...LOOPBACK_NAMES, ...(opts.hostNames ?? [])].includes(name)) return undefined;
  if (await (opts.authRequired?.() ?? Promise.resolve(false)).catch(() => false)) return undefined;
  return {
    statusCode: 421,
    headers: { 'Content-Type': 'application/json; charset=utf-8' },
    body: JSON.stringify({
      success: false,
      code: 'MISDIRECTED_REQUEST',
      error: `This server answers ${JSON.stringify(name)} only once an API key exists (auth is off): reach it as localhost, list the name in ALLOWED_HOSTS, or create a key with npm run keys`,
    }),
  };
}

/** The local API Gateway: route table -> v2 event -> the same handler Lambda runs -> response. */
export function createLocalServer(opts: LocalServerOptions): Server {
  const log = opts.log ?? (() => {});
  const server = createServer(async (req, res) => {
    const refused = await misdirected(req, opts);
    if (refused) {
      log(`${req.method ?? 'GET'} ${loggedTarget(req.url)} 421 (Host ${JSON.stringify(hostNameOf(req.headers.host))} while auth is off)`);
      return write(res, refused);
    }
    if (serveDocs(req, res, () => opts.authRequired?.() ?? Promise.resolve(false))) return;
    if (opts.endpoints?.serve(req, res)) return;
    const started = performance.now();
    const method = req.method ?? 'GET';
    let result: Result;
    try {
      const match = matchRoute(method, splitTarget(req.url).pathname);
      let params: Record<string, string>;
      try {
        params = Object.fromEntries(Object.entries(match.params).map(([k, v]) => [k, decodeURIComponent(v)]));
      } catch {
        throw new ValidationError('Request path is not valid: it has a malformed percent-encoding');
      }
      const body = await readBody(req, MAX_BODY_BYTES).catch((err) => {
        if (err instanceof BodyTooLarge) throw payloadTooLarge(MAX_BODY_BYTES);
        throw err;
      });
      const routeKey = match.route ? `${match.route.method} ${match.route.path}` : fallbackRoute.routeKey;
      const handlerName = match.route?.handler ?? fallbackRoute.handler;
      const event = toEvent(req, body, routeKey, params);
      const handler = opts.handlers.get(handlerName)!;
      const timeoutMs = (match.route?.timeoutSeconds ?? 10) * 1000;
      result = await invokeLocally(
        routeName({ handler: handlerName }),
        { deps: opts.depsFor?.(handlerName), timeoutMs, requestId: event.requestContext.requestId },
        (context) => handler(event, context),
      );
    } catch (err) {
      // Before a handler ran (path, body): the same mapping the handlers use.
      result = errorResponse(err);
      if (result.statusCode === 500) log(`error ${(err as Error).stack ?? String(err)}`);
      if (result.statusCode === 413) res.setHeader('Connection', 'close');
    }
    write(res, result);
    log(`${method} ${loggedTarget(req.url)} ${result.statusCode} ${(performance.now() - started).toFixed(1)}ms`);
  });
  // What Node's parser refuses never reaches a handler: answer it in the envelope too, then close
  // (the connection's framing can no longer be trusted).
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const result = errorResponse(parserRefusal(err.code, maxHeaderSize));
    const body = result.body ?? '';
    const headers = Object.entries({ ...result.headers, 'Content-Length': String(Buffer.byteLength(body)), Connection: 'close' })
      .map(([name, value]) => `${name}: ${value}\r\n`)
      .join('');
    socket.end(`HTTP/1.1 ${result.statusCode} ${STATUS_CODES[result.statusCode!]}\r\n${headers}\r\n${body}`);
    log(`refused by the HTTP parser: ${err.code ?? err.message} -> ${result.statusCode}`);
  });
  // Keep idle connections longer than clients' pools do, so a client never sends on a socket the
  // server is closing at that very moment (the keep-alive race that surfaces as ECONNRESET).
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  return server;
}

/** Query parameters whose values are credentials by name. */
const CREDENTIAL_PARAMETER = /^(api[_-]?key|key|token|access[_-]?token|auth|authorization|secret|password)$/i;

/**
 * The request target as the access log writes it: a credential sent in the query string (by its
 * parameter's name, or an API key's `agk_` form wherever it is) is written `[redacted]`. Such a
 * request is refused, but its line would otherwise keep the key.
 */
export function loggedTarget(target = ''): string {
  const at = target.indexOf('?');
  if (at < 0) return target.replace(/agk_[^/?#]*/gi, 'agk_[redacted]');
  const pairs = target
    .slice(at + 1)
    .split('&')
    .map((pair) => {
      const [name = '', value] = pair.split(/=(.*)/s);
      const secret = CREDENTIAL_PARAMETER.test(safeDecode(name)) || /agk_/i.test(safeDecode(value ?? ''));
      return secret ? `${name}=[redacted]` : pair;
    });
  return `${target.slice(0, at).replace(/agk_[^/?#]*/gi, 'agk_[redacted]')}?${pairs.join('&')}`;
}

const safeDecode = (text: string) => {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
};
