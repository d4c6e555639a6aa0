import { randomUUID } from 'node:crypto';
import { publish } from './events.js';
import { RETRY_LIMITS, retriesExhausted } from './retry.js';
import { AgentConditionFailed, ModelKeyUnavailable, RuntimeRefused, runtimeFor, type Deps } from './ports.js';
import { cursorShapes, decodeCursor, encodeCursor } from './cursor.js';
import {
  AgentConflict,
  AgentNotFound,
  PreconditionFailed,
  ValidationError,
  agentAlreadyRunning,
  agentStopping,
} from './errors.js';
import {
  type AgentCardSummary,
  type AgentConfig,
  type AgentState,
  type AgentStatus,
  AGENT_STATUSES,
  type StoredAgent,
  type CreateAgentInput,
  type Runtime,
  type UpdateAgentInput,
  DEFAULT_IDLE_TIMEOUT_MS,
  idleDueAt,
  nextReaperCheck,
  sameActivity,
} from './model.js';

/**
 * Create an agent, with its signing secret (the `http` runtime signs every request with it): the
 * one moment the secret is returned, with the rotation below.
 */
export async function createAgent(d: Deps, input: CreateAgentInput): Promise<StoredAgent> {
  const agentCard = input.runtime ? await assertRuntimeAllowed(d, input.runtime) : undefined;
  const now = d.now();
  const agentId = input.agentId ?? randomUUID();
  const configVersion = randomUUID();
  const config: AgentConfig = {
    agentId,
    name: input.name,
    ...(input.description !== undefined && { description: input.description }),
    settings: input.settings ?? {},
    runtime: input.runtime ?? { type: 'echo' },
    ...(agentCard && { agentCard }),
    signingSecret: d.newSigningSecret(),
    configVersion,
  };
  const state: AgentState = {
    agentId,
    status: 'inactive',
    version: 1,
    configVersion,
    idleTimeoutMs: input.idleTimeoutMs === undefined ? DEFAULT_IDLE_TIMEOUT_MS : input.idleTimeoutMs,
    leases: {},
    createdAt: now,
    updatedAt: now,
    dueAt: now,
  };
  try {
    await d.agents.create(state, config);
  } catch (err) {
    if (err instanceof AgentConditionFailed) {
      throw new AgentConflict('AGENT_EXISTS', `An agent with agentId ${agentId} already exists`);
    }
    throw err;
  }
  return { ...config, ...state };
}

/** A new signing secret, returned once; the previous one stops working at once. */
export async function rotateSigningSecret(d: Deps, agentId: string): Promise<{ agentId: string; signingSecret: string }> {
  const signingSecret = d.newSigningSecret();
  try {
    await d.agents.setSigningSecret(agentId, signingSecret, d.now());
  } catch (err) {
    if (err instanceof AgentConditionFailed) throw new AgentNotFound();
    throw err;
  }
  return { agentId, signingSecret };
}

/**
 * What the operator allows a runtime to call, checked when an agent is created or changed (and
 * again at each call): https only unless plain http is allowed, and an llm agent's key only to the
 * base URL the operator bound it to. The key's sentence is the same whatever the reason.
 */
async function assertRuntimeAllowed(d: Deps, runtime: Runtime): Promise<AgentCardSummary | undefined> {
  const { refusal, agentCard } = await checkRuntime(d, runtime);
  if (refusal) throw new ValidationError(`Field "${refusal.field}" ${refusal.why}`);
  return agentCard;
}

/** The operator's policy, then the runtime's own check (an a2a agent's card): a refusal, or what the runtime learnt. */
async function checkRuntime(d: Deps, runtime: Runtime): Promise<{ refusal?: { field: string; why: string }; agentCard?: AgentCardSummary }> {
  const refusal = await runtimeRefusal(d, runtime);
  if (refusal) return { refusal };
  try {
    return (await runtimeFor(d.runtimes, { runtime }).check?.(runtime)) ?? {};
  } catch (err) {
    if (err instanceof RuntimeRefused) return { refusal: { field: err.field, why: err.why } };
    throw err;
  }
}

/** Why the operator's policy refuses this runtime now (the field and a sentence), or undefined. */
async function runtimeRefusal(d: Deps, runtime: Runtime): Promise<{ field: string; why: string } | undefined> {
  const url = runtime.type === 'http' || runtime.type === 'a2a' ? { field: 'runtime.url', value: runtime.url } : runtime.type === 'llm' ? { field: 'runtime.baseUrl', value: runtime.baseUrl } : undefined;
  if (url && !d.config.runtimeAllowHttp && !url.value.toLowerCase().startsWith('https:')) {
    return { field: url.field, why: 'must be an https:// URL: plain http is refused here (the operator allows it with RUNTIME_ALLOW_HTTP=1)' };
  }
  if (runtime.type !== 'llm') return undefined;
  try {
    await d.modelKeys.keyFor(runtime.apiKey, runtime.baseUrl);
    return undefined;
  } catch (err) {
    if (!(err instanceof ModelKeyUnavailable)) throw err;
    return { field: 'runtime.apiKey', why: `cannot be used: ${err.message} ("runtime.baseUrl"); the operator binds each key to one base URL` };
  }
}

