import { createHash } from 'node:crypto';
import { AgentConflict, AgentNotFound, IdempotencyKeyReused, OperationNotFound, StopFailed, Unavailable } from './errors.js';
import { publish } from './events.js';
import { type FleetMember, type FleetOperation, type FleetStopInput, type MemberState, OPEN_STATES, emptyCounts, fleetWorkflowInput } from './fleet-model.js';
import { type AgentState, newId } from './model.js';
import { WorkflowEnded, type Deps } from './ports.js';
import { mapBounded } from './selection.js';
import { MAX_POLLS, answerOf } from './stop-view.js';
import { beginGracefulStop, forceStop } from './stop-begin.js';

/** Agents selected per page (one index Query, then one conditional member write each). */
const PAGE_SIZE = 100;
/**
 * A status selection pages the byStatus index while stopping agents moves them out of it; an agent
 * whose index key moved behind the cursor meanwhile is found by the next pass. Passes repeat until
 * one finds no agent not selected yet, at most this many (agents started during the operation can
 * keep a pass busy; they are stopped by the passes that see them).
 */
const MAX_PASSES = 3;
/** A member's stop that failed with an error worth retrying (store down, contention) is tried this many times. */
const MEMBER_ATTEMPTS = 3;
/** Failures listed with their reasons on the operation (all are counted). */
const LISTED_FAILURES = 100;
/**
 * The workflow's wait between checks of the stops still draining: a second, longer for long
 * timeouts so that an execution stays within MAX_POLLS waits (Step Functions' history limit).
 */
export const fleetPollSeconds = (timeoutMs: number) => Math.max(1, Math.ceil(timeoutMs / 1000 / MAX_POLLS));

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/**
 * `POST /agents/stop`: record the operation (with its Idempotency-Key, in the same transaction)
 * and start its workflow. A repeated key returns the operation it started, whatever happened to
 * the first request; the same key with another request is refused. Nothing is stopped here: the
 * workflow does it, so the request's end (or its process's crash) does not matter.
 */
export async function startFleetStop(d: Deps, input: FleetStopInput, idempotencyKey?: string): Promise<{ op: FleetOperation; created: boolean }> {
  const now = d.now();
  const selector = {
    ...(input.status && { status: input.status }),
    ...(input.agentIds && { agentIds: [...new Set(input.agentIds)] }),
  };
  const requestHash = sha256(JSON.stringify([input.graceful, input.timeout, input.concurrency, selector.status ?? null, selector.agentIds ?? null]));
  const keyHash = idempotencyKey === undefined ? undefined : sha256(idempotencyKey);
  const op: FleetOperation = {
    operationId: newId(now),
    status: 'running',
    graceful: input.graceful,
    timeoutMs: input.timeout,
    concurrency: input.concurrency,
    selector,
    selection: { done: false, pass: 1, foundThisPass: 0 },
    counts: emptyCounts(),
    failures: [],
    requestHash,
    ...(d.correlationId() && { correlationId: d.correlationId() }),
    createdAt: now,
    updatedAt: now,
  };
  const result = await d.fleet.create(op, keyHash);
  if (!result.created) {
    const { existing } = result;
    if (!existing) throw new Unavailable('The fleet stop of this Idempotency-Key is being rolled back (its workflow did not start); retry the request');
    if (existing.requestHash !== requestHash) throw new IdempotencyKeyReused(existing.operationId);
    // Heals a first request whose start was lost after its write (a no-op if it runs; one that
    // ended without ending the operation is the reaper's to resume).
    if (existing.status === 'running') await d.fleetWorkflow.start(fleetWorkflowInput(existing)).catch(unlessEnded);
    return { op: existing, created: false };
  }
  try {
    await d.fleetWorkflow.start(fleetWorkflowInput(op));
  } catch (err) {
    d.log.error('fleet stop workflow did not start', { operationId: op.operationId, error: err as Error });
    // A start reported failed may still have happened: an operation a step already advanced stands.
    if (await d.fleet.remove(op, keyHash)) {
      throw new Unavailable('The fleet stop could not be started (its workflow did not start); nothing was stopped, retry the request');
    }
    return { op: await getFleetStop(d, op.operationId), created: true };
  }
  d.log.info('fleet stop started', { operationId: op.operationId, selector: { status: selector.status, agentIds: selector.agentIds?.length } });
  return { op, created: true };
}

