import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { OpenAiStandIn } from '../../local/openai-standin.js';
import type { RecordsStore } from '../../functions/adapters/dynamodb/records-store.js';
import { logger } from '../../functions/adapters/logger.js';
import { captureOutput } from '../support/output.js';
import { eventually, startTestApp, type TestApp } from '../support/stack.js';

// Set before the logger is built: each invocation starts at the level the environment gives.
vi.hoisted(() => {
  process.env.POWERTOOLS_LOG_LEVEL = 'INFO';
});

/**
 * The `llm` runtime, through the `openai` package, against a local OpenAI-compatible stand-in
 * (the real services cannot be reached here): the requests it receives (model, system prompt,
 * history in order, the key), the conversation kept across messages and across a stop/start,
 * saved at stop, and a force stop aborting the model call.
 */
const KEY = 'sk-test-0123456789abcdef';
const standIn = new OpenAiStandIn();
const logLines: string[] = [];
/** The handlers' own JSON log lines (Powertools writes them to stdout; on at INFO for this file). */
const output = captureOutput();
const responses: string[] = [];
let app: TestApp;
beforeAll(async () => {
  process.env.LLM_API_KEY_TEST = KEY;
  await standIn.start();
  process.env.LLM_BASE_URL_TEST = standIn.url;
  app = await startTestApp({ log: (line) => logLines.push(line), config: { heartbeatMs: 200, leaseTtlMs: 1000 } });
});
afterAll(async () => {
  output.restore();
  logger.setLogLevel('SILENT');
  await app.close();
  await standIn.stop();
  delete process.env.LLM_API_KEY_TEST;
  delete process.env.LLM_BASE_URL_TEST;
});

async function api(method: string, path: string, body?: unknown, headers?: Record<string, string>) {
  const res = await app.api(method, path, body, headers);
  responses.push(res.text);
  return res;
}
const runtime = (extra: Record<string, unknown> = {}) => ({
  type: 'llm', baseUrl: standIn.url, model: 'test-model-1', system: 'You are terse.', apiKey: { env: 'LLM_API_KEY_TEST' }, ...extra,
});
async function llmAgent(extra: Record<string, unknown> = {}): Promise<string> {
  const created = await api('POST', '/agents', { name: 'thinker', runtime: runtime(extra), idleTimeoutMs: null });
  expect(created.status).toBe(201);
  const agentId = created.body.data.agentId as string;
  expect((await api('POST', `/agents/${agentId}/start`)).status).toBe(200);
  return agentId;
}
const say = async (agentId: string, text: string) => {
  const res = await api('POST', `/agents/${agentId}/messages`, { text });
  expect(res.status, res.text).toBe(200);
  return res.body.data.reply as string;
};

