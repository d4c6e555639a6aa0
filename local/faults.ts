import { type DynamoDBClient, InternalServerError, ProvisionedThroughputExceededException } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';

/**
 * What DynamoDB does deployed and DynamoDB Local never does, injected below the SDK's retry
 * strategy (in the client's deserialize step: each attempt passes through it), so the SDK's real
 * retries run over them:
 * - `lose-response`: the request lands, its answer is lost (a reset connection): the SDK sends
 *   the same request again, which finds its own first attempt already applied (only attempts
 *   that succeed are hit: a refused write's lost answer is no different from its retry's);
 * - `throttle`: refused before it reaches the table (ProvisionedThroughputExceededException);
 * - `internal-error`: refused with DynamoDB's 500 (InternalServerError);
 * - `{ delayMs }`: sent after a delay; `{ until }`: held until the promise settles (a test orders
 *   what happens meanwhile).
 */
export type Fault = 'lose-response' | 'throttle' | 'internal-error' | { delayMs: number } | { until: Promise<unknown> };

/** One request as a fault rule sees it: its operation, the tables it touches, its key (single-item operations). */
export interface FaultRequest {
  operation: string;
  tables: string[];
  key?: Record<string, unknown>;
  body: Record<string, unknown>;
}

export interface FaultRule {
  fault: Fault;
  /** DynamoDB operations (`UpdateItem`, `PutItem`, `TransactWriteItems`...); all when omitted. */
  operations?: string[];
  table?: string;
  match?: (request: FaultRequest) => boolean;
  /** The share of matching attempts it hits (default 1). */
  probability?: number;
  /** How many attempts it hits at most (default: no limit). */
  times?: number;
}

/** Counted fault rules that never hit an attempt: what they were meant to hit never happened. */
export class UnfiredFault extends Error {
  constructor(rules: FaultRule[]) {
    const named = rules.map((r) => `${typeof r.fault === 'string' ? r.fault : 'delayMs' in r.fault ? 'delay' : 'hold'} on ${r.operations?.join('/') ?? 'any operation'}${r.table ? ` of ${r.table}` : ''}`);
    super(`fault rule(s) never fired: ${named.join('; ')}`);
  }
}

export const WRITE_OPERATIONS = ['PutItem', 'UpdateItem', 'DeleteItem', 'BatchWriteItem', 'TransactWriteItems'];

/** The faults one local stack injects, chosen per test; `seed` makes a random plan repeatable. */
export class FaultPlan {
  private readonly rules = new Set<FaultRule & { hits: number }>();
  /** Attempts hit, by fault kind. */
  readonly injected: Record<string, number> = {};
  private state: number;

  constructor(readonly seed = 1) {
    this.state = seed >>> 0 || 1;
  }

  /** Add a rule; the function returned removes it. */
  add(rule: FaultRule): () => void {
    const entry = { ...rule, hits: 0 };
    this.rules.add(entry);
    return () => this.rules.delete(entry);
  }

  /**
   * Remove every rule and zero the counts. A rule given a count (`times`) that never fired is
   * reported (UnfiredFault, after the plan is cleared): the test it belongs to did not meet the
   * fault it was written for (a reworded expression, a path no longer taken) and proved nothing.
   */
  clear(): void {
    const unfired = [...this.rules].filter((rule) => rule.times !== undefined && rule.hits === 0);
    this.rules.clear();
    for (const kind of Object.keys(this.injected)) delete this.injected[kind];
    if (unfired.length > 0) throw new UnfiredFault(unfired);
  }

  get active(): boolean {
    return this.rules.size > 0;
  }

  /** The fault for this attempt, if any rule hits it (`miss` takes the hit back: a lost answer of a write that did not land). */
  pick(request: FaultRequest): { fault: Fault; miss: () => void } | undefined {
    for (const rule of this.rules) {
      if (rule.operations && !rule.operations.includes(request.operation)) continue;
      if (rule.table && !request.tables.includes(rule.table)) continue;
      if (rule.times !== undefined && rule.hits >= rule.times) continue;
      if (rule.match && !rule.match(request)) continue;
      if (rule.probability !== undefined && this.random() >= rule.probability) continue;
      rule.hits++;
      const kind = typeof rule.fault === 'string' ? rule.fault : 'delayMs' in rule.fault ? 'delay' : 'hold';
      this.injected[kind] = (this.injected[kind] ?? 0) + 1;
      return {
        fault: rule.fault,
        miss: () => {
          rule.hits--;
          this.injected[kind]!--;
        },
      };
    }
    return undefined;
  }

  /** mulberry32: small, fast, and the same sequence for the same seed. */
  private random(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
}

function describe(target: string, body: Record<string, unknown>): FaultRequest {
  const operation = target.split('.').pop() ?? '';
  const tables = new Set<string>();
  if (typeof body.TableName === 'string') tables.add(body.TableName);
  for (const item of (body.TransactItems ?? []) as Record<string, { TableName?: string }>[]) {
    for (const op of Object.values(item)) if (op.TableName) tables.add(op.TableName);
  }
  for (const table of Object.keys((body.RequestItems ?? {}) as object)) tables.add(table);
  const key = body.Key ? unmarshall(body.Key as Parameters<typeof unmarshall>[0]) : body.Item && typeof body.TableName === 'string' ? keyOfItem(body.Item) : undefined;
  return { operation, tables: [...tables], body, ...(key && { key }) };
}

function keyOfItem(item: unknown): Record<string, unknown> {
  const all = unmarshall(item as Parameters<typeof unmarshall>[0]);
  return { agentId: all.agentId, ...(all.sk !== undefined && { sk: all.sk }) };
}

const lostResponse = () => Object.assign(new Error('socket hang up (the response was lost after the request landed)'), { code: 'ECONNRESET' });

/** Wire a plan into a client: every attempt the SDK makes passes through it. */
export function injectFaults(client: DynamoDBClient, plan: FaultPlan): void {
  client.middlewareStack.add(
    (next) => async (args) => {
      if (!plan.active) return next(args);
      const request = args.request as { headers: Record<string, string>; body?: string };
      const target = request.headers['x-amz-target'] ?? request.headers['X-Amz-Target'] ?? '';
      const picked = plan.pick(describe(target, request.body ? (JSON.parse(request.body) as Record<string, unknown>) : {}));
      if (picked === undefined) return next(args);
      const { fault } = picked;
      if (fault === 'throttle') {
        throw new ProvisionedThroughputExceededException({ $metadata: { httpStatusCode: 400 }, message: 'The level of configured provisioned throughput for the table was exceeded (injected)' });
      }
      if (fault === 'internal-error') {
        throw new InternalServerError({ $metadata: { httpStatusCode: 500 }, message: 'Internal server error (injected)' });
      }
      if (typeof fault === 'object') {
        await ('delayMs' in fault ? new Promise((resolve) => setTimeout(resolve, fault.delayMs)) : fault.until.catch(() => undefined));
        return next(args);
      }
      // Landed, answered (read in full, so the connection is reused) and then lost on the way back.
      // Only an attempt that landed: a refused one's lost answer is the same as its retry's.
      try {
        await next(args);
      } catch (err) {
        picked.miss();
        throw err;
      }
      throw lostResponse();
    },
    // Around the deserializer, below the retry strategy (finalizeRequest): each attempt comes here.
    { step: 'deserialize', name: 'injectedFaults', priority: 'high' },
  );
}