export async function getFleetStop(d: Deps, operationId: string): Promise<FleetOperation> {
  const op = await d.fleet.get(operationId);
  if (!op) throw new OperationNotFound();
  return op;
}

/**
 * One step of the fleet stop workflow (its `Advance` task), bounded by `budgetMs`: select the next
 * pages of agents and begin their stops, `concurrency` at a time, through the one-agent stop code
 * (every guarantee of a stop holds per agent); once all are selected, settle the stops still
 * draining, count the outcomes from the members, and end the operation when none is open.
 * Every step can be repeated (a retried task, a resumed execution): members are written once,
 * a stop already begun is found by its agent, and the counts are recounted from the members.
 */
export async function advanceFleetStop(d: Deps, operationId: string, budgetMs: number): Promise<{ state: 'working' | 'waiting' | 'done'; waitSeconds: number }> {
  const started = Date.now();
  const op = await d.fleet.get(operationId);
  if (!op || op.status !== 'running') return { state: 'done', waitSeconds: 0 };
  const outOfTime = () => Date.now() - started > budgetMs || d.shutdown.aborted;

  while (!op.selection.done) {
    if (outOfTime()) return { state: 'working', waitSeconds: 0 };
    await selectNextPage(d, op);
    await d.fleet.saveProgress(operationId, op, d.now());
  }

  const members = await d.fleet.members(operationId);
  const open = members.filter((m) => OPEN_STATES.includes(m.state));
  await settleMembers(d, op, open, outOfTime);
  Object.assign(op, tally(members));
  if (op.counts.inProgress > 0) {
    await d.fleet.saveProgress(operationId, op, d.now());
    return { state: 'waiting', waitSeconds: fleetPollSeconds(op.timeoutMs) };
  }
  if (await d.fleet.end(operationId, { status: 'completed', counts: op.counts, failures: op.failures }, d.now())) {
    d.log.info('fleet stop completed', { operationId, ...op.counts });
    await publish(d, { type: 'Fleet Stop Completed', detail: { operationId, status: 'completed', counts: op.counts } });
  }
  return { state: 'done', waitSeconds: 0 };
}

/**
 * A fleet stop not advanced for the reaper's grace period: its workflow is started (its request
 * died before starting it; a running one is joined). If its execution ended without ending the
 * operation (its failure path failed too), the operation is resumed in a new execution, named by
 * the progress it was found at, so racing reapers resume it once; should that one also have
 * ended without progress, the operation ends `failed`, never left `running`.
 */
export async function healFleetStop(
  d: Deps,
  op: Pick<FleetOperation, 'operationId' | 'correlationId' | 'updatedAt'>,
): Promise<'started' | 'resumed' | 'ended'> {
  const { operationId } = op;
  for (const input of [fleetWorkflowInput(op), fleetWorkflowInput(op, op.updatedAt)]) {
    try {
      await d.fleetWorkflow.start(input);
      return 'resumedAt' in input ? 'resumed' : 'started';
    } catch (err) {
      unlessEnded(err);
    }
  }
  await failFleetStop(d, operationId, 'FleetStopStalled', 'Its workflow ended twice without ending the operation; agents it stopped stay stopped, start another fleet stop for the rest');
  return 'ended';
}

function unlessEnded(err: unknown): void {
  if (!(err instanceof WorkflowEnded)) throw err;
}

