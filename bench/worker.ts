/**
 * `npm run bench` (second part): long-running work on the worker, on the local stack with the
 * product's default heartbeat (HEARTBEAT_MS 5000, lease TTL 20000).
 *   - cancellation latency: from a force stop's commit (the lease cleared) to the runtime's
 *     signal firing, for asynchronous messages running on the worker; the goal is p95 <= one
 *     heartbeat interval
 *   - heartbeat writes per message-minute, counted at the store
 *   - drain end -> stop answered, for messages that ran longer than the lease TTL (kept in flight
 *     by heartbeats alone); the goal is p50 <= 100 ms, as for short work
 */
import { configFromEnv } from '../functions/agents/config.js';
import { patchAgentsStore } from '../test/support/patch.js';
import { GatedRuntime } from '../test/support/runtimes.js';
import { benchStack, percentile, summary } from './support.js';

const { heartbeatMs, leaseTtlMs } = configFromEnv({});
const gated = new GatedRuntime();
const stack = await benchStack({ runtimes: gated.registry, config: { heartbeatMs, leaseTtlMs } });
const { api, app } = stack;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
let renewals = 0;
patchAgentsStore(app, 'renewLease', (renew) => (a) => {
  renewals++;
  return renew(a);
});

async function startedAgent(body: Record<string, unknown>): Promise<string> {
  const id = (await api('POST', '/agents', { name: 'bench', idleTimeoutMs: null, ...body })).body.data.agentId as string;
  await api('POST', `/agents/${id}/start`);
  return id;
}
async function sendAsync(agentId: string): Promise<string> {
  const res = await api('POST', `/agents/${agentId}/messages`, { text: 'long work' }, { prefer: 'respond-async' });
  if (res.status !== 202) throw new Error(`async message answered ${res.status}: ${res.text}`);
  return res.body.data.messageId as string;
}

try {
  const lines: string[] = [];

  // Cancellation: 40 running messages, force-stopped at moments spread over two heartbeats.
  const running = await Promise.all(
    Array.from({ length: 40 }, async () => {
      const agentId = await startedAgent({ settings: { gated: true } });
      return { agentId, messageId: await sendAsync(agentId) };
    }),
  );
  await Promise.all(running.map(({ agentId }) => gated.waitForHeld(1, agentId)));
  const cancellation = await Promise.all(
    running.map(async ({ agentId, messageId }, i) => {
      await sleep((i / running.length) * 2 * heartbeatMs);
      const stop = await api('POST', `/agents/${agentId}/stop`, { graceful: false });
      if (stop.status !== 200) throw new Error(`force stop answered ${stop.status}`);
      for (;;) {
        const abortedAt = gated.aborted.get(messageId);
        if (abortedAt) return abortedAt - stop.body.data.stoppedAt;
        await sleep(5);
      }
    }),
  );
  lines.push(summary('cancellation: lease cleared -> runtime aborted', cancellation));
  lines.push(`${'  goal: p95 <= one heartbeat'.padEnd(48)} ${percentile(cancellation, 95) <= heartbeatMs ? 'met' : 'NOT met'} (heartbeat ${heartbeatMs} ms)`);

  // Heartbeat writes: 20 messages of 30 s of work each.
  const workMs = 30_000;
  const before = renewals;
  const echoing = await Promise.all(Array.from({ length: 20 }, () => startedAgent({ runtime: { type: 'echo', delayMs: workMs } })));
  const sent = await Promise.all(echoing.map(async (agentId) => ({ agentId, messageId: await sendAsync(agentId) })));
  for (const { agentId, messageId } of sent) {
    for (;;) {
      const m = (await api('GET', `/agents/${agentId}/messages/${messageId}`)).body.data;
      if (m.status !== 'processing') break;
      await sleep(500);
    }
  }
  const perMinute = (renewals - before) / sent.length / (workMs / 60_000);
  lines.push(`${'heartbeat writes per message-minute'.padEnd(48)} ${perMinute.toFixed(1)} (one claim per message included; ${60_000 / heartbeatMs} beats/min)`);

  // Drain end -> answered, for work held past the lease TTL.
  for (const n of [1, 10]) {
    const agents = await Promise.all(
      Array.from({ length: 4 }, async () => {
        const agentId = await startedAgent({ settings: { gated: true } });
        const messages = await Promise.all(Array.from({ length: n }, () => sendAsync(agentId)));
        await gated.waitForHeld(n, agentId);
        return { agentId, messages };
      }),
    );
    const stops = agents.map(({ agentId }) => api('POST', `/agents/${agentId}/stop`, { timeout: 120_000 }));
    const holdMs = leaseTtlMs + 1000;
    await sleep(holdMs);
    // One drain at a time (inside the stops' 25 s window), as bench:stop measures short ones.
    const answered: number[] = [];
    for (const [i, { messages }] of agents.entries()) {
      const released = performance.now();
      messages.forEach((m) => gated.release(m));
      const res = await stops[i]!;
      if (res.status !== 200) throw new Error(`long drain answered ${res.status}: ${res.text}`);
      answered.push(performance.now() - released);
    }
    lines.push(summary(`drain of ${n} held ${holdMs / 1000} s: release -> stop answered`, answered));
  }

  console.log(`\nWorker benchmark (local stack; heartbeat ${heartbeatMs} ms, lease TTL ${leaseTtlMs} ms)\n`);
  for (const line of lines) console.log(line);
} finally {
  gated.releaseAll();
  await stack.close();
}
