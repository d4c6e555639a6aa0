import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { RecordsStore } from '../../functions/adapters/dynamodb/records-store.js';
import { logger } from '../../functions/adapters/logger.js';
import { A2AStandIn } from '../../local/a2a-agent.js';
import { captureOutput } from '../support/output.js';
import { eventually, startTestApp, type TestApp } from '../support/stack.js';

/**
 * The a2a runtime against a real A2A 1.0 server on loopback (the SDK's own server): the card
 * checked at create and start, messages as tasks in one conversation, and stops mapped onto
 * tasks: a graceful stop waits for them, a timeout or a force cancels them and records whether
 * the agent honoured the cancel.
 */
// Set before the logger is built: each invocation starts at the level the environment gives.
vi.hoisted(() => {
  process.env.POWERTOOLS_LOG_LEVEL = 'INFO';
});
/** The handlers' own JSON log lines (kept for the test, not shown). */
const output = captureOutput();
let app: TestApp;
let agent: A2AStandIn;
const TOKEN = 'a2a-token-never-shown';
beforeAll(async () => {
  agent = await new A2AStandIn().start();
  process.env.A2A_TOKEN_TEST = TOKEN;
  process.env.A2A_URL_TEST = agent.url;
  process.env.A2A_TOKEN_ELSEWHERE = 'other-token';
  process.env.A2A_URL_ELSEWHERE = 'https://agents.example.com/';
  app = await startTestApp({ config: { heartbeatMs: 200, leaseTtlMs: 1000 } });
});
afterEach(() => {
  agent.card = undefined;
});
afterAll(async () => {
  output.restore();
  logger.setLogLevel('SILENT');
  await app.close();
  await agent.close();
  for (const name of ['A2A_TOKEN_TEST', 'A2A_URL_TEST', 'A2A_TOKEN_ELSEWHERE', 'A2A_URL_ELSEWHERE']) delete process.env[name];
});

const runtime = (extra: Record<string, unknown> = {}) => ({ type: 'a2a', url: agent.url, ...extra });
async function startedAgent(extra: Record<string, unknown> = {}): Promise<string> {
  const created = await app.api('POST', '/agents', { name: 'a2a', runtime: runtime(extra) });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  const agentId = created.body.data.agentId as string;
  expect((await app.api('POST', `/agents/${agentId}/start`)).status).toBe(200);
  return agentId;
}
const send = (agentId: string, messageId: string, text: string, prefer?: string) =>
  app.api('POST', `/agents/${agentId}/messages`, { messageId, text }, prefer ? { prefer } : undefined);
const message = async (agentId: string, id: string) => (await app.api('GET', `/agents/${agentId}/messages/${id}`)).body.data;

describe('the Agent Card', () => {
  it("is read at create: the agent shows the card's name, version and skills", async () => {
    const res = await app.api('POST', '/agents', { name: 'carded', runtime: runtime() });
    expect(res.status).toBe(201);
    expect(res.body.data.agentCard).toMatchObject({
      name: 'A2A stand-in',
      version: '2.1.0',
      skills: [{ id: 'echo', name: 'Echo', description: 'Says it back' }],
      endpoint: `${agent.url}/`,
      protocolVersion: '1.0',
    });
    expect((await app.api('GET', `/agents/${res.body.data.agentId}`)).body.data.agentCard.name).toBe('A2A stand-in');
  });

  it.each([
    ['missing', { status: 404 }, /has no usable A2A Agent Card at http:\/\/127\.0\.0\.1:\d+\/\.well-known\/agent-card\.json: it answered HTTP 404/],
    ['not JSON', () => 'not a card', /its "\(card\)" invalid input/],
    ['without a name', (card: Record<string, unknown>) => ({ ...card, name: undefined }), /its "name" invalid input/],
    ['serving only A2A 0.3', (card: Record<string, unknown>) => ({ ...card, supportedInterfaces: [{ url: `${agent.url}/`, protocolBinding: 'JSONRPC', protocolVersion: '0.3' }] }), /serves no JSON-RPC interface of A2A 1\.x \(it offers JSONRPC 0\.3\)/],
    ['serving only gRPC', (card: Record<string, unknown>) => ({ ...card, supportedInterfaces: [{ url: 'grpc.example.com:443', protocolBinding: 'GRPC', protocolVersion: '1.0' }] }), /it offers GRPC 1\.0/],
  ])('is refused at create when %s: 400 with a sentence', async (_case, card, sentence) => {
    agent.card = card as A2AStandIn['card'];
    const res = await app.api('POST', '/agents', { name: 'refused', runtime: runtime() });
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ success: false, code: 'VALIDATION_ERROR' });
    expect(res.body.error).toMatch(/^Field "runtime\.url" /);
    expect(res.body.error).toMatch(sentence);
  });

  it('is read again at start: a card gone since is a 409 RUNTIME_NOT_ALLOWED with the reason', async () => {
    const created = await app.api('POST', '/agents', { name: 'later', runtime: runtime() });
    agent.card = { status: 503 };
    const res = await app.api('POST', `/agents/${created.body.data.agentId}/start`);
    expect(res).toMatchObject({ status: 409, body: { code: 'RUNTIME_NOT_ALLOWED' } });
    expect(res.body.error).toMatch(/Agent cannot start: its "runtime\.url" has no usable A2A Agent Card .* it answered HTTP 503/);
  });

  it('is refused where the address policy refuses the URL (a public-only stack, a loopback agent)', async () => {
    const strict = await startTestApp({ config: { runtimeUrls: 'public' } });
    try {
      const res = await strict.api('POST', '/agents', { name: 'inside', runtime: runtime() });
      expect(res.status).toBe(400);
      expect(res.body.error).toMatch(/127\.0\.0\.1 is a loopback address \(RUNTIME_URLS=public\)/);
    } finally {
      await strict.close();
    }
  });
});