/** The workflow's failure path: the operation ends `failed` with the error, its counts as they stand. */
export async function failFleetStop(d: Deps, operationId: string, error: string, cause: string): Promise<void> {
  const members = await d.fleet.members(operationId);
  const { counts, failures } = tally(members);
  const failure = { error, cause: cause.slice(0, 1000) };
  if (await d.fleet.end(operationId, { status: 'failed', counts, failures, failure }, d.now())) {
    d.log.error('fleet stop failed', { operationId, error });
    await publish(d, { type: 'Fleet Stop Completed', detail: { operationId, status: 'failed', counts } });
  }
}

/** Select one page (of the status index, or of the listed ids), begin the new members' stops, move the cursor. */
async function selectNextPage(d: Deps, op: FleetOperation): Promise<void> {
  const sel = op.selection;
  let agentIds: string[];
  let more: boolean;
  if (op.selector.agentIds) {
    const offset = sel.offset ?? 0;
    agentIds = op.selector.agentIds.slice(offset, offset + PAGE_SIZE);
    sel.offset = offset + agentIds.length;
    more = sel.offset < op.selector.agentIds.length;
  } else {
    const page = await d.agents.queryByStatus(op.selector.status!, { limit: PAGE_SIZE, startKey: sel.cursor });
    agentIds = page.items.map((a) => a.agentId);
    sel.cursor = page.lastKey;
    more = page.lastKey !== undefined;
  }
  const fresh: FleetMember[] = (await d.fleet.addMembers(op.operationId, agentIds, d.now())).map((agentId) => ({ agentId, state: 'pending' }));
  sel.foundThisPass += fresh.length;
  op.counts.selected += fresh.length;
  await mapBounded(fresh, op.concurrency, (m) => stopMember(d, op, m));
  await d.fleet.putMembers(op.operationId, fresh, d.now());
  for (const m of fresh) count(op, m);

  if (more) return;
  if (op.selector.agentIds || sel.foundThisPass === 0 || sel.pass >= MAX_PASSES) {
    op.selection = { done: true, pass: sel.pass, foundThisPass: sel.foundThisPass };
  } else {
    op.selection = { done: false, pass: sel.pass + 1, foundThisPass: 0 };
  }
}

/** Progress shown while selecting (the settle phase recounts everything from the members). */
function count(op: FleetOperation, m: FleetMember): void {
  if (OPEN_STATES.includes(m.state)) op.counts.inProgress++;
  else bump(op, m);
}

function bump(op: Pick<FleetOperation, 'counts' | 'failures'>, m: FleetMember): void {
  const c = op.counts;
  if (m.state === 'failed') {
    c.failed++;
    if (op.failures.length < LISTED_FAILURES) op.failures.push({ agentId: m.agentId, error: m.error ?? 'unknown error' });
  } else if (m.state === 'skipped') {
    c.skipped++;
  } else if (m.state === 'drained' || m.state === 'timed_out' || m.state === 'forced') {
    c.stopped++;
    c[m.state]++;
  }
}

/** The counts, from the members alone (the authority: repeated steps cannot double count). */
function tally(members: FleetMember[]): Pick<FleetOperation, 'counts' | 'failures'> {
  const result = { counts: emptyCounts(), failures: [] as FleetOperation['failures'] };
  result.counts.selected = members.length;
  for (const m of members) {
    if (OPEN_STATES.includes(m.state)) result.counts.inProgress++;
    else bump(result, m);
  }
  return result;
}

/**
 * Record where a member stands, in memory; the caller writes the batch's members after (a crash
 * before that leaves them `pending`, and the next step finds their stops through their agents).
 */
function settle(m: FleetMember, state: MemberState, detail: { stopId?: string; error?: string; attempts?: number } = {}): void {
  Object.assign(m, { state }, detail);
}

/**
 * Begin one member's stop with the one-agent stop code: graceful (finalized at once when idle, else
 * its own drain workflow runs) or forced. A member found not running was either stopped by an
 * earlier attempt of this operation (its lastStop says so) or skipped.
 */
