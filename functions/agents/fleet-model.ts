import * as z from 'zod/mini';
import { DEFAULT_STOP_TIMEOUT_MS, MAX_STOP_TIMEOUT_MS, schema, type StopOutcome, uuidSchema } from './model.js';

/** Agents one fleet stop may name explicitly (the body stays well under API Gateway's limits). */
export const MAX_FLEET_AGENT_IDS = 1000;
export const MAX_FLEET_CONCURRENCY = 100;
export const DEFAULT_FLEET_CONCURRENCY = 10;

/**
 * `POST /agents/stop`: the one-agent stop's `graceful` and `timeout`, a selector (a status, a list
 * of agentIds, or both: those of the list in that status) and how many agents are stopped at once.
 * (`@__PURE__`: esbuild honours `schema`'s no-side-effects mark only in its own file.)
 */
export const fleetStopSchema = /* @__PURE__ */ schema(() =>
  z
    .strictObject({
      graceful: z._default(z.boolean(), true),
      timeout: z._default(z.int().check(z.minimum(0), z.maximum(MAX_STOP_TIMEOUT_MS)), DEFAULT_STOP_TIMEOUT_MS),
      status: z.optional(z.enum(['active', 'stopping'], { message: 'must be "active" or "stopping" (only running agents can be stopped)' })),
      agentIds: z.optional(z.array(uuidSchema).check(z.minLength(1), z.maxLength(MAX_FLEET_AGENT_IDS))),
      concurrency: z._default(z.int().check(z.minimum(1), z.maximum(MAX_FLEET_CONCURRENCY)), DEFAULT_FLEET_CONCURRENCY),
    })
    .check(
      z.refine((s) => s.status !== undefined || s.agentIds !== undefined, {
        message: 'must select agents: give "status" ("active" or "stopping"), "agentIds", or both',
      }),
    ),
);
export type FleetStopInput = z.infer<typeof fleetStopSchema>;

/** `Idempotency-Key`: printable ASCII, as the IETF draft's examples (a UUID fits). */
export const idempotencyKeySchema = /* @__PURE__ */ schema(() =>
  z.string().check(
    z.regex(/^[\x21-\x7e]{1,255}$/, { message: 'must be 1 to 255 printable ASCII characters without spaces (a UUID, say)' }),
  ),
);

export const operationIdSchema = /* @__PURE__ */ schema(() => z.string().check(z.regex(/^[0-9A-HJKMNP-TV-Z]{26}$/, { message: 'must be an operation id as returned by POST /agents/stop' })));

/**
 * Where one selected agent stands: `pending` (selected, its stop not begun), `stopping` (its stop
 * began: `stopId`), then how it ended: its stop's outcome, `failed` (with the error), or `skipped`
 * (not running when the fleet stop reached it, or not found).
 */
export type MemberState = 'pending' | 'stopping' | StopOutcome | 'failed' | 'skipped';
export const OPEN_STATES: readonly MemberState[] = ['pending', 'stopping'];

export interface FleetMember {
  agentId: string;
  state: MemberState;
  stopId?: string;
  error?: string;
  /** Stop attempts that failed with an error worth retrying (a store that was down, contention). */
  attempts?: number;
}

export interface FleetCounts {
  selected: number;
  /** Stops begun and not ended yet (draining), plus selected agents not reached yet. */
  inProgress: number;
  /** Stops ended, by outcome. */
  stopped: number;
  drained: number;
  timed_out: number;
  forced: number;
  failed: number;
  skipped: number;
}

export interface FleetOperation {
  operationId: string;
  /** The request that started it (its workflow's executions all carry it). */
  correlationId?: string;
  status: 'running' | 'completed' | 'failed';
  graceful: boolean;
  timeoutMs: number;
  concurrency: number;
  selector: { status?: 'active' | 'stopping'; agentIds?: string[] };
  /**
   * Where selection stands: agents are selected page by page (a cursor into the byStatus index, or
   * an offset into `agentIds`); a status selection repeats passes until one finds no new agent.
   */
  selection: { done: boolean; pass: number; cursor?: Record<string, unknown>; offset?: number; foundThisPass: number };
  counts: FleetCounts;
  /** The first failures, with reasons (the rest are counted). */
  failures: { agentId: string; error: string }[];
  /** The operation itself failed (its workflow ran out of retries). */
  failure?: { error: string; cause: string };
  /** SHA-256 of the request, to refuse an Idempotency-Key reused for another request. */
  requestHash?: string;
  createdAt: number;
  updatedAt: number;
  completedAt?: number;
}

export const emptyCounts = (): FleetCounts => ({ selected: 0, inProgress: 0, stopped: 0, drained: 0, timed_out: 0, forced: 0, failed: 0, skipped: 0 });

/** The operation as the API shows it. */
export function toFleetView(op: FleetOperation) {
  return {
    operationId: op.operationId,
    status: op.status,
    done: op.status !== 'running',
    graceful: op.graceful,
    timeout: op.timeoutMs,
    concurrency: op.concurrency,
    selector: op.selector,
    counts: op.counts,
    failures: op.failures,
    ...(op.failure && { failure: op.failure }),
    createdAt: op.createdAt,
    updatedAt: op.updatedAt,
    ...(op.completedAt !== undefined && { completedAt: op.completedAt }),
  };
}

/** The input of a fleet stop's workflow: the same for every start of one execution name. */
export const fleetWorkflowInput = (op: Pick<FleetOperation, 'operationId' | 'correlationId'>, resumedAt?: number) => ({
  operationId: op.operationId,
  correlationId: op.correlationId ?? op.operationId,
  ...(resumedAt !== undefined && { resumedAt }),
});