describe('messages', () => {
  it('are tasks in one conversation per agent, kept across a stop: the reply is the artifact, the task id on the record', async () => {
    const agentId = await startedAgent();
    const first = await send(agentId, 'm1', 'hello');
    expect(first).toMatchObject({ status: 200, body: { data: { status: 'completed', reply: 'echo: hello' } } });
    expect(await message(agentId, 'm1')).toMatchObject({ task: { id: expect.any(String), state: 'completed' } });
    expect((await app.api('POST', `/agents/${agentId}/stop`, {})).status).toBe(200);
    expect((await app.api('POST', `/agents/${agentId}/start`)).status).toBe(200);
    expect((await send(agentId, 'm2', 'again')).body.data.reply).toBe('echo: again');
    expect(agent.contexts.slice(-2)).toEqual([agentId, agentId]);
  });

  it('waiting on the user: the message completes with the question, and the next message continues that task', async () => {
    const agentId = await startedAgent();
    const asked = await send(agentId, 'q1', 'ask:which city?');
    expect(asked).toMatchObject({ status: 200, body: { data: { status: 'completed', reply: 'which city?' } } });
    const waiting = await message(agentId, 'q1');
    expect(waiting.task).toMatchObject({ state: 'input-required' });
    const answered = await send(agentId, 'q2', 'Lisbon');
    expect(answered.body.data.reply).toBe('thanks for Lisbon');
    expect((await message(agentId, 'q2')).task).toEqual({ id: waiting.task.id, state: 'completed' });
    // That task is over: the next message is a new one.
    expect((await send(agentId, 'q3', 'hi')).body.data.reply).toBe('echo: hi');
    expect(agent.executed.at(-1)).toMatchObject({ text: 'hi', continued: false });
  });

  it('a continuation that ends after another task began waiting leaves that task waiting', async () => {
    const agentId = await startedAgent();
    await send(agentId, 'c1', 'ask:first?');
    const first = (await message(agentId, 'c1')).task.id as string;
    const records = app.deps.records as RecordsStore;
    expect(await records.getA2AState(agentId)).toEqual({ waitingTaskId: first });
    // Meanwhile another message's task came to wait on the user; then the continuation of the first one ends.
    await records.setA2AWaiting(agentId, 'newer-task', Date.now());
    await records.clearA2AWaiting(agentId, first, Date.now());
    expect(await records.getA2AState(agentId)).toEqual({ waitingTaskId: 'newer-task' });
    await records.clearA2AWaiting(agentId, 'newer-task', Date.now());
    expect(await records.getA2AState(agentId)).toEqual({});
  });

  it("a failed task: the message is failed with the agent's reason", async () => {
    const agentId = await startedAgent();
    const res = await send(agentId, 'f1', 'fail:no such tool');
    expect(res.status).toBe(502);
    expect(await message(agentId, 'f1')).toMatchObject({ status: 'failed', error: "the agent's task ended failed: no such tool", task: { state: 'failed' } });
  });

  it('asynchronous: 202, followed on the worker until the task completes', async () => {
    const agentId = await startedAgent();
    expect((await send(agentId, 'a1', 'slow:600', 'respond-async')).status).toBe(202);
    await eventually(async () => (await message(agentId, 'a1')).status === 'completed');
    expect(await message(agentId, 'a1')).toMatchObject({ reply: 'done', task: { state: 'completed' } });
  });
});

