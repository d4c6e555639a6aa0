/** Configuration, read once from the environment; a missing required variable fails fast. */
export interface Config {
  /** Set only for functions granted the table (the stack binds exactly what each one uses). */
  agentsTable?: string;
  recordsTable?: string;
  /**
   * A running message renews its lease every `heartbeatMs`; a lease not renewed for `leaseTtlMs`
   * (a few heartbeats) belongs to a crashed worker and is settled. Live work of any length stays
   * leased; a dead worker's message is found within seconds.
   */
  heartbeatMs: number;
  leaseTtlMs: number;
  /**
   * How far apart two functions' clocks may be (each Lambda function has its own): a lease or an
   * admission stamped by one is judged expired by another only this much after its time.
   */
  clockToleranceMs: number;
  /** Per-agent cap on messages in flight; a stop commits all of them in one transaction (<= 100 items). */
  maxInFlight: number;
  /** How long POST /stop waits for the outcome before answering 202 (API Gateway's limit is 30 s). */
  stopWaitWindowMs: number;
  /** How often a waiting stop request re-reads the agent. */
  stopPollMs: number;
  recordRetentionDays: number;
  /**
   * A graceful stop whose runtime cannot be told to close (an http worker gone) is tried again
   * until its deadline plus this, then ends without it, the close recorded as failed.
   */
  closeGraceMs: number;
  /** The message worker keeps this much of its invocation's time to record the outcome of work it stops at the limit. */
  workerWrapUpMs: number;
  /** The reaper heals a `stopping` agent this long after its deadline, or after it was forced (its workflow or force request is gone). */
  stuckStopGraceMs: number;
  /**
   * A stop's workflow that fails past its task retries (an overloaded store) goes back to its
   * drain check, every few seconds, until this long past the stop's deadline (or its force); then
   * the failure is recorded on the agent.
   */
  stopRecoveryMs: number;
  /**
   * Where the `http` runtime may call: `public` refuses loopback, private, link-local (the
   * instance metadata address above all) and other non-public addresses, checked on the address
   * actually connected to; `any` allows them (local development, a worker in your VPC).
   */
  runtimeUrls: 'public' | 'any';
  /**
   * Whether runtimes may be called over plain `http://` (a reply could be read or forged on the
   * way): off by default, on under `npm start` (workers and model servers on loopback).
   */
  runtimeAllowHttp: boolean;
}

export class ConfigError extends Error {}

/**
 * The clock tolerance deployed (the stack sets no other): far above Lambda's skew (Amazon Time
 * Sync keeps hosts within about a millisecond). Lower values are for tests on one clock.
 */
export const DEFAULT_CLOCK_TOLERANCE_MS = 5_000;

export function requiredEnv(env: NodeJS.ProcessEnv, name: string): string {
  const value = env[name];
  if (!value) throw new ConfigError(`Environment variable ${name} is required`);
  return value;
}

export function intEnv(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`Environment variable ${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  }
  return value;
}

export function configFromEnv(env: NodeJS.ProcessEnv = process.env): Config {
  const heartbeatMs = intEnv(env, 'HEARTBEAT_MS', 5_000, 50, 60_000);
  const leaseTtlMs = intEnv(env, 'LEASE_TTL_MS', 4 * heartbeatMs, 200, 900_000);
  const clockToleranceMs = intEnv(env, 'CLOCK_TOLERANCE_MS', DEFAULT_CLOCK_TOLERANCE_MS, 0, 60_000);
  if (leaseTtlMs < heartbeatMs + clockToleranceMs) {
    throw new ConfigError(
      `LEASE_TTL_MS (${leaseTtlMs}) must be at least one heartbeat (HEARTBEAT_MS ${heartbeatMs}) plus the clock tolerance (CLOCK_TOLERANCE_MS ${clockToleranceMs}), ` +
        'so a live lease is never taken for a crashed worker\'s by a function whose clock runs ahead',
    );
  }
  return {
    agentsTable: env.AGENTS_TABLE || undefined,
    recordsTable: env.RECORDS_TABLE || undefined,
    heartbeatMs,
    leaseTtlMs,
    clockToleranceMs,
    maxInFlight: intEnv(env, 'MAX_IN_FLIGHT', 50, 1, 98),
    stopWaitWindowMs: intEnv(env, 'STOP_WAIT_WINDOW_MS', 25_000, 0, 28_000),
    stopPollMs: intEnv(env, 'STOP_POLL_MS', 100, 10, 5_000),
    recordRetentionDays: intEnv(env, 'RECORD_RETENTION_DAYS', 30, 1, 3650),
    closeGraceMs: intEnv(env, 'CLOSE_GRACE_MS', 30_000, 0, 3_600_000),
    stuckStopGraceMs: intEnv(env, 'STUCK_STOP_GRACE_MS', 300_000, 0, 86_400_000),
    stopRecoveryMs: intEnv(env, 'STOP_RECOVERY_MS', 30_000, 0, 300_000),
    workerWrapUpMs: intEnv(env, 'WORKER_WRAP_UP_MS', 10_000, 0, 60_000),
    runtimeUrls: runtimeUrlsFromEnv(env),
    runtimeAllowHttp: boolEnv(env, 'RUNTIME_ALLOW_HTTP', false),
  };
}

export function boolEnv(env: NodeJS.ProcessEnv, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (raw === '1' || raw === 'true') return true;
  if (raw === '0' || raw === 'false') return false;
  throw new ConfigError(`Environment variable ${name} must be 1 or 0 (true or false), got ${JSON.stringify(raw)}`);
}

function runtimeUrlsFromEnv(env: NodeJS.ProcessEnv): 'public' | 'any' {
  const raw = env.RUNTIME_URLS ?? 'public';
  if (raw !== 'public' && raw !== 'any') throw new ConfigError(`Environment variable RUNTIME_URLS must be "public" or "any", got ${JSON.stringify(raw)}`);
  return raw;
}

