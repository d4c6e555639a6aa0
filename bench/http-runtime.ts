/**
 * `npm run bench:http`: what the `http` runtime adds over calling the agent's worker directly.
 * The reference worker (examples/http-worker) runs as its own process; in one run, N signed
 * message calls straight to it, then N synchronous messages through the API to an agent on it
 * (admission, the signed call, completion), interleaved in rounds so both see the same machine.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { signRequest } from '../functions/adapters/runtimes/http.js';
import { freePort } from '../local/dynamodb.js';
import { startNode } from '../test/support/processes.js';
import { benchStack, percentile, summary } from './support.js';

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
} finally {
  worker.kill();
  await stack.close();
  rmSync(dir, { recursive: true, force: true });
}
