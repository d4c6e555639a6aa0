/**
 * `npm run bench:capacity`: what each operation costs in DynamoDB capacity units (as DynamoDB
 * Local reports them: AWS's billing and throttling rules) and in calls, for a small agent and for
 * one holding 15 KB of settings and a 16 KB system prompt, each figure next to its budget (a miss
 * fails the exit code); then the cost at list prices of the operations the product sells.
 */
import { OpenAiStandIn } from '../local/openai-standin.js';
import { eventually } from '../test/support/api.js';
import { benchStack, goal } from './support.js';
import { isRead, meter, type MeteredCall } from './meter.js';
import { PRICES, bill, dollars, type Usage } from './prices.js';
import { runAs } from '../functions/adapters/deps.js';
import { runReaper } from '../functions/agents/reaper.js';

const HEARTBEAT_MS = 1000;
const LONG_WORK_MS = 6000;
const MESSAGES = 50;

const model = await new OpenAiStandIn().start();
const config = { heartbeatMs: HEARTBEAT_MS, leaseTtlMs: 8000, clockToleranceMs: 2000, stopPollMs: 100 };
/** State transitions and Task states (one Lambda invocation each) per stop workflow execution. */
const executions = new Map<string, { transitions: number; tasks: number }>();
const stack = await benchStack({
  config,
  workflow: {
    onEvent: (name, e) => {
      if (e.type !== 'StateEntered') return;
      const x = executions.get(name) ?? { transitions: 0, tasks: 0 };
      x.transitions++;
      if ((e as { state?: { type?: string } }).state?.type === 'Task') x.tasks++;
      executions.set(name, x);
    },
  },
});
/** The memory every function is deployed with (infra/agent-function.ts). */
const LAMBDA_GB = 0.5;
const usage: Record<string, Usage> = {};
const { app } = stack;
const tables = { agents: app.deps.config.agentsTable!, records: app.deps.config.recordsTable! };
const here = meter(app.db);
const { api } = stack;

const big = { settings: { notes: 'n'.repeat(15 * 1024) }, system: 's'.repeat(16 * 1024) };
type Size = 'small' | 'large';
const SIZES: Size[] = ['small', 'large'];

async function agent(size: Size, opts: { delayMs?: number } = {}): Promise<string> {
  const runtime =
    size === 'small'
      ? { type: 'echo', ...(opts.delayMs && { delayMs: opts.delayMs }) }
      : { type: 'llm', baseUrl: model.url, model: 'bench', system: big.system, memoryTurns: 0 };
  const res = await api('POST', '/agents', { name: `bench-${size}`, runtime, ...(size === 'large' && { settings: big.settings }) });
  if (res.status !== 201) throw new Error(`create answered ${res.status}: ${res.text}`);
  const id = res.body.data.agentId as string;
  const started = await api('POST', `/agents/${id}/start`);
  if (started.status !== 200) throw new Error(`start answered ${started.status}: ${started.text}`);
  return id;
}

const onHot = (agentId: string) => (c: MeteredCall) => c.tables.includes(tables.agents) && (!c.key || c.key.agentId === agentId);
const rows: string[] = [];
const figures: Record<string, Record<Size, number>> = {};
const record = (name: string, size: Size, value: number) => ((figures[name] ??= { small: NaN, large: NaN })[size] = value);