export async function getAgent(d: Deps, agentId: string): Promise<StoredAgent> {
  const item = await d.agents.getWhole(agentId);
  if (!item) throw new AgentNotFound();
  return item;
}

export async function listAgents(d: Deps, q: { status?: AgentStatus; limit: number; cursor?: string }) {
  const startKey = decodeCursor(q.cursor, q.status ? cursorShapes.agentsByStatus(q.status) : cursorShapes.agents());
  const page = await d.agents.list(q.status, q.limit, startKey);
  return { items: page.items, nextCursor: encodeCursor(page.lastKey) };
}

/** The fleet by status: one count per status, read together. */
export async function countAgents(d: Deps): Promise<Record<AgentStatus, number> & { total: number }> {
  const counts = Object.fromEntries(await Promise.all(AGENT_STATUSES.map(async (status) => [status, await d.agents.count(status)] as const))) as Record<AgentStatus, number>;
  return { ...counts, total: counts.active + counts.stopping + counts.inactive };
}

/** PATCH: runtime and settings only while inactive; If-Match pins the version. */
export async function updateAgent(d: Deps, agentId: string, input: UpdateAgentInput, ifVersion?: number): Promise<StoredAgent> {
  const set: Record<string, unknown> = {};
  const remove: string[] = [];
  if (input.name !== undefined) set.name = input.name;
  if (input.description === null) remove.push('description');
  else if (input.description !== undefined) set.description = input.description;
  if (input.settings !== undefined) set.settings = input.settings;
  if (input.runtime !== undefined) set.runtime = input.runtime;
  if (input.runtime) {
    const agentCard = await assertRuntimeAllowed(d, input.runtime);
    if (agentCard) set.agentCard = agentCard;
    else remove.push('agentCard');
  }
  const requireInactive = input.settings !== undefined || input.runtime !== undefined;
  let item: StoredAgent;
  try {
    item = await d.agents.update(agentId, { set, remove, idleTimeoutMs: input.idleTimeoutMs }, { ifVersion, requireInactive, now: d.now() });
  } catch (err) {
    if (!(err instanceof AgentConditionFailed)) throw err;
    const current = err.current;
    if (!current) throw new AgentNotFound();
    if (ifVersion !== undefined && current.version !== ifVersion) throw new PreconditionFailed(current.version);
    throw new AgentConflict(
      'AGENT_NOT_INACTIVE',
      `Agent is ${current.status}: runtime and settings can only be changed while it is inactive; stop it first`,
    );
  }
  if (input.idleTimeoutMs !== undefined && item.status === 'active') {
    // The reaper finds an active agent by its next check: move it to the new timeout's, only for
    // the version just written (a later update or a transition moves it itself) and only if no
    // message was admitted since (its lease's check must not be lost).
    await d.agents
      .moveDueAt(agentId, 'active', nextReaperCheck(item), sameActivity(item, { version: item.version }))
      .catch((err: unknown) => {
        if (!(err instanceof AgentConditionFailed)) throw err;
      });
  }
  return item;
}

/** Delete the agent (only while inactive), then its records. */
export async function deleteAgent(d: Deps, agentId: string): Promise<void> {
  const deletedAt = d.now();
  try {
    await d.agents.delete(agentId);
  } catch (err) {
    if (!(err instanceof AgentConditionFailed)) throw err;
    if (!err.current) throw new AgentNotFound();
    throw new AgentConflict('AGENT_NOT_INACTIVE', `Agent is ${err.current.status}: stop it before deleting it`);
  }
  // The agent is gone (the commit point); its records follow. Should this be cut short, the
  // records' TTL removes what is left.
  await d.records.deleteAll(agentId, deletedAt);
}

/** inactive -> active. */
export async function startAgent(d: Deps, agentId: string): Promise<StoredAgent> {
  for (let attempt = 0; ; attempt++) {
    const current = await getAgent(d, agentId);
    assertStartable(current);
    // An agent that could not answer a single message is not started (its key was unbound, or the policy changed since it was written).
    const { refusal } = await checkRuntime(d, current.runtime);
    if (refusal) throw new AgentConflict('RUNTIME_NOT_ALLOWED', `Agent cannot start: its "${refusal.field}" ${refusal.why}; change the runtime (PATCH) or ask the operator`);
    const now = d.now();
    try {
      const state = await d.agents.start(agentId, now, current.version, idleDueAt(now, current.idleTimeoutMs));
      await publish(d, { type: 'Agent Started', detail: { agentId } });
      // The version it was started at is the one read: so is its configuration.
      return { ...current, ...state };
    } catch (err) {
      if (!(err instanceof AgentConditionFailed)) throw err;
      if (!err.current) throw new AgentNotFound();
      assertStartable(err.current);
      // Still inactive: a concurrent PATCH moved the version; read again (bounded).
      if (attempt >= RETRY_LIMITS.start) throw retriesExhausted();
    }
  }
}

function assertStartable(agent: AgentState): void {
  if (agent.status === 'active') throw agentAlreadyRunning();
  if (agent.status === 'stopping') throw agentStopping();
}