describe('stops', () => {
  it('graceful: waits for the running task, which completes; the stop drained it', async () => {
    const agentId = await startedAgent();
    expect((await send(agentId, 'g1', 'slow:700', 'respond-async')).status).toBe(202);
    await eventually(async () => (await message(agentId, 'g1')).task?.id);
    const stop = await app.api('POST', `/agents/${agentId}/stop`, { timeout: 5000 });
    expect(stop).toMatchObject({ status: 200, body: { data: { status: 'inactive' } } });
    expect((await app.api('GET', `/agents/${agentId}/stops`)).body.data[0]).toMatchObject({ outcome: 'drained', drainedMessageIds: ['g1'] });
    expect(await message(agentId, 'g1')).toMatchObject({ status: 'completed', reply: 'done' });
  });

  it('a task waiting on the user does not hold a drain', async () => {
    const agentId = await startedAgent();
    await send(agentId, 'w1', 'ask:are you sure?');
    const stop = await app.api('POST', `/agents/${agentId}/stop`, { timeout: 5000 });
    expect(stop).toMatchObject({ status: 200, body: { data: { status: 'inactive' } } });
  });

  it('timed out: the task is cancelled (CancelTask, confirmed), the message interrupted, the cancel recorded as canceled', async () => {
    const agentId = await startedAgent();
    expect((await send(agentId, 't1', 'slow:20000', 'respond-async')).status).toBe(202);
    await eventually(async () => (await message(agentId, 't1')).task?.id);
    const stop = await app.api('POST', `/agents/${agentId}/stop`, { timeout: 300 });
    expect(stop).toMatchObject({ status: 408, body: { data: { status: 'inactive' } } });
    const record = await message(agentId, 't1');
    expect(record).toMatchObject({ status: 'interrupted', task: { cancel: 'canceled' } });
    expect(agent.cancels).toContain(record.task.id);
  });

  it('forced, on an agent that ignores cancels: interrupted, its cancel recorded as not honoured, its late result discarded', async () => {
    const agentId = await startedAgent();
    expect((await send(agentId, 's1', 'stubborn:4000', 'respond-async')).status).toBe(202);
    await eventually(async () => (await message(agentId, 's1')).task?.id);
    const stop = await app.api('POST', `/agents/${agentId}/stop`, { graceful: false });
    expect(stop).toMatchObject({ status: 200, body: { data: { status: 'inactive' } } });
    await eventually(async () => (await message(agentId, 's1')).task?.cancel, 10_000);
    const record = await message(agentId, 's1');
    expect(record).toMatchObject({ status: 'interrupted', task: { cancel: 'not honoured' } });
    expect(agent.cancels).toContain(record.task.id);
    // The agent finishes its work later: the message stays interrupted, with no reply.
    await new Promise((resolve) => setTimeout(resolve, 4500));
    expect(await message(agentId, 's1')).toMatchObject({ status: 'interrupted' });
    expect((await message(agentId, 's1')).reply).toBeUndefined();
  });
});

describe("a cut task's cancel", () => {
  // What a stop's close records when the agent answers the cancel with an error: the task had
  // already ended (TaskNotCancelable) or the agent no longer knows it (TaskNotFound).
  const closeCutting = async (agentId: string, messageId: string) => {
    const whole = (await app.deps.agents.getWhole(agentId))!;
    await app.deps.runtimes.a2a.close(whole, { stopId: 'cut', outcome: 'timed_out', interrupted: [messageId] });
    return (await message(agentId, messageId)).task;
  };

  it('of a task that had already completed: its final state is recorded', async () => {
    const agentId = await startedAgent();
    await send(agentId, 'done1', 'hello');
    expect(await closeCutting(agentId, 'done1')).toMatchObject({ state: 'completed', cancel: 'completed' });
  });

  it('of a task the agent no longer knows: recorded gone', async () => {
    const agentId = await startedAgent();
    await send(agentId, 'lost1', 'hello');
    await (app.deps.records as RecordsStore).recordTask(agentId, 'lost1', { id: 'no-such-task', state: 'working' });
    expect(await closeCutting(agentId, 'lost1')).toMatchObject({ id: 'no-such-task', cancel: 'gone' });
  });
});