try {
  for (const size of SIZES) {
    // Synchronous messages: the first one in this process reads the agent's configuration; the rest find it cached.
    const id = await agent(size);
    here.reset();
    const first = await api('POST', `/agents/${id}/messages`, { text: 'first' });
    if (first.status !== 200) throw new Error(`message answered ${first.status}: ${first.text}`);
    const firstCost = here.totals();
    record('first message in a process: RCU', size, firstCost.rcu);
    here.reset();
    const t0 = performance.now();
    for (let i = 0; i < MESSAGES; i++) {
      const res = await api('POST', `/agents/${id}/messages`, { text: `message ${i}` });
      if (res.status !== 200) throw new Error(`message answered ${res.status}: ${res.text}`);
    }
    const syncMs = (performance.now() - t0) / MESSAGES;
    const sync = here.totals();
    record('sync message: WCU', size, sync.wcu / MESSAGES);
    record('sync message: RCU', size, sync.rcu / MESSAGES);
    record('sync message: calls', size, sync.calls / MESSAGES);
    const hot = here.totals((c) => onHot(id)(c) && !isRead(c));
    record('sync message: hot-item writes', size, hot.writes / MESSAGES);
    record('sync message: hot-item WCU', size, hot.wcu / MESSAGES);
    if (size === 'small') {
      // A request's time here stands for its function's billed duration.
      usage['a synchronous message'] = { apiRequests: 1, lambdaInvocations: 1, lambdaGbSeconds: (syncMs / 1000) * LAMBDA_GB, writeUnits: sync.wcu / MESSAGES, readUnits: sync.rcu / MESSAGES, events: 1 };
      // Asynchronous: the API's function, the queue (send, receive, delete), the worker.
      here.reset();
      const a0 = performance.now();
      const ids: string[] = [];
      for (let i = 0; i < MESSAGES; i++) {
        const res = await api('POST', `/agents/${id}/messages`, { text: `async ${i}` }, { prefer: 'respond-async' });
        if (res.status !== 202) throw new Error(`async message answered ${res.status}: ${res.text}`);
        ids.push(res.body.data.messageId as string);
      }
      // Waited for by their events, so no read of this benchmark's is counted.
      await eventually(async () => ids.every((m) => app.bus.published.some((e) => e.type === 'Message Completed' && e.detail.messageId === m)), 30_000);
      const asyncMs = (performance.now() - a0) / MESSAGES;
      const asyncCost = here.totals();
      record('async message: WCU', size, asyncCost.wcu / MESSAGES);
      record('async message: RCU', size, asyncCost.rcu / MESSAGES);
      usage['an asynchronous message'] = {
        apiRequests: 1,
        lambdaInvocations: 2,
        lambdaGbSeconds: ((syncMs + asyncMs) / 1000) * LAMBDA_GB,
        writeUnits: asyncCost.wcu / MESSAGES,
        readUnits: asyncCost.rcu / MESSAGES,
        sqsRequests: 3,
        events: 1,
      };
    }

    // GET /agents/{id}
    here.reset();
    await api('GET', `/agents/${id}`);
    record('GET /agents/{id}: RCU', size, here.totals().rcu);

    // Idle stops, graceful and forced.
    here.reset();
    const graceful = await api('POST', `/agents/${id}/stop`, { graceful: true, timeout: 30_000 });
    if (graceful.status !== 200) throw new Error(`idle stop answered ${graceful.status}: ${graceful.text}`);
    record('idle graceful stop: WCU', size, here.totals().wcu);
    record('idle graceful stop: calls', size, here.totals().calls);
    await api('POST', `/agents/${id}/start`);
    here.reset();
    const forced = await api('POST', `/agents/${id}/stop`, { graceful: false });
    if (forced.status !== 200) throw new Error(`idle force stop answered ${forced.status}: ${forced.text}`);
    // With the runtime told after the answer, by the worker from the queue: it reads the agent (to
    // skip a run started since) and its configuration, and writes nothing.
    await app.queue.idle();
    const forcedCost = here.totals();
    record('idle force stop: WCU', size, forcedCost.wcu);
    record('idle force stop, with its close job: calls', size, forcedCost.calls);
    record('idle force stop, with its close job: RCU', size, forcedCost.rcu);

    // One long message (async, on the worker): its heartbeats, then the whole message.
    model.delayMs = LONG_WORK_MS;
    const long = await agent(size, { delayMs: LONG_WORK_MS });
    await api('POST', `/agents/${long}/messages`, { text: 'warm' }, { prefer: 'respond-async' });
    await eventually(async () => ((await api('GET', `/agents/${long}`)).body.data.inFlight === 0 ? true : undefined), 30_000);
    here.reset();
    const sent = await api('POST', `/agents/${long}/messages`, { text: 'long' }, { prefer: 'respond-async' });
    const messageId = sent.body.data.messageId as string;
    await eventually(async () => ((await app.deps.records.getMessage(long, messageId))?.status === 'completed' ? true : undefined), 30_000);
    const isBeat = (c: MeteredCall) => c.expression === 'SET #leases.#m.expiresAt = :expiresAt';
    const beats = here.totals(isBeat);
    record('heartbeat: WCU', size, beats.wcu / Math.max(1, beats.calls));
    record(`one ${LONG_WORK_MS / 1000} s message (1 s heartbeats): WCU`, size, here.totals((c) => !isRead(c)).wcu);

    // A stop request waiting out a drain: it polls, as deployed.
    {
      const [served, m] = [app, here];
      const msg = await api('POST', `/agents/${long}/messages`, { text: 'drain me' }, { prefer: 'respond-async' });
      const drainId = msg.body.data.messageId as string;
      // Claimed by the worker and running.
      await eventually(async () => {
        const lease = (await app.deps.agents.get(long))?.leases?.[drainId];
        return lease !== undefined && !lease.queued;
      }, 10_000);
      m.reset();
      const s0 = performance.now();
      const res = await served.api('POST', `/agents/${long}/stop`, { graceful: true, timeout: 30_000 });
      const stopMs = performance.now() - s0;
      if (res.status !== 200) throw new Error(`waiting stop answered ${res.status}: ${res.text}`);
      // Every read of the hot item costs the same (the stop request's polls, the workflow's checks).
      const reads = m.totals((c) => c.command === 'GetItem' && c.tables.includes(tables.agents));
      record('waiting stop: RCU per poll', size, reads.rcu / Math.max(1, reads.calls));
      record('waiting stop: hot-item reads (polls and drain checks)', size, reads.calls);
      if (size === 'small') {
        const run = [...executions.values()].at(-1) ?? { transitions: 0, tasks: 0 };
        const units = m.totals();
        // The request waits out the drain (billed), each Task state is an invocation of about a message's time.
        usage['a graceful stop with a drain'] = {
          apiRequests: 1,
          lambdaInvocations: 1 + run.tasks,
          lambdaGbSeconds: ((stopMs + run.tasks * 20) / 1000) * LAMBDA_GB,
          writeUnits: units.wcu,
          readUnits: units.rcu,
          transitions: run.transitions,
          events: 2,
        };
        record('graceful stop with a drain: state transitions', size, run.transitions);
      }
      await api('POST', `/agents/${long}/start`);
    }
    model.delayMs = 0;
    await api('POST', `/agents/${long}/stop`, { graceful: false });
  }

  // At rest: the reaper's schedule over a fleet with nothing due (every 5 minutes deployed).
  here.reset();
  const r0 = performance.now();
  await runAs(app.functionDeps('Reaper'), () => runReaper(app.functionDeps('Reaper'), { budgetMs: 10_000 }));
  const reaperMs = performance.now() - r0;
  const runs = (30 * 24 * 60) / 5;
  const reaper = here.totals();
  usage['a month at rest (reaper every 5 min)'] = { lambdaInvocations: runs, lambdaGbSeconds: runs * (reaperMs / 1000) * LAMBDA_GB, readUnits: runs * reaper.rcu, writeUnits: runs * reaper.wcu };

  const budgets: [string, number, string][] = [
    ['sync message: WCU', 4, 'WCU'],
    ['sync message: RCU', 0.1, 'RCU'],
    ['heartbeat: WCU', 1, 'WCU'],
    // Not 6: the floor of a stop whose three states are all indexed (docs/ARCHITECTURE.md: Cost).
    ['idle graceful stop: WCU', 7, 'WCU'],
    ['idle force stop: WCU', 7, 'WCU'],
    ['waiting stop: RCU per poll', 1, 'RCU'],
    ['sync message: hot-item writes', 2, ''],
  ];
  rows.push(`${'operation'.padEnd(52)} ${'small'.padStart(8)} ${'large'.padStart(8)}   goal`);
  for (const [name, bound, unit] of budgets) {
    const f = figures[name]!;
    const met = SIZES.every((s) => f[s] <= bound);
    if (!met) process.exitCode = 1;
    rows.push(`${name.padEnd(52)} ${f.small.toFixed(2).padStart(8)} ${f.large.toFixed(2).padStart(8)}   <= ${bound} ${unit}  ${met ? 'met' : 'MISSED'}`);
  }
  for (const [name, f] of Object.entries(figures)) {
    if (budgets.some(([b]) => b === name)) continue;
    const show = (v: number) => (Number.isNaN(v) ? '-' : v.toFixed(2)).padStart(8);
    rows.push(`${name.padEnd(52)} ${show(f.small)} ${show(f.large)}`);
  }
  // One partition takes 1,000 WCU/s: the agent's hot item is in one.
  const hotWcu = Math.max(figures['sync message: hot-item WCU']!.small, figures['sync message: hot-item WCU']!.large);
  rows.push(goal('messages/s one agent takes before its partition throttles', 1000 / hotWcu, 500, '/s', 0, true));
  rows.push('', `cost at list prices (${PRICES.region}, on-demand, no free tier, prices of ${PRICES.date}; functions at ${LAMBDA_GB * 1024} MB arm64)`);
  const scale: Record<string, [number, string]> = {
    'a synchronous message': [1e6, 'per million'],
    'an asynchronous message': [1e6, 'per million'],
    'a graceful stop with a drain': [1e3, 'per thousand'],
    'a month at rest (reaper every 5 min)': [1, 'per month'],
  };
  for (const [name, u] of Object.entries(usage)) {
    const [n, per] = scale[name]!;
    const parts = Object.entries(bill(u))
      .filter(([, v]) => v > 0)
      .map(([service, v]) => `${service} $${(v * n).toFixed(3)}`)
      .join(', ');
    rows.push(`${name.padEnd(52)} $${(dollars(u) * n).toFixed(3).padStart(8)} ${per}  (${parts})`);
  }
  console.log(rows.join('\n'));
} finally {
  await stack.close();
  await model.stop();
}
