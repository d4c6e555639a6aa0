import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { UNSIGNED_ANSWER, signRequest } from '../../functions/adapters/runtimes/http.js';
import { freePort } from '../../local/dynamodb.js';
import { startNode } from '../support/processes.js';
import { stopHoldingProxy } from '../support/holding-proxy.js';
import { logger } from '../../functions/adapters/logger.js';
import { captureOutput } from '../support/output.js';
import { eventually, startTestApp, type TestApp } from '../support/stack.js';

// Set before the logger is built: each invocation starts at the level the environment gives.
vi.hoisted(() => {
  process.env.POWERTOOLS_LOG_LEVEL = 'INFO';
});

/**
 * Real agents on the `http` runtime: the reference worker (examples/http-worker) runs as a
 * separate process; the control plane signs every call to it, and the worker verifies them.
 */
const dir = mkdtempSync(join(tmpdir(), 'http-worker-'));
const secretsFile = join(dir, 'secrets.json');
const secrets: Record<string, string> = {};
const logLines: string[] = [];
/** The handlers' own JSON log lines (Powertools writes them to stdout; on at INFO for this file). */
const output = captureOutput();
let worker: ChildProcess;
let workerUrl: string;
let app: TestApp;

let workerPort: number;
/** The reference worker, started (again) on its port and its state folder. */
async function runWorker() {
  ({ proc: worker } = startNode(['examples/http-worker/server.mjs'], { PORT: String(workerPort), SIGNING_SECRETS_FILE: secretsFile, STATE_DIR: join(dir, 'state') }));
  await eventually(async () => (await fetch(`${workerUrl}/calls`).catch(() => undefined))?.ok, 10_000, 50);
}
async function restartWorker() {
  const exited = new Promise((resolve) => worker.once('exit', resolve));
  worker.kill('SIGKILL');
  await exited;
  await runWorker();
}

beforeAll(async () => {
  writeFileSync(secretsFile, '{}');
  workerPort = await freePort();
  workerUrl = `http://127.0.0.1:${workerPort}`;
  await runWorker();
  app = await startTestApp({ log: (line) => logLines.push(line), config: { heartbeatMs: 200, leaseTtlMs: 1000 } });
});
afterAll(async () => {
  output.restore();
  logger.setLogLevel('SILENT');
  await app.close();
  worker.kill();
  rmSync(dir, { recursive: true, force: true });
});

type Call = { type: string; agentId: string; messageId?: string; stopId?: string; outcome?: string; idempotencyKey?: string; verified: boolean; replayed: boolean };
const calls = async (agentId: string): Promise<Call[]> => ((await (await fetch(`${workerUrl}/calls`)).json()) as Call[]).filter((c) => c.agentId === agentId);
const responses: string[] = [];
async function api(method: string, path: string, body?: unknown, headers?: Record<string, string>) {
  const res = await app.api(method, path, body, headers);
  responses.push(res.text);
  return res;
}

