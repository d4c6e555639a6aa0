import type { Server } from 'node:http';
import type { ScheduledEvent } from 'aws-lambda';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { AddressInfo } from 'node:net';
import type { Config } from '../functions/agents/config.js';
import { buildDeps, useDeps, type Deps } from '../functions/adapters/deps.js';
import { createDocumentClient, type StoreTimeouts } from '../functions/adapters/dynamodb/client.js';
import { functionAccess, grantedClient, type TableAccess } from '../functions/adapters/dynamodb/grants.js';
import { splitCombinedItems } from '../functions/adapters/dynamodb/split-items.js';
import { consoleRoutes, fallbackRoute, routes } from '../functions/http/routes.js';
import { injectFaults, type FaultPlan } from './faults.js';
import type { EventPublisher, MessageQueue, Metrics, RuntimeRegistry } from '../functions/agents/ports.js';
import { handler as reaper } from '../functions/scheduled/reaper.js';
import { invokeLocally } from './invoke.js';
import { stopWorkflowInput } from '../functions/agents/model.js';
import { fleetWorkflowInput } from '../functions/agents/fleet-model.js';
import { agentPages } from '../functions/agents/selection.js';
import { ApiKeysStore } from '../functions/auth/api-keys.js';
import { KeyAuthenticator, useAuthenticator } from '../functions/auth/authenticate.js';
import { LocalEventBus } from './events.js';
import { LocalMetrics } from './metrics.js';
import { localEndpoints } from './endpoints.js';
import { startEventsWebhook } from './webhook.js';
import { LocalMessageQueue } from './queue.js';
import { createLocalServer, loadHandlers } from './server.js';
import { LocalFleetWorkflow, LocalStopWorkflow, type LocalWorkflowOptions } from './workflow.js';

export interface LocalAppOptions {
  endpoint: string;
  config: Config;
  port?: number;
  host?: string;
  log?: (line: string) => void;
  workflow?: LocalWorkflowOptions;
  runtimes?: RuntimeRegistry;
  /** Replace the event bus (tests inject a failing publisher). */
  events?: EventPublisher;
  /** Wrap the message queue (tests inject a failing or duplicating hand-off). */
  queue?: (local: LocalMessageQueue) => MessageQueue;
  /** The worker's time per job (the deployed function's timeout, 15 minutes by default). */
  workerTimeoutMs?: number;
  /** DynamoDB client timeouts (default: from DYNAMODB_TIMEOUT_MS / DYNAMODB_MAX_ATTEMPTS). */
  store?: StoreTimeouts;
  /** Run the idle reaper every this many ms (the EventBridge schedule's stand-in); off when omitted. */
  reaperIntervalMs?: number;
  /** API keys: required once a key was ever created (`auto`), or `always` (AGENTS_REQUIRE_AUTH=1). */
  auth?: { keysTable: string; require: 'auto' | 'always'; recheckMs?: number };
  /** Host names answered while auth is off, besides loopback and `host` (ALLOWED_HOSTS). */
  allowedHosts?: string[];
  /** This instance's clock, ahead (+) or behind (-) the machine's: each Lambda function has its own. */
  clockOffsetMs?: number;
  /** Or the clock itself (a test that needs two events in one millisecond stops it). */
  now?: () => number;
  /** Faults injected below the SDK's retries (lost responses, throttling, 5xx, delays): see local/faults.ts. */
  faults?: FaultPlan;
  /** Where the functions' metrics go (default: kept in memory, served at GET /metrics). */
  metrics?: Metrics;
  /** Deliver every lifecycle event to this subscriber, signed with the secret (EVENTS_WEBHOOK_URL/_SECRET). */
  eventsWebhook?: { url: string; secret?: string };
}