describe('an agent that thinks and remembers', () => {
  it('sends the model, the system prompt, the history in order and the key; remembers across a stop and start', async () => {
    const agentId = await llmAgent();
    const first = standIn.received.length;
    expect(await say(agentId, 'my name is Ada')).toBe(`reply ${first + 1} to: my name is Ada`);
    await say(agentId, 'what is my name?');
    const [r1, r2] = standIn.received.slice(first);
    expect(r1).toMatchObject({ model: 'test-model-1', authorization: `Bearer ${KEY}` });
    expect(r1!.messages).toEqual([
      { role: 'system', content: 'You are terse.' },
      { role: 'user', content: 'my name is Ada' },
    ]);
    expect(r2!.messages).toEqual([
      { role: 'system', content: 'You are terse.' },
      { role: 'user', content: 'my name is Ada' },
      { role: 'assistant', content: `reply ${first + 1} to: my name is Ada` },
      { role: 'user', content: 'what is my name?' },
    ]);

    const stop = await api('POST', `/agents/${agentId}/stop`, {});
    expect(stop.status).toBe(200);
    const [record] = (await api('GET', `/agents/${agentId}/stops`)).body.data;
    expect(record).toMatchObject({ outcome: 'drained', stateSaved: true });

    // A restarted agent continues the conversation.
    await api('POST', `/agents/${agentId}/start`);
    await say(agentId, 'and again?');
    const r3 = standIn.received.at(-1)!;
    expect(r3.messages.map((m) => m.content)).toEqual([
      'You are terse.',
      'my name is Ada',
      `reply ${first + 1} to: my name is Ada`,
      'what is my name?',
      `reply ${first + 2} to: what is my name?`,
      'and again?',
    ]);
  });

  it('keeps only the last memoryTurns turns', async () => {
    const agentId = await llmAgent({ memoryTurns: 2, system: undefined });
    for (const text of ['one', 'two', 'three']) await say(agentId, text);
    expect(standIn.received.at(-1)!.messages.map((m) => m.content)).toEqual(['two', expect.stringContaining('to: two'), 'three']);
  });

  it('with memoryTurns 0 remembers nothing: each message goes alone, no conversation is kept, and a stop saves nothing', async () => {
    const agentId = await llmAgent({ memoryTurns: 0 });
    for (const text of ['one', 'two']) await say(agentId, text);
    expect(standIn.received.at(-1)!.messages.map((m) => m.content)).toEqual(['You are terse.', 'two']);
    expect(await (app.deps.records as RecordsStore).getConversation(agentId)).toEqual({ turns: [], version: 0 });
    expect((await api('POST', `/agents/${agentId}/stop`, {})).status).toBe(200);
    expect(await (app.deps.records as RecordsStore).getConversation(agentId)).toEqual({ turns: [], version: 0 });
    expect((await api('GET', `/agents/${agentId}/stops`)).body.data).toMatchObject([{ outcome: 'drained', stateSaved: true }]);
  });

  it('a force stop aborts the model call in flight; the message ends interrupted', async () => {
    const agentId = await llmAgent();
    standIn.delayMs = 30_000;
    try {
      const sent = await api('POST', `/agents/${agentId}/messages`, { text: 'think long' }, { prefer: 'respond-async' });
      const before = standIn.received.length;
      await eventually(async () => standIn.received.length > before || standIn.received.some((r) => r.messages.at(-1)?.content === 'think long'));
      const request = standIn.received.find((r) => r.messages.at(-1)?.content === 'think long')!;
      expect((await api('POST', `/agents/${agentId}/stop`, { graceful: false })).status).toBe(200);
      await eventually(async () => request.aborted, 3000);
      expect((await api('GET', `/agents/${agentId}/messages/${sent.body.data.messageId}`)).body.data.status).toBe('interrupted');
    } finally {
      standIn.delayMs = 0;
    }
  });
});

describe('failures and secrets', () => {
  it('a model endpoint that cannot be reached fails the message with the reason (502)', async () => {
    const agentId = await llmAgent({ baseUrl: 'http://127.0.0.1:9/v1', apiKey: undefined });
    const res = await api('POST', `/agents/${agentId}/messages`, { text: 'hi', messageId: 'm-down' });
    expect(res.status).toBe(502);
    expect((await api('GET', `/agents/${agentId}/messages/m-down`)).body.data).toMatchObject({ status: 'failed', error: expect.stringMatching(/^the model endpoint cannot be reached/) });
  });

  it('a reply larger than a message keeps fails the message with that reason (502), its lease released at once, never run twice', async () => {
    const agentId = await llmAgent();
    const before = standIn.received.length;
    const res = await api('POST', `/agents/${agentId}/messages`, { text: 'pad:600000', messageId: 'm-huge' });
    expect(res).toMatchObject({ status: 502, body: { success: false, error: expect.stringContaining('600000 bytes, more than a message keeps') } });
    expect((await api('GET', `/agents/${agentId}`)).body.data.inFlight).toBe(0);
    expect((await api('GET', `/agents/${agentId}/messages/m-huge`)).body.data).toMatchObject({ status: 'failed', error: expect.stringContaining('more than a message keeps') });
    // Asynchronously too: failed once, not redelivered for a second model call.
    const queued = await api('POST', `/agents/${agentId}/messages`, { text: 'pad:300000', messageId: 'm-huge-async' }, { prefer: 'respond-async' });
    expect(queued.status).toBe(202);
    await eventually(async () => (await api('GET', `/agents/${agentId}/messages/m-huge-async`)).body.data.status === 'failed');
    expect(standIn.received.length - before).toBe(2);
  });

  it('refuses an API key variable outside LLM_API_KEY*: the service\'s own credentials cannot be named', async () => {
    const res = await api('POST', '/agents', { name: 'thief', runtime: runtime({ apiKey: { env: 'AWS_SECRET_ACCESS_KEY' } }) });
    expect(res.status).toBe(400);
    expect(res.body.error).toContain('LLM_API_KEY');
  });

  it('never shows the API key in a response, a log line or an event', async () => {
    const everything = [...responses, ...logLines, output.text(), JSON.stringify(app.bus.published)].join('\n');
    expect(output.text()).toContain('runtime failed to process a message'); // the handlers' logs are in it
    expect(everything).not.toContain(KEY);
  });
});
