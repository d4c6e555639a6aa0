import { AsyncLocalStorage } from 'node:async_hooks';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { type Config, ConfigError, configFromEnv } from '../agents/config.js';
import type { Deps, EventPublisher, ModelKeys, FleetWorkflow, MessageQueue, RuntimeRegistry, StopWorkflow } from '../agents/ports.js';
import { EventBridgePublisher, SqsMessageQueue, stepFunctionsFleetWorkflow, stepFunctionsStopWorkflow } from './aws.js';
import { AgentConfigStore } from './dynamodb/agent-config-store.js';
import { agentsStore } from './dynamodb/agents-store.js';
import { FleetStore } from './dynamodb/fleet-store.js';
import { createDocumentClient } from './dynamodb/client.js';
import { type RecordsStore, recordsStore } from './dynamodb/records-store.js';
import { logger, wireAtColdStart } from './logger.js';
import { EmfMetrics } from './metrics.js';
import { currentCorrelationId } from './observability.js';
import { tracedRuntimes, tracedStores } from './tracing.js';
import { generateSigningSecret } from './runtimes/http.js';
import { runtimesFor } from './runtimes/index.js';
import { BoundModelKeys } from './runtimes/model-keys.js';

/** Wiring: the domain's ports bound to adapters, from the environment in Lambda, by local/ on one machine. */
export type { Deps };

/**
 * A store this function was not granted (the stack binds each function only the tables its route
 * declares): any use of it is a wiring bug, said plainly, never a request to a table named ''.
 */
function notGranted<T extends object>(envName: string): T {
  return new Proxy({} as T, {
    get: (_, property) => {
      if (property === 'then') return undefined; // not a promise
      throw new ConfigError(`${envName} is not set for this function: its route does not declare access to that table (functions/http/routes.ts)`);
    },
  });
}

export function buildDeps(parts: {
  config: Config;
  db: DynamoDBDocumentClient;
  workflow: StopWorkflow;
  fleetWorkflow: FleetWorkflow;
  events: EventPublisher;
  queue: MessageQueue;
  runtimes?: RuntimeRegistry;
  modelKeys?: ModelKeys;
  /** Fires when the process is going away (default: never, as in Lambda). */
  shutdown?: AbortSignal;
  now?: () => number;
  metrics: Deps['metrics'];
}): Deps {
  const { db, ...rest } = parts;
  const { agentsTable, recordsTable } = parts.config;
  const modelKeys = parts.modelKeys ?? new BoundModelKeys();
  const records = recordsTable ? recordsStore(db, recordsTable, parts.config.recordRetentionDays) : notGranted<RecordsStore>('RECORDS_TABLE');
  const configs = recordsTable ? new AgentConfigStore(db, recordsTable) : notGranted<AgentConfigStore>('RECORDS_TABLE');
  const stores = tracedStores({
    agents: agentsTable ? agentsStore(db, agentsTable, records, configs) : notGranted<ReturnType<typeof agentsStore>>('AGENTS_TABLE'),
    configs,
    records,
    fleet: recordsTable ? new FleetStore(db, recordsTable, (now) => records.expiresAt(now)) : notGranted<FleetStore>('RECORDS_TABLE'),
  });
  return {
    ...rest,
    ...stores,
    modelKeys,
    runtimes: tracedRuntimes(parts.runtimes ?? runtimesFor(parts.config, () => stores.records, modelKeys)),
    shutdown: parts.shutdown ?? new AbortController().signal,
    log: logger,
    now: parts.now ?? Date.now,
    newSigningSecret: generateSigningSecret,
    correlationId: currentCorrelationId,
  };
}

/** Lambda wiring: AWS adapters from the environment the CDK stack sets. */
function depsFromEnvironment(env = process.env): Deps {
  const config = configFromEnv(env);
  return buildDeps({
    config,
    metrics: new EmfMetrics(),
    db: createDocumentClient(env.DYNAMODB_ENDPOINT),
    workflow: env.STOP_STATE_MACHINE_ARN
      ? stepFunctionsStopWorkflow(env.STOP_STATE_MACHINE_ARN)
      : { start: () => Promise.reject(new Error('STOP_STATE_MACHINE_ARN is not set for this function')) },
    fleetWorkflow: env.FLEET_STOP_STATE_MACHINE_ARN
      ? stepFunctionsFleetWorkflow(env.FLEET_STOP_STATE_MACHINE_ARN)
      : { start: () => Promise.reject(new Error('FLEET_STOP_STATE_MACHINE_ARN is not set for this function')) },
    events: env.EVENT_BUS_NAME
      ? new EventBridgePublisher(env.EVENT_BUS_NAME)
      : { publish: () => Promise.reject(new Error('EVENT_BUS_NAME is not set for this function')) },
    queue: env.MESSAGE_QUEUE_URL
      ? new SqsMessageQueue(env.MESSAGE_QUEUE_URL)
      : { send: () => Promise.reject(new Error('MESSAGE_QUEUE_URL is not set for this function')) },
  });
}

let current: Deps | undefined;
/** The function running now, on one machine: each route, task, the worker and the reaper with its own grants. */
const running = new AsyncLocalStorage<Deps>();

/** The wired dependencies; built from the environment on first use (once per Lambda container). */
export function deps(): Deps {
  const scoped = running.getStore();
  if (scoped) return scoped;
  current ??= depsFromEnvironment();
  return current;
}

/** Run `fn` as one function runs, with that function's dependencies (the local stack: one per function). */
export function runAs<T>(d: Deps, fn: () => T): T {
  return running.run(d, fn);
}

/** Used by the local stack and tests to run the same handlers over local adapters. */
export function useDeps(next: Deps | undefined): void {
  current = next;
}

// The local stack and tests wire with useDeps instead.
wireAtColdStart('start', deps);