export interface LocalApp {
  url: string;
  /** The one DynamoDB client of this app (benchmarks and tests reach the tables directly with it). */
  db: DynamoDBDocumentClient;
  /** The faults injected below the SDK's retries (none unless the options gave a plan). */
  faults?: FaultPlan;
  /** Every table, as an operator has it (tests read and arrange state with it). */
  deps: Deps;
  /** A function's own dependencies, with its grants: a route's handler name, or a name of `functionAccess`. */
  functionDeps(name: string): Deps;
  /** The stack's own dependencies and every function's (tests that stand in for a store call patch them all). */
  allDeps(): Deps[];
  workflow: LocalStopWorkflow;
  /** Fleet stops' workflows (the fleet stop ASL, same interpreter). */
  fleetWorkflow: LocalFleetWorkflow;
  bus: LocalEventBus;
  /** Every function's metrics, as GET /metrics serves them (unless the options sent them elsewhere). */
  metrics: LocalMetrics;
  /** The worker's queue: asynchronous messages run here, through the deployed worker handler. */
  queue: LocalMessageQueue;
  server: Server;
  /** Agents left `stopping` by a previous run whose workflows were resumed. */
  resumed: number;
  /** Fleet stops left running by a previous run whose workflows were resumed. */
  resumedFleetStops: number;
  keys?: ApiKeysStore;
  /** Whether requests need an API key now (locally: from the first key ever created on). */
  authRequired(): boolean;
  /**
   * Stop accepting requests, give in-flight ones `graceMs` to finish, then cut them. Running
   * message work stops where it is, writing nothing, as a killed process would: its leases
   * expire and are settled `failed` by whoever runs next.
   */
  close(graceMs?: number): Promise<void>;
}

/**
 * The whole API on one machine: the same handlers behind a local HTTP server, DynamoDB (Local),
 * the ASL workflow through aws-local-stepfunctions, and an in-process event bus.
 */