describe('a failure', () => {
  it("keeps 2,000 characters of the agent's reason, however long it is: the message fails (502), not the store", async () => {
    const agentId = await startedAgent();
    const res = await send(agentId, 'long-fail', 'fail-at-length:450000');
    expect(res.status).toBe(502);
    const failed = await message(agentId, 'long-fail');
    expect(failed.status).toBe('failed');
    expect(failed.error.length).toBeLessThan(2_100);
    expect(failed.error).toMatch(/… \(\d+ characters in all\)$/);
    expect((await app.api('GET', `/agents/${agentId}`)).body.data.inFlight).toBe(0);
  });
});

describe('the token', () => {
  it('never comes back from an endpoint that quotes it: not in an answer, a record, an event or a log line', async () => {
    const logLines: string[] = [];
    const seen: string[] = [];
    const unsubscribe = app.bus.subscribe((e) => seen.push(JSON.stringify(e)));
    try {
      for (const header of [undefined, 'X-API-Key']) {
        const agentId = await startedAgent({ auth: { token: { env: 'A2A_TOKEN_TEST' }, ...(header && { header }) } });
        // A failed task whose message quotes the call's headers.
        const failed = await send(agentId, `leak-${header ?? 'bearer'}`, 'leak');
        expect(failed).toMatchObject({ status: 502, body: { error: expect.stringContaining('[redacted]') } });
        // A JSON-RPC error, then an HTTP 401 body, quoting them.
        for (const quoting of ['rpc', 'http'] as const) {
          agent.quoting = quoting;
          const answer = await send(agentId, `${quoting}-${header ?? 'bearer'}`, 'hello');
          agent.quoting = undefined;
          expect(answer.status).toBe(502);
          logLines.push(JSON.stringify(answer.body));
        }
        logLines.push(JSON.stringify(failed.body), JSON.stringify((await app.api('GET', `/agents/${agentId}/messages`)).body));
      }
      expect(agent.headers.some((h) => h.authorization === `Bearer ${TOKEN}`)).toBe(true);
      expect(logLines.join('\n')).toContain('[redacted]');
      expect(output.text()).toContain('runtime failed to process a message');
      expect([...logLines, ...seen, output.text()].join('\n')).not.toContain(TOKEN);
    } finally {
      agent.quoting = undefined;
      unsubscribe();
    }
  });


  it('is sent to the URL it is bound to, as a bearer or in the named header, and never shown', async () => {
    const bearer = await startedAgent({ auth: { token: { env: 'A2A_TOKEN_TEST' } } });
    agent.headers.length = 0;
    expect((await send(bearer, 'b1', 'hi')).status).toBe(200);
    expect(agent.headers.length).toBeGreaterThan(0);
    expect(agent.headers.every((h) => h.authorization === `Bearer ${TOKEN}`)).toBe(true);
    expect(agent.headers[0]!['a2a-version']).toBe('1.0');
    const keyed = await startedAgent({ auth: { token: { env: 'A2A_TOKEN_TEST' }, header: 'X-API-Key' } });
    agent.headers.length = 0;
    expect((await send(keyed, 'k1', 'hi')).status).toBe(200);
    expect(agent.headers.length).toBeGreaterThan(0);
    expect(agent.headers.every((h) => h['x-api-key'] === TOKEN && h.authorization === undefined)).toBe(true);
    expect(JSON.stringify((await app.api('GET', `/agents/${keyed}`)).body)).not.toContain(TOKEN);
  });

  it("is not sent where the card sends the calls when that endpoint is outside its binding: 400 naming the endpoint", async () => {
    const elsewhere = agent.url.replace('127.0.0.1', 'localhost');
    agent.card = (card) => ({ ...card, supportedInterfaces: [{ url: `${elsewhere}/`, protocolBinding: 'JSONRPC', protocolVersion: '1.0' }] });
    agent.headers.length = 0;
    const res = await app.api('POST', '/agents', { name: 'redirected', runtime: runtime({ auth: { token: { env: 'A2A_TOKEN_TEST' } } }) });
    expect(res.status).toBe(400);
    expect(res.body.error).toContain(`the token is not available for this URL and the endpoint its card names (${elsewhere}/)`);
    expect(agent.headers).toEqual([]);
  });

  it('bound elsewhere, or unset: 400 at create, one sentence either way, and nothing sent', async () => {
    agent.headers.length = 0;
    for (const env of ['A2A_TOKEN_ELSEWHERE', 'A2A_TOKEN_UNSET']) {
      const res = await app.api('POST', '/agents', { name: 'x', runtime: runtime({ auth: { token: { env } } }) });
      expect(res.status).toBe(400);
      expect(res.body.error).toMatch(/^Field "runtime\.auth\.token" cannot be used: the token is not available for this URL/);
    }
    expect(agent.headers).toEqual([]);
  });
});