/** An agent on the reference worker, started, whose secret the worker knows. */
async function workerAgent(url = workerUrl): Promise<string> {
  const created = await api('POST', '/agents', { name: 'real', runtime: { type: 'http', url, timeoutMs: 60_000 }, idleTimeoutMs: null });
  expect(created.status).toBe(201);
  const { agentId, signingSecret } = created.body.data;
  expect(signingSecret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
  secrets[agentId] = signingSecret;
  writeFileSync(secretsFile, JSON.stringify(secrets));
  expect((await api('POST', `/agents/${agentId}/start`)).status).toBe(200);
  return agentId;
}
const message = async (agentId: string, id: string) => (await api('GET', `/agents/${agentId}/messages/${id}`)).body.data;

describe('the protocol', () => {
  it('sends signed messages the worker verifies, with the messageId as Idempotency-Key, and returns its reply', async () => {
    const agentId = await workerAgent();
    const res = await api('POST', `/agents/${agentId}/messages`, { text: 'hello', messageId: 'm-1' });
    expect(res.status).toBe(200);
    expect(res.body.data).toMatchObject({ status: 'completed', reply: 'echo: hello' });
    expect(await calls(agentId)).toEqual([expect.objectContaining({ type: 'message', messageId: 'm-1', idempotencyKey: 'm-1', verified: true })]);
  });

  it('a tampered body, path or Idempotency-Key, or a signature made with another secret, is refused by the worker', async () => {
    const agentId = await workerAgent();
    const body = JSON.stringify({ type: 'message', agentId, messageId: 'x', text: 'hi', metadata: {}, deadline: Date.now() + 1000 });
    const signed = { method: 'POST', path: '/', idempotencyKey: 'x', body };
    const signature = signRequest(secrets[agentId]!, signed);
    const post = (b: string, s: string, { path = '/', key = 'x' } = {}) =>
      fetch(`${workerUrl}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', 'agent-signature': s, 'idempotency-key': key }, body: b });
    expect((await post(body.replace('"hi"', '"rm -rf"'), signature)).status).toBe(401);
    expect((await post(body, signature, { path: '/?admin=1' })).status).toBe(401);
    expect((await post(body, signature, { key: 'y' })).status).toBe(401);
    expect((await post(body, signRequest('whsec_not-the-secret', signed))).status).toBe(401);
    expect((await post(body, signature)).status).toBe(200);
  });

  it('a captured signed request replayed to the worker runs once', async () => {
    const agentId = await workerAgent();
    const body = JSON.stringify({ type: 'message', agentId, messageId: 'cap-1', text: 'transfer', metadata: {}, deadline: Date.now() + 10_000 });
    const headers = { 'content-type': 'application/json', 'idempotency-key': 'cap-1', 'agent-signature': signRequest(secrets[agentId]!, { method: 'POST', path: '/', idempotencyKey: 'cap-1', body }) };
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await fetch(workerUrl, { method: 'POST', headers, body })).status);
    expect(statuses).toEqual([200, 409, 409]);
    const seen = await calls(agentId);
    expect(seen.filter((c) => c.messageId === 'cap-1').map((c) => c.replayed)).toEqual([false, true, true]);
    // The worker's state counts the message once.
    await api('POST', `/agents/${agentId}/stop`, { graceful: false });
    await eventually(async () => (await calls(agentId)).some((c) => c.type === 'stop'));
    expect(JSON.parse(readFileSync(join(dir, 'state', `${agentId}.json`), 'utf8'))).toMatchObject({ messagesHandled: 1 });
  });

  it('a captured signed request replayed after the worker restarts is still refused', async () => {
    const agentId = await workerAgent();
    const body = JSON.stringify({ type: 'message', agentId, messageId: 'cap-2', text: 'transfer', metadata: {}, deadline: Date.now() + 10_000 });
    const headers = { 'content-type': 'application/json', 'idempotency-key': 'cap-2', 'agent-signature': signRequest(secrets[agentId]!, { method: 'POST', path: '/', idempotencyKey: 'cap-2', body }) };
    expect((await fetch(workerUrl, { method: 'POST', headers, body })).status).toBe(200);
    await restartWorker();
    const replay = await fetch(workerUrl, { method: 'POST', headers, body });
    expect(replay.status).toBe(409);
    expect(await replay.json()).toEqual({ error: 'replayed request: this signature was already used' });
    // The restarted worker still serves the service's own (freshly signed) calls.
    expect((await api('POST', `/agents/${agentId}/messages`, { text: 'after the restart', messageId: 'cap-3' })).status).toBe(200);
  });

  it('a message sent again under the same Idempotency-Key (a fresh signature, the same second) gets the first answer, not a second run', async () => {
    const agentId = await workerAgent();
    const body = JSON.stringify({ type: 'message', agentId, messageId: 'idem-1', text: 'once', metadata: {}, deadline: Date.now() + 10_000 });
    const post = (t: number) =>
      fetch(workerUrl, { method: 'POST', body, headers: { 'content-type': 'application/json', 'idempotency-key': 'idem-1', 'agent-signature': signRequest(secrets[agentId]!, { method: 'POST', path: '/', idempotencyKey: 'idem-1', body }, t) } });
    const now = Math.floor(Date.now() / 1000);
    const [first, second] = [await post(now), await post(now)];
    expect([first.status, second.status]).toEqual([200, 200]);
    expect(await second.json()).toEqual(await first.json());
    await api('POST', `/agents/${agentId}/stop`, { graceful: false });
    await eventually(async () => (await calls(agentId)).some((c) => c.type === 'stop'));
    expect(JSON.parse(readFileSync(join(dir, 'state', `${agentId}.json`), 'utf8'))).toMatchObject({ messagesHandled: 1 });
  });

  it('a graceful stop drains the work, then calls stop once with outcome drained; the worker saves state', async () => {
    const agentId = await workerAgent();
    const sent = await api('POST', `/agents/${agentId}/messages`, { text: 'work', metadata: { workMs: 1500 } }, { prefer: 'respond-async' });
    expect(sent.status).toBe(202);
    await eventually(async () => (await calls(agentId)).some((c) => c.type === 'message'));
    const stop = await api('POST', `/agents/${agentId}/stop`, { timeout: 10_000 });
    expect(stop.status).toBe(200);
    expect(await message(agentId, sent.body.data.messageId)).toMatchObject({ status: 'completed', reply: 'echo: work' });
    const { lastStop } = (await api('GET', `/agents/${agentId}`)).body.data;
    expect((await calls(agentId)).filter((c) => c.type === 'stop')).toEqual([expect.objectContaining({ stopId: lastStop.stopId, outcome: 'drained', verified: true })]);
    const state = JSON.parse(readFileSync(join(dir, 'state', `${agentId}.json`), 'utf8'));
    expect(state).toMatchObject({ stopId: lastStop.stopId, outcome: 'drained', messagesHandled: 1 });
  });

  it('a stop that times out cancels the running work at the worker first, then calls stop with timed_out', async () => {
    const agentId = await workerAgent();
    const sent = await api('POST', `/agents/${agentId}/messages`, { text: 'long', metadata: { workMs: 60_000 } }, { prefer: 'respond-async' });
    await eventually(async () => (await calls(agentId)).some((c) => c.type === 'message'));
    const stop = await api('POST', `/agents/${agentId}/stop`, { timeout: 1000 });
    expect(stop.status).toBe(408);
    const { messageId } = sent.body.data;
    await eventually(async () => (await calls(agentId)).some((c) => c.type === 'cancel'), 5000);
    const seen = await calls(agentId);
    // Cancelled by the stop, and again (idempotently) by the work itself once it finds its lease gone.
    expect(seen.filter((c) => c.type === 'cancel').every((c) => c.messageId === messageId && c.verified)).toBe(true);
    // Told of one stop (each finalizer that reached the deadline may tell it; the worker acts on its stopId once).
    const stops = seen.filter((c) => c.type === 'stop');
    expect(stops.length).toBeGreaterThan(0);
    expect(stops.every((c) => c.stopId === stop.body.data.stopId && c.outcome === 'timed_out' && c.idempotencyKey === stop.body.data.stopId)).toBe(true);
    // The worker saves its state only after the work the stop cut was told to stop.
    expect(seen.findIndex((c) => c.type === 'cancel')).toBeLessThan(seen.findIndex((c) => c.type === 'stop'));
    expect(await message(agentId, messageId)).toMatchObject({ status: 'interrupted' });
  });

  it('a force stop cancels the running work first, then calls stop with forced', async () => {
    const agentId = await workerAgent();
    const sent = await api('POST', `/agents/${agentId}/messages`, { text: 'long', metadata: { workMs: 60_000 } }, { prefer: 'respond-async' });
    await eventually(async () => (await calls(agentId)).some((c) => c.type === 'message'));
    expect((await api('POST', `/agents/${agentId}/stop`, { graceful: false })).status).toBe(200);
    // Told by the message worker from the queue, after the answer: cancels, then stop.
    await eventually(async () => (await calls(agentId)).some((c) => c.type === 'stop'), 15_000);
    const seen = await calls(agentId);
    expect(seen.filter((c) => c.type === 'cancel')[0]).toMatchObject({ messageId: sent.body.data.messageId });
    // Told from the worker queue after the commit: at least once, under one Idempotency-Key.
    const stops = seen.filter((c) => c.type === 'stop');
    expect(stops.length).toBeGreaterThanOrEqual(1);
    expect(stops.every((c) => c.outcome === 'forced' && c.idempotencyKey === stops[0]!.stopId && c.verified)).toBe(true);
    expect(seen.findIndex((c) => c.type === 'cancel')).toBeLessThan(seen.findIndex((c) => c.type === 'stop'));
  });
});

describe('a worker that holds its stop call', () => {
  /** The reference worker behind a proxy that holds every `stop` call until `release` is called. */
  async function holdingStops() {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    return { release, ...(await stopHoldingProxy(workerUrl, () => held)) };
  }

  it('a force stop answers 200 while the stop call is still held; the agent is inactive, and the worker is told after', async () => {
    const worker = await holdingStops();
    try {
      const agentId = await workerAgent(worker.url);
      const sent = await api('POST', `/agents/${agentId}/messages`, { text: 'long', metadata: { workMs: 60_000 } }, { prefer: 'respond-async' });
      await eventually(async () => (await calls(agentId)).some((c) => c.type === 'message'));
      const stop = await api('POST', `/agents/${agentId}/stop`, { graceful: false });
      expect(stop).toMatchObject({ status: 200, body: { data: { status: 'inactive' } } });
      expect((await api('GET', `/agents/${agentId}`)).body.data.status).toBe('inactive');
      expect(await message(agentId, sent.body.data.messageId)).toMatchObject({ status: 'interrupted' });
      // The stop call reaches the worker's door (from the queue) and is held there, its caller still
      // waiting: the answer above did not wait for it.
      await eventually(async () => worker.waiting() === 1, 10_000);
      expect((await calls(agentId)).some((c) => c.type === 'stop')).toBe(false);
      worker.release();
      await eventually(async () => (await calls(agentId)).some((c) => c.type === 'stop'), 15_000);
      const { lastStop } = (await api('GET', `/agents/${agentId}`)).body.data;
      expect(JSON.parse(readFileSync(join(dir, 'state', `${agentId}.json`), 'utf8'))).toMatchObject({ stopId: lastStop.stopId, outcome: 'forced' });
    } finally {
      worker.release();
      worker.close();
    }
  });

  it('a stop told again under its Idempotency-Key is answered as the first time; the state saved is not saved over', async () => {
    const agentId = await workerAgent();
    expect((await api('POST', `/agents/${agentId}/messages`, { text: 'one' })).status).toBe(200);
    expect((await api('POST', `/agents/${agentId}/stop`, {})).status).toBe(200);
    const stateFile = join(dir, 'state', `${agentId}.json`);
    const saved = JSON.parse(readFileSync(stateFile, 'utf8'));
    expect(saved).toMatchObject({ outcome: 'drained', messagesHandled: 1 });
    const body = JSON.stringify({ type: 'stop', agentId, stopId: saved.stopId, outcome: 'drained', interruptedMessageIds: [] });
    const again = await fetch(workerUrl, { method: 'POST', body, headers: { 'content-type': 'application/json', 'idempotency-key': saved.stopId, 'agent-signature': signRequest(secrets[agentId]!, { method: 'POST', path: '/', idempotencyKey: saved.stopId, body }) } });
    expect(again.status).toBe(200);
    expect(JSON.parse(readFileSync(stateFile, 'utf8'))).toEqual(saved);
  });
});

describe('a worker that misbehaves: the message is failed with the reason, 502 to a synchronous caller', () => {
  it.each([
    ['answers 500', { behave: 'fail' }, "the agent's worker answered HTTP 500"],
    ['answers a body that is not JSON', { behave: 'badJson' }, "the agent's worker answered with a body that is not JSON"],
  ])('%s', async (_, metadata, reason) => {
    const agentId = await workerAgent();
    const res = await api('POST', `/agents/${agentId}/messages`, { text: 'hi', messageId: 'bad-1', metadata });
    expect(res.status).toBe(502);
    expect(res.body).toMatchObject({ success: false, code: 'RUNTIME_FAILED', error: expect.stringContaining(reason) });
    expect(await message(agentId, 'bad-1')).toMatchObject({ status: 'failed', error: reason });
  });

  it('answers without its signature: the reply is refused', async () => {
    const agentId = await workerAgent();
    const res = await api('POST', `/agents/${agentId}/messages`, { text: 'hi', messageId: 'unsigned-1', metadata: { behave: 'unsigned' } });
    expect(res.status).toBe(502);
    expect(res.body.error).toContain('without a valid signature');
    expect(await message(agentId, 'unsigned-1')).toMatchObject({ status: 'failed', error: UNSIGNED_ANSWER });
  });

  it('has its answer altered on the way: the reply is refused', async () => {
    // A man in the middle between the service and the worker rewrites the reply, keeping the worker's signature.
    const proxy = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', async () => {
        const headers = Object.fromEntries(Object.entries(req.headers).filter(([name]) => ['content-type', 'agent-signature', 'idempotency-key'].includes(name))) as Record<string, string>;
        const answer = await fetch(`${workerUrl}${req.url}`, { method: 'POST', headers, body: Buffer.concat(chunks) });
        const text = (await answer.text()).replace('echo: ', 'forged: ');
        res.writeHead(answer.status, { 'content-type': 'application/json', 'agent-signature': answer.headers.get('agent-signature') ?? '' }).end(text);
      });
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    try {
      const agentId = await workerAgent(`http://127.0.0.1:${(proxy.address() as AddressInfo).port}`);
      const res = await api('POST', `/agents/${agentId}/messages`, { text: 'hi', messageId: 'mitm-1' });
      expect(res.status).toBe(502);
      expect(await message(agentId, 'mitm-1')).toMatchObject({ status: 'failed', error: UNSIGNED_ANSWER });
      expect(JSON.stringify(await message(agentId, 'mitm-1'))).not.toContain('forged');
    } finally {
      proxy.closeAllConnections();
      proxy.close();
    }
  });

  it('is slow: the call is cut at the agent\'s timeoutMs', async () => {
    const created = await api('POST', '/agents', { name: 'impatient', runtime: { type: 'http', url: workerUrl, timeoutMs: 500 } });
    const { agentId, signingSecret } = created.body.data;
    secrets[agentId] = signingSecret;
    writeFileSync(secretsFile, JSON.stringify(secrets));
    await api('POST', `/agents/${agentId}/start`);
    const res = await api('POST', `/agents/${agentId}/messages`, { text: 'hi', messageId: 'slow-1', metadata: { behave: 'slow' } });
    expect(res.status).toBe(502);
    expect(await message(agentId, 'slow-1')).toMatchObject({ status: 'failed', error: "the agent's worker did not answer within 500 ms" });
  });

  it('is down', async () => {
    const agentId = await workerAgent(`http://127.0.0.1:${await freePort()}`);
    const res = await api('POST', `/agents/${agentId}/messages`, { text: 'hi', messageId: 'down-1' });
    expect(res.status).toBe(502);
    expect(await message(agentId, 'down-1')).toMatchObject({ status: 'failed', error: "the agent's worker cannot be reached (ECONNREFUSED)" });
  });
});

describe('the signing secret', () => {
  it('rotates: the new one is shown once, the worker refuses the old one until it has the new one', async () => {
    const agentId = await workerAgent();
    const rotated = await api('POST', `/agents/${agentId}/signing-secret`);
    expect(rotated.status).toBe(200);
    const fresh = rotated.body.data.signingSecret as string;
    expect(fresh).not.toBe(secrets[agentId]);
    // The worker still holds the old secret: it refuses the new signatures.
    const refused = await api('POST', `/agents/${agentId}/messages`, { text: 'hi', messageId: 'rot-1' });
    expect(refused.status).toBe(502);
    expect(await message(agentId, 'rot-1')).toMatchObject({ status: 'failed', error: "the agent's worker answered HTTP 401" });
    secrets[agentId] = fresh;
    writeFileSync(secretsFile, JSON.stringify(secrets));
    expect((await api('POST', `/agents/${agentId}/messages`, { text: 'hi', messageId: 'rot-2' })).status).toBe(200);
  });

  it('never appears in a response but the two that show it, in a log line or in an event', async () => {
    await api('GET', '/agents?limit=100');
    for (const agentId of Object.keys(secrets)) await api('GET', `/agents/${agentId}`);
    const shown = responses.filter((r) => r.includes('"signingSecret"'));
    // Only create (201) and rotate answers carry it.
    expect(shown.every((r) => JSON.parse(r).message === 'Agent created' || JSON.parse(r).message?.startsWith('Signing secret rotated'))).toBe(true);
    const everything = [...responses.filter((r) => !shown.includes(r)), ...logLines, output.text(), JSON.stringify(app.bus.published)].join('\n');
    expect(output.text()).toContain('runtime failed to process a message'); // the handlers' logs are in it
    for (const secret of Object.values(secrets)) expect(everything).not.toContain(secret);
    expect(everything).not.toContain('whsec_');
  });
});