export async function startLocalApp(opts: LocalAppOptions): Promise<LocalApp> {
  const log = opts.log ?? (() => {});
  const bus = new LocalEventBus(log);
  // Each function runs with its own grants (filled in once the shared parts exist).
  const functions = new Map<string, Deps>();
  const functionDeps = (name: string) => functions.get(name) ?? fail(`no function ${name} is declared`);
  const workflow = new LocalStopWorkflow({ ...opts.workflow, depsFor: functionDeps });
  const fleetWorkflow = new LocalFleetWorkflow({ ...opts.workflow, depsFor: functionDeps });
  const db = createDocumentClient(opts.endpoint, opts.store, opts.faults && ((client) => injectFaults(client, opts.faults!)));
  const queue = new LocalMessageQueue({ log, invocationTimeoutMs: opts.workerTimeoutMs, deps: () => functionDeps('MessageWorker') });
  const lifetime = new AbortController();
  const offset = opts.clockOffsetMs ?? 0;
  const metrics = new LocalMetrics();
  const parts = {
    config: opts.config,
    metrics: opts.metrics ?? metrics,
    workflow,
    fleetWorkflow,
    events: opts.events ?? bus,
    queue: opts.queue ? opts.queue(queue) : queue,
    runtimes: opts.runtimes,
    shutdown: lifetime.signal,
    now: opts.now ?? (offset ? () => Date.now() + offset : Date.now),
  };
  // The stack's own view (tests, resuming workflows at start): every table, as an operator has.
  const deps = buildDeps({ ...parts, db });
  const tables = { agents: opts.config.agentsTable, records: opts.config.recordsTable };
  const declared: [string, TableAccess][] = [
    ...[...routes, consoleRoutes[0]!, { handler: fallbackRoute.handler, agents: 'none', records: 'none' } as const].map((r) => [r.handler, r] as [string, TableAccess]),
    ...Object.entries(functionAccess),
  ];
  for (const [name, access] of declared) {
    functions.set(name, buildDeps({ ...parts, db: grantedClient(db, tables, access, name) }));
  }
  useDeps(deps);
  // Agents stored as one item (configuration and state together) are split before anything reads them.
  if (tables.agents && tables.records) await splitCombinedItems(db, { agents: tables.agents, records: tables.records });
  const resumed = await resumeStoppingAgents(deps);
  const resumedFleetStops = await resumeFleetStops(deps);
  // The same check every deployed function makes; locally it turns on with the first key ever
  // created (or at once with `always`), and checks the store on every request (no cache).
  // Turning on while the server runs is told here; found on at start, the start-up banner says it.
  let running = false;
  const auth = opts.auth
    ? await new KeyAuthenticator(new ApiKeysStore(db, opts.auth.keysTable), {
        require: opts.auth.require,
        cacheMs: 0,
        ...(opts.auth.recheckMs !== undefined && { recheckMs: opts.auth.recheckMs }),
        onTurnedOn: () => running && log('auth: ON from now on: an API key exists; every request needs "Authorization: Bearer <key>"'),
      }).init()
    : undefined;
  running = true;
  useAuthenticator(auth);
  const keys = auth?.keys;
  const endpoints = localEndpoints({ metrics, bus, authenticate: async (authorization) => auth?.authenticate(authorization) });
  const webhook = opts.eventsWebhook ? startEventsWebhook(bus, opts.eventsWebhook.url, opts.eventsWebhook.secret, log) : undefined;
  const server = createLocalServer({
    handlers: await loadHandlers(),
    log,
    authRequired: async () => (await auth?.requiredNow()) ?? false,
    depsFor: functionDeps,
    endpoints,
    hostNames: [...(opts.host && !['0.0.0.0', '::'].includes(opts.host) ? [opts.host.toLowerCase()] : []), ...(opts.allowedHosts ?? [])],
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const reaper = opts.reaperIntervalMs ? scheduleReaper(functionDeps('Reaper'), opts.reaperIntervalMs, log) : undefined;
  return {
    url: `http://${opts.host ?? '127.0.0.1'}:${port}`,
    db,
    faults: opts.faults,
    deps,
    functionDeps,
    allDeps: () => [deps, ...functions.values()],
    workflow,
    fleetWorkflow,
    bus,
    metrics,
    queue,
    server,
    resumed,
    resumedFleetStops,
    keys,
    authRequired: () => auth?.required() ?? false,
    async close(graceMs = 2000) {
      await reaper?.stop();
      endpoints.close();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const grace = new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref());
      // Requests in progress and the worker's running jobs finish within the grace; past it, the
      // work still running is aborted (its messages settled by the lease expiry, with that reason).
      await Promise.race([Promise.all([closed, queue.idle()]), grace]);
      lifetime.abort();
      server.closeAllConnections();
      await closed;
      await queue.close();
      await fleetWorkflow.close();
      await workflow.close();
      webhook?.close();
      db.destroy();
    },
  };
}

function fail(message: string): never {
  throw new Error(message);
}

/**
 * Step Functions executions are durable; local ones die with the process. On start, every agent
 * left `stopping` gets its workflow again (named by the same stopId), so its stop still ends by
 * its deadline.
 */
export async function resumeStoppingAgents(d: Deps): Promise<number> {
  let resumed = 0;
  for await (const page of agentPages(d, 'stopping')) {
    for (const agent of await d.agents.getMany(page.agents.map((k) => k.agentId))) {
      if (agent.status !== 'stopping' || !agent.stop) continue;
      await d.workflow.start(stopWorkflowInput(agent.agentId, agent.stop));
      resumed++;
    }
  }
  return resumed;
}

/** Likewise every fleet stop left running: its workflow starts again and picks up where its members stand. */
export async function resumeFleetStops(d: Deps): Promise<number> {
  const running = await d.fleet.listRunning();
  for (const op of running) await d.fleetWorkflow.start(fleetWorkflowInput(op));
  return running.length;
}

/** The local EventBridge schedule: the same reaper, on a timer, never two runs at once. */
function scheduleReaper(d: Deps, intervalMs: number, log: (line: string) => void) {
  let running: Promise<void> | undefined;
  const timer = setInterval(() => {
    if (running) return;
    // The function's time: the run's budget (the interval less a second) and the 10 s it leaves unused.
    const timeoutMs = Math.max(1000, intervalMs - 1000) + 10_000;
    running = invokeLocally('Reaper', { deps: d, timeoutMs }, (context) => reaper({} as ScheduledEvent, context))
      .then((s) => {
        if (s.examined || s.errors) log(`reaper ${JSON.stringify(s)}`);
      })
      .catch((err: Error) => log(`reaper failed: ${err.message}`))
      .finally(() => (running = undefined));
  }, intervalMs);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await running;
    },
  };
}
