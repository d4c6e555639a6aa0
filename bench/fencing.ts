/**
 * `npm run bench:fencing`: the stop's promises under message traffic, printed as figures.
 *   - force stops while 8 clients send messages in a loop (echo, 50 ms of work), through
 *     stop/start churn: how many, latency p50/p95, failures (the promise: none)
 *   - graceful stops whose timeout cuts in-flight work short: how long after the deadline the
 *     waiting request is answered (the promise: within one poll, STOP_POLL_MS = 100 here), and
 *     that every one ends timed_out with no completion after its deadline
 */
import { GatedRuntime } from '../test/support/runtimes.js';
import { benchStack, fmt, percentile, summary } from './support.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const gated = new GatedRuntime();
const stack = await benchStack({ runtimes: gated.registry, config: { stopPollMs: 100 } });
const { api } = stack;

try {
  const lines: string[] = [];
  const agentId = (await api('POST', '/agents', { name: 'bench', runtime: { type: 'echo', delayMs: 50 } })).body.data.agentId as string;
  const forced: number[] = [];
  const failures: string[] = [];
  let messages = 0;
  for (let round = 0; round < 40; round++) {
    await api('POST', `/agents/${agentId}/start`);
    let sending = true;
    const clients = Array.from({ length: 8 }, async () => {
      while (sending) {
        const res = await api('POST', `/agents/${agentId}/messages`, { text: 'load' });
        if (res.status === 200) messages++;
        else await sleep(5);
      }
    });
    await sleep(200);
    const t = performance.now();
    const res = await api('POST', `/agents/${agentId}/stop`, { graceful: false });
    forced.push(performance.now() - t);
    if (res.status !== 200) failures.push(`${res.status} ${res.body?.code}`);
    sending = false;
    await Promise.all(clients);
  }
  lines.push(summary('force stop under 8 clients of messages', forced));
  lines.push(`  ${forced.length} force stops, ${failures.length} failures${failures.length ? `: ${failures.join(', ')}` : ''}; ${messages} messages completed meanwhile`);

  const late: number[] = [];
  const outcomes = new Map<string, number>();
  let completedLate = 0;
  for (let i = 0; i < 20; i++) {
    const id = (await api('POST', '/agents', { name: 'bench', settings: { gated: true } })).body.data.agentId as string;
    await api('POST', `/agents/${id}/start`);
    const sent = [0, 1, 2].map((n) => api('POST', `/agents/${id}/messages`, { text: `m${n}` }));
    const held = await gated.waitForHeld(3, id);
    // One reply lands before the deadline, the others just after it.
    let answeredAt = 0;
    const stop = api('POST', `/agents/${id}/stop`, { timeout: 800 }).then((r) => ((answeredAt = Date.now()), r));
    await sleep(400);
    gated.release(held[0]!);
    await sleep(450);
    held.slice(1).forEach((m) => gated.release(m));
    const res = await stop;
    await Promise.all(sent);
    const [record] = (await api('GET', `/agents/${id}/stops`)).body.data;
    outcomes.set(record.outcome, (outcomes.get(record.outcome) ?? 0) + 1);
    late.push(answeredAt - record.deadline);
    const history = (await api('GET', `/agents/${id}/messages`)).body.data as { status: string; completedAt: number }[];
    completedLate += history.filter((m) => m.status === 'completed' && m.completedAt >= record.deadline).length;
    if (res.status !== 408) failures.push(`graceful ${res.status}`);
  }
  lines.push(summary('timed-out stop: answered after its deadline', late));
  lines.push(`  outcomes ${JSON.stringify(Object.fromEntries(outcomes))}, completions after a deadline: ${completedLate}, max ${fmt(percentile(late, 100))}`);
  console.log(lines.join('\n'));
} finally {
  gated.releaseAll();
  await stack.close();
}