async function stopMember(d: Deps, op: FleetOperation, m: FleetMember): Promise<void> {
  try {
    if (op.selector.agentIds && op.selector.status) {
      const agent = await d.agents.get(m.agentId);
      if (!agent) return settle(m, 'skipped', { error: 'agent not found' });
      if (agent.status !== op.selector.status) return await notRunning(d, op, m, agent);
    }
    if (op.graceful) {
      const { stop, stopped } = await beginGracefulStop(d, m.agentId, { timeoutMs: op.timeoutMs, reason: 'fleet', operationId: op.operationId });
      return settle(m, stopped?.outcome ?? 'stopping', { stopId: stop.stopId });
    }
    const stopped = await forceStop(d, m.agentId, 'fleet', op.operationId);
    return settle(m, stopped.outcome, { stopId: stopped.stopId });
  } catch (err) {
    if (err instanceof AgentNotFound) return settle(m, 'skipped', { error: 'agent not found' });
    if (err instanceof AgentConflict && err.code === 'AGENT_NOT_RUNNING') return notRunning(d, op, m, await d.agents.get(m.agentId));
    if (err instanceof StopFailed) return settle(m, 'failed', { error: `${err.message}: its stop workflow did not start` });
    // A store that is down, contention: the next step tries again, a few times.
    const attempts = (m.attempts ?? 0) + 1;
    d.log.warn('fleet stop could not stop an agent', { operationId: op.operationId, agentId: m.agentId, attempts, error: err as Error });
    if (attempts >= MEMBER_ATTEMPTS) return settle(m, 'failed', { error: (err as Error).message, attempts });
    return settle(m, 'pending', { attempts });
  }
}

/** Not running: stopped by an earlier attempt of this operation (after a crash), or skipped. */
async function notRunning(d: Deps, op: FleetOperation, m: FleetMember, agent: AgentState | undefined): Promise<void> {
  if (!agent) return settle(m, 'skipped', { error: 'agent not found' });
  const last = agent.status === 'inactive' ? agent.lastStop : undefined;
  if (last?.operationId === op.operationId) return settle(m, last.outcome, { stopId: last.stopId });
  if (agent.status === 'stopping' && agent.stop && agent.stop.operationId === op.operationId) return settle(m, 'stopping', { stopId: agent.stop.stopId });
  return settle(m, 'skipped', { error: `agent was ${agent.status}` });
}

/**
 * Settle the open members: stops not begun are begun (again), stops draining are looked up, their
 * agents read in batches; a stop that ended is recorded with its outcome.
 */
async function settleMembers(d: Deps, op: FleetOperation, open: FleetMember[], outOfTime: () => boolean): Promise<void> {
  for (let i = 0; i < open.length; i += PAGE_SIZE) {
    if (outOfTime()) return;
    const batch = open.slice(i, i + PAGE_SIZE);
    const agents = new Map((await d.agents.getMany(batch.filter((m) => m.state === 'stopping').map((m) => m.agentId))).map((a) => [a.agentId, a]));
    const before = batch.map((m) => JSON.stringify(m));
    await mapBounded(batch, op.concurrency, async (m) => {
      if (m.state === 'pending') return stopMember(d, op, m);
      const agent = agents.get(m.agentId);
      // Still draining under this stop: its own workflow ends it by its deadline.
      if (agent?.status === 'stopping' && agent.stop && agent.stop.stopId === m.stopId && !agent.stop.failure) return;
      const view = await answerOf(d, m.agentId, m.stopId!).catch((err: unknown) => {
        if (err instanceof AgentNotFound) return undefined;
        throw err;
      });
      if (!view) return settle(m, 'skipped', { error: 'agent was deleted' });
      if (view.kind === 'stopped') return settle(m, view.outcome);
      if (view.kind === 'failed') return settle(m, 'failed', { error: `stop ${m.stopId} failed: ${view.error}` });
    });
    await d.fleet.putMembers(
      op.operationId,
      batch.filter((m, i) => JSON.stringify(m) !== before[i]),
      d.now(),
    );
  }
}
