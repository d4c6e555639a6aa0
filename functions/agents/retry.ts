import { AgentBusy } from './errors.js';

/**
 * How many times each write that depends on a hot agent item is tried before the request gives up
 * with AgentBusy (429 + Retry-After: nothing was half-done, the same request retried succeeds).
 * Each counts attempts that lost a condition or a transaction conflict to a concurrent write.
 */
export const RETRY_LIMITS = {
  /** Admission: contention from other messages of the same agent. */
  admission: 15,
  /** Stop commit: the lease set only shrinks, so at most one retry per lease, plus conflicts. */
  stopCommit: 25,
  /** Force stop's first write: one retry per transition of the agent. */
  closeAdmission: 10,
  /** Start: a concurrent PATCH moved the version. */
  start: 5,
} as const;

/**
 * Jittered exponential backoff between attempts of a write that lost a transaction conflict or a
 * condition on a hot agent item (capped at ~100 ms).
 */
export const backoff = (attempt: number) => sleep(Math.min(100, 2 ** attempt) * (0.5 + Math.random()));

/** Wait `ms` (the polls of a waiting stop or message request, and backoff). */
export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The retries of one write ran out: the one typed error for it, mapped once (429). */
export const retriesExhausted = () => new AgentBusy();
