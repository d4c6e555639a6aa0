/**
 * `npm run bench:http`: what the `http` runtime adds over calling the agent's worker directly.
 * The reference worker (examples/http-worker) runs as its own process; in one run, N signed
 * message calls straight to it, then N synchronous messages through the API to an agent on it
 * (admission, the signed call, completion), interleaved in rounds so both see the same machine.
 * Then a force stop of an agent whose worker holds its `stop` call for 8 s (a proxy in front of
 * the reference worker): how long the force stop takes to answer, and when the worker is told.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { signRequest } from '../functions/adapters/runtimes/http.js';
import { freePort } from '../local/dynamodb.js';
import { startNode } from '../test/support/processes.js';
import { stopHoldingProxy } from '../test/support/holding-proxy.js';
import { benchStack, goal, percentile, summary } from './support.js';

const N = 200;
const dir = mkdtempSync(join(tmpdir(), 'bench-http-'));
const secretsFile = join(dir, 'secrets.json');
writeFileSync(secretsFile, '{}');
const port = await freePort();
const workerUrl = `http://127.0.0.1:${port}`;
const { proc: worker } = startNode(['examples/http-worker/server.mjs'], { PORT: String(port), SIGNING_SECRETS_FILE: secretsFile, STATE_DIR: join(dir, 'state') });
const stack = await benchStack({ config: { runtimeUrls: 'any' } });
try {
  for (let i = 0; i < 100 && !(await fetch(`${workerUrl}/calls`).catch(() => undefined)); i++) await new Promise((r) => setTimeout(r, 50));
  const created = await stack.api('POST', '/agents', { name: 'bench', runtime: { type: 'http', url: workerUrl }, idleTimeoutMs: null });
  const { agentId, signingSecret } = created.body.data as { agentId: string; signingSecret: string };
  writeFileSync(secretsFile, JSON.stringify({ [agentId]: signingSecret }));
  await stack.api('POST', `/agents/${agentId}/start`);

  const direct: number[] = [];
  const viaApi: number[] = [];
  let seq = 0;
  const callDirect = async () => {
    const messageId = `d-${++seq}`;
    const body = JSON.stringify({ type: 'message', agentId, messageId, text: 'hi', metadata: {}, deadline: Date.now() + 30_000 });
    const t = performance.now();
    const signature = signRequest(signingSecret, { method: 'POST', path: '/', idempotencyKey: messageId, body });
    const res = await fetch(workerUrl, { method: 'POST', headers: { 'content-type': 'application/json', 'idempotency-key': messageId, 'agent-signature': signature }, body });
    await res.text();
    if (res.status !== 200) throw new Error(`worker answered ${res.status}`);
    return performance.now() - t;
  };
  const callApi = async () => {
    const t = performance.now();
    const res = await stack.api('POST', `/agents/${agentId}/messages`, { text: 'hi' });
    if (res.status !== 200) throw new Error(`API answered ${res.status}: ${res.text}`);
    return performance.now() - t;
  };
  for (let i = 0; i < 20; i++) await Promise.all([callDirect(), callApi()]); // warm-up
  for (let round = 0; round < N / 10; round++) {
    for (let i = 0; i < 10; i++) direct.push(await callDirect());
    for (let i = 0; i < 10; i++) viaApi.push(await callApi());
  }
  console.log('\nhttp runtime benchmark (reference worker on loopback; local stack over DynamoDB Local)\n');
  console.log(summary('signed call straight to the worker', direct));
  console.log(summary('message through the API to the same worker', viaApi));
  console.log(
    `${'added by the control plane'.padEnd(48)} p50 ${(percentile(viaApi, 50) - percentile(direct, 50)).toFixed(1)} ms, p95 ${(percentile(viaApi, 95) - percentile(direct, 95)).toFixed(1)} ms`,
  );
  await forceStopOfAWorkerThatHoldsStop();
} finally {
  worker.kill();
  await stack.close();
  rmSync(dir, { recursive: true, force: true });
}

/** A proxy that holds every `stop` call for HOLD_MS before passing it on; the force stop must not wait for it. */
async function forceStopOfAWorkerThatHoldsStop(): Promise<void> {
  const HOLD_MS = 8_000;
  let toldAt: number | undefined;
  const proxy = await stopHoldingProxy(workerUrl, () => new Promise((r) => setTimeout(r, HOLD_MS)), () => (toldAt ??= performance.now()));
  try {
    const { url } = proxy;
    const created = await stack.api('POST', '/agents', { name: 'holds stop', runtime: { type: 'http', url }, idleTimeoutMs: null });
    const { agentId, signingSecret } = created.body.data as { agentId: string; signingSecret: string };
    writeFileSync(secretsFile, JSON.stringify({ ...JSON.parse(readFileSync(secretsFile, 'utf8')), [agentId]: signingSecret }));
    await stack.api('POST', `/agents/${agentId}/start`);
    await stack.api('POST', `/agents/${agentId}/messages`, { text: 'long', metadata: { workMs: 60_000 } }, { prefer: 'respond-async' });
    await new Promise((r) => setTimeout(r, 300));
    const t = performance.now();
    const stop = await stack.api('POST', `/agents/${agentId}/stop`, { graceful: false });
    const answeredMs = performance.now() - t;
    const status = (await stack.api('GET', `/agents/${agentId}`)).body.data as { status: string };
    for (let i = 0; i < 300 && toldAt === undefined; i++) await new Promise((r) => setTimeout(r, 50));
    console.log(`\nforce stop of an http agent whose worker holds its stop call ${HOLD_MS} ms (answered ${stop.status}, agent ${status.status} at once)`);
    console.log(goal('force stop answered', answeredMs, 1000, 'ms'));
    console.log(goal('worker told (its stop call arrived) after the answer', toldAt === undefined ? Infinity : toldAt - t, 15_000, 'ms'));
    if (stop.status !== 200 || status.status !== 'inactive') process.exitCode = 1;
  } finally {
    proxy.close();
  }
}
