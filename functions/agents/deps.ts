import type { Logger } from '@aws-lambda-powertools/logger';
import { logger } from './logger.js';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { AgentsStore } from './agents-store.js';
import { EventBridgePublisher, StepFunctionsStopWorkflow } from './aws-adapters.js';
import { type Config, configFromEnv } from './config.js';
import { createDocumentClient } from './dynamo.js';
import type { EventPublisher, LifecycleEvent, StopWorkflow } from './ports.js';
import { RecordsStore } from './records-store.js';
import { defaultRuntimes, type RuntimeRegistry } from './runtimes.js';

/** Everything the domain needs, wired once: from the environment in Lambda, by local/ on one machine. */
export interface Deps {
  config: Config;
  agents: AgentsStore;
  records: RecordsStore;
  workflow: StopWorkflow;
  events: EventPublisher;
  runtimes: RuntimeRegistry;
  log: Logger;
  now: () => number;
  /** Counters a test or an operator can read (event publish failures are counted, never silent). */
  metrics: { eventPublishFailures: number };
}


export function buildDeps(parts: {
  config: Config;
  db: DynamoDBDocumentClient;
  workflow: StopWorkflow;
  events: EventPublisher;
  runtimes?: RuntimeRegistry;
  now?: () => number;
}): Deps {
  const { db, ...rest } = parts;
  const records = new RecordsStore(db, parts.config.recordsTable, parts.config.recordRetentionDays);
  return {
    ...rest,
    agents: new AgentsStore(db, parts.config.agentsTable, records),
    records,
    runtimes: parts.runtimes ?? defaultRuntimes,
    log: logger,
    now: parts.now ?? Date.now,
    metrics: { eventPublishFailures: 0 },
  };
}

/** Lambda wiring: AWS adapters from the environment the CDK stack sets. */
function depsFromEnvironment(env = process.env): Deps {
  const config = configFromEnv(env);
  return buildDeps({
    config,
    db: createDocumentClient(env.DYNAMODB_ENDPOINT),
    workflow: env.STOP_STATE_MACHINE_ARN
      ? new StepFunctionsStopWorkflow(env.STOP_STATE_MACHINE_ARN)
      : { start: () => Promise.reject(new Error('STOP_STATE_MACHINE_ARN is not set for this function')) },
    events: env.EVENT_BUS_NAME
      ? new EventBridgePublisher(env.EVENT_BUS_NAME)
      : { publish: () => Promise.reject(new Error('EVENT_BUS_NAME is not set for this function')) },
  });
}

let current: Deps | undefined;

/** The wired dependencies; built from the environment on first use (once per Lambda container). */
export function deps(): Deps {
  current ??= depsFromEnvironment();
  return current;
}

/** Used by the local stack and tests to run the same handlers over local adapters. */
export function useDeps(next: Deps | undefined): void {
  current = next;
}

/** Lifecycle events are notifications: a failure to publish never undoes a committed transition. */
export async function publish(d: Deps, event: LifecycleEvent): Promise<void> {
  try {
    await d.events.publish(event);
  } catch (err) {
    d.metrics.eventPublishFailures++;
    d.log.error('lifecycle event not published', { event: event.type, agentId: event.detail.agentId, error: err as Error });
  }
}
