/**
 * `npm run bench`: stop latency on the local stack (DynamoDB Local + the ASL through
 * aws-local-stepfunctions), printed as figures.
 *   - idle stops: request latency of POST /stop on an agent with nothing in flight
 *   - drains of N messages: the stop waits for N in-flight messages; we measure from the last
 *     message's completion to the agent's stoppedAt (the event-driven fast path), and the
 *     state transitions its execution took
 *   - a drain that can only end by timeout (a crashed worker): transitions for that path
 */
import { GatedRuntime } from '../test/support/runtimes.js';
import { benchStack, countCalls, goal, percentile, rawConditionalWrite, summary } from './support.js';

const gated = new GatedRuntime();
const transitions = new Map<string, number>();
const stack = await benchStack({
  runtimes: gated.registry,
  workflow: { onEvent: (stopId, e) => e.type === 'StateEntered' && transitions.set(stopId, (transitions.get(stopId) ?? 0) + 1) },
});
const { api } = stack;
const calls = countCalls(stack.app.db);
const rawWrite = (agentId: string) => rawConditionalWrite(stack.app.db, stack.app.deps.config.agentsTable!, agentId);
const create = async (gatedAgent: boolean) => {
  const res = await api('POST', '/agents', { name: 'bench', settings: gatedAgent ? { gated: true } : {} });
  const id = res.body.data.agentId as string;
  await api('POST', `/agents/${id}/start`);
  return id;
};

try {
  const lines: string[] = [];
  // Warm-up: module caches, connections, JIT.
  for (let i = 0; i < 5; i++) await api('POST', `/agents/${await create(false)}/stop`, {});

  // Idle stops interleaved with raw conditional writes, so both meet the same warm JVM.
  const idle: number[] = [];
  const raw: number[] = [];
  let stopCalls = { reads: 0, writes: 0, transactions: 0 };
  for (let i = 0; i < 50; i++) {
    const id = await create(false);
    for (let r = 0; r < 3; r++) {
      const t0 = performance.now();
      await rawWrite(id);
      raw.push(performance.now() - t0);
    }
    calls.reset();
    const t = performance.now();
    const res = await api('POST', `/agents/${id}/stop`, {});
    idle.push(performance.now() - t);
    const c = calls.counts();
    stopCalls = { reads: stopCalls.reads + c.reads, writes: stopCalls.writes + c.writes, transactions: stopCalls.transactions + c.transactions };
    if (res.status !== 200) throw new Error(`idle stop answered ${res.status}`);
  }
  lines.push(summary('idle stop: POST /stop -> 200', idle));
  lines.push(summary('raw conditional write (same run, interleaved)', raw));
  lines.push(goal('idle stop p50 / raw conditional write p50', percentile(idle, 50) / percentile(raw, 50), 3, 'x', 2));
  lines.push(
    `${'idle stop: DynamoDB calls per stop'.padEnd(52)} ${((stopCalls.reads + stopCalls.writes) / 50).toFixed(1)} ` +
      `(${(stopCalls.reads / 50).toFixed(1)} reads, ${(stopCalls.writes / 50).toFixed(1)} writes of which ${(stopCalls.transactions / 50).toFixed(1)} transactions)`,
  );
  lines.push(`${'idle stop: state transitions'.padEnd(48)} 0 (finalized in the request, no workflow)`);

  for (const n of [1, 10, 50]) {
    const toInactive: number[] = [];
    const stopLatency: number[] = [];
    const perStop: number[] = [];
    for (let round = 0; round < 10; round++) {
      const id = await create(true);
      const sends = Array.from({ length: n }, (_, i) => api('POST', `/agents/${id}/messages`, { text: `m${i}` }));
      const held = await gated.waitForHeld(n, id);
      const t = performance.now();
      const stopping = api('POST', `/agents/${id}/stop`, { timeout: 60_000 });
      // Let the workflow start and poll once, as a real drain would.
      await new Promise((r) => setTimeout(r, 1200));
      held.forEach((m) => gated.release(m));
      const res = await stopping;
      stopLatency.push(performance.now() - t - 1200);
      await Promise.all(sends);
      if (res.status !== 200) throw new Error(`drain stop answered ${res.status}: ${res.text}`);
      const history = (await api('GET', `/agents/${id}/messages?limit=100`)).body.data as { completedAt: number }[];
      const lastCompletion = Math.max(...history.map((m) => m.completedAt));
      toInactive.push(res.body.data.stoppedAt - lastCompletion);
      const [record] = (await api('GET', `/agents/${id}/stops`)).body.data;
      await stack.app.workflow.settled(record.stopId);
      perStop.push(transitions.get(record.stopId) ?? 0);
    }
    lines.push(summary(`drain of ${n}: last completion -> inactive`, toInactive));
    lines.push(summary(`drain of ${n}: POST /stop answered after release`, stopLatency));
    lines.push(goal(`drain of ${n}: release -> answered, p50`, percentile(stopLatency, 50), n === 50 ? 300 : 100, 'ms'));
    lines.push(`${`drain of ${n}: state transitions per stop`.padEnd(48)} ${[...new Set(perStop)].join(', ')}`);
  }

  // A worker that never completes: the stop ends at its timeout, through the Wait loop.
  const id = await create(true);
  void api('POST', `/agents/${id}/messages`, { text: 'hangs' }).catch(() => undefined); // cut when the stack closes
  await gated.waitForHeld(1, id);
  const res = await api('POST', `/agents/${id}/stop`, { timeout: 5000 });
  const [record] = (await api('GET', `/agents/${id}/stops`)).body.data;
  await stack.app.workflow.settled(record.stopId);
  lines.push(`${'timeout of 5 s (hung worker): answer'.padEnd(48)} ${res.status} after ${record.durationMs} ms, ${transitions.get(record.stopId)} state transitions`);

  console.log('\nStop benchmark (local stack: DynamoDB Local, aws-local-stepfunctions)\n');
  for (const line of lines) console.log(line);
} finally {
  gated.releaseAll();
  await stack.close();
}
