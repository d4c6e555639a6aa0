/**
 * `npm run demo`: the service's stops, shown against a running server (AGENTS_API_URL, default
 * http://localhost:3000; AGENTS_API_KEY when auth is on, as the client and agentctl read them), or against one it starts itself over an
 * in-memory DynamoDB Local when none answers. Each state change is printed as it happens:
 *   1. a message in flight, and a graceful stop that drains it (200, drained)
 *   2. a graceful stop whose timeout cuts the message (408, interrupted)
 *   3. a force stop (200 at once, interrupted)
 *   4. a fleet stop of three agents, followed to the end
 * Every agent it made is deleted at the end; it exits 0 when each step ended as shown.
 */
import { ensureTables, startDynamoDbLocal, type LocalDynamo } from './dynamodb.js';

let base = process.env.AGENTS_API_URL ?? 'http://localhost:3000';
const key = process.env.AGENTS_API_KEY;
const created: string[] = [];
const t0 = Date.now();

const say = (line: string) => process.stdout.write(`${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s  ${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Answer {
  status: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the demo reads the answers as the API documents them
  body: { success: boolean; error?: string; message?: string; data?: any };
}

async function api(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { ...(body !== undefined && { 'content-type': 'application/json' }), ...(key && { authorization: `Bearer ${key}` }), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Answer['body'] };
}

function expectStatus(answer: Answer, status: number, what: string): Answer {
  if (answer.status !== status) throw new Error(`${what}: expected ${status}, got ${answer.status} ${answer.body.error ?? ''}`);
  return answer;
}

/** A started echo agent whose every message takes `workMs`. */
async function agent(name: string, workMs: number): Promise<string> {
  const res = expectStatus(await api('POST', '/agents', { name, runtime: { type: 'echo', delayMs: workMs }, idleTimeoutMs: null }), 201, `create ${name}`);
  const agentId = res.body.data.agentId as string;
  created.push(agentId);
  expectStatus(await api('POST', `/agents/${agentId}/start`), 200, `start ${name}`);
  say(`${name}: created and started (each message takes ${workMs / 1000} s)`);
  return agentId;
}

/** An asynchronous message, printed once the agent holds it in flight. */
async function sendAsync(agentId: string, name: string, text: string): Promise<string> {
  const sent = expectStatus(await api('POST', `/agents/${agentId}/messages`, { text }, { prefer: 'respond-async' }), 202, `message to ${name}`);
  const messageId = sent.body.data.messageId as string;
  for (;;) {
    const a = (await api('GET', `/agents/${agentId}`)).body.data;
    if (a.inFlight > 0) break;
    await sleep(50);
  }
  say(`${name}: message ${messageId} "${text}" is in flight`);
  return messageId;
}

/** Follow the agent while it stops, printing it each time its status or in-flight count changes. */
async function watch(agentId: string, name: string): Promise<void> {
  let last = '';
  for (;;) {
    const a = (await api('GET', `/agents/${agentId}`)).body.data;
    const state = `${a.status}/${a.inFlight}`;
    if (state !== last) {
      const deadlineIn = a.status === 'stopping' ? Math.max(0, (a.stop.deadline - Date.now()) / 1000).toFixed(1) : '';
      say(`${name}: ${a.status === 'stopping' ? `stopping, ${a.inFlight} in flight, deadline in ${deadlineIn} s` : a.status}`);
    }
    last = state;
    if (a.status === 'inactive') return;
    await sleep(100);
  }
}

async function messageStatus(agentId: string, messageId: string): Promise<string> {
  const m = (await api('GET', `/agents/${agentId}/messages/${messageId}`)).body.data;
  return m.status === 'completed' ? `completed, reply "${m.reply}"` : m.status;
}

async function gracefulDrain(): Promise<void> {
  const name = 'drains';
  const id = await agent(name, 3000);
  const messageId = await sendAsync(id, name, 'finish me');
  say(`${name}: POST /stop {"graceful":true,"timeout":10000}: refuses new messages, waits for the one in flight`);
  const [stop] = await Promise.all([api('POST', `/agents/${id}/stop`, { graceful: true, timeout: 10_000 }), watch(id, name)]);
  expectStatus(stop, 200, 'graceful stop');
  const refused = await api('POST', `/agents/${id}/messages`, { text: 'too late' });
  say(`${name}: answered ${stop.status} "${stop.body.message}"; the message: ${await messageStatus(id, messageId)}; a new message now: ${refused.status} "${refused.body.error}"`);
}

async function timedOut(): Promise<void> {
  const name = 'times-out';
  const id = await agent(name, 20_000);
  const messageId = await sendAsync(id, name, 'too long');
  say(`${name}: POST /stop {"graceful":true,"timeout":1500}: the work takes longer than the timeout`);
  const [stop] = await Promise.all([api('POST', `/agents/${id}/stop`, { graceful: true, timeout: 1500 }), watch(id, name)]);
  expectStatus(stop, 408, 'timed-out stop');
  const [record] = (await api('GET', `/agents/${id}/stops`)).body.data;
  say(`${name}: answered ${stop.status} "${stop.body.error}" (the agent is ${stop.body.data.status}); the message: ${await messageStatus(id, messageId)}; stop record: ${record.outcome}, interrupted ${JSON.stringify(record.interruptedMessageIds)}`);
}

async function forced(): Promise<void> {
  const name = 'forced';
  const id = await agent(name, 20_000);
  const messageId = await sendAsync(id, name, 'cut me off');
  const asked = Date.now();
  const stop = expectStatus(await api('POST', `/agents/${id}/stop`, { graceful: false }), 200, 'force stop');
  say(`${name}: POST /stop {"graceful":false}: ${stop.status} in ${Date.now() - asked} ms, ${stop.body.data.status}; the message: ${await messageStatus(id, messageId)}`);
}

async function fleet(): Promise<void> {
  const ids = [await agent('fleet-1', 1000), await agent('fleet-2', 1000), await agent('fleet-3', 1000)];
  for (const [i, id] of ids.entries()) await sendAsync(id, `fleet-${i + 1}`, 'fleet work');
  const started = expectStatus(await api('POST', '/agents/stop', { agentIds: ids, graceful: true, timeout: 10_000 }), 202, 'fleet stop');
  const { operationId } = started.body.data;
  say(`fleet: POST /agents/stop {"agentIds":[3 agents],"graceful":true}: 202, operation ${operationId}`);
  let last = '';
  for (;;) {
    const op = (await api('GET', `/fleet-stops/${operationId}`)).body.data;
    const line =
      op.counts.selected === 0 && !op.done
        ? `${op.status}: selecting agents`
        : `${op.status}: ${op.counts.stopped} of ${op.counts.selected} stopped (drained ${op.counts.drained}), ${op.counts.inProgress} in progress, ${op.counts.failed} failed`;
    if (line !== last) say(`fleet: ${line}`);
    last = line;
    if (op.done) {
      if (op.status !== 'completed' || op.counts.stopped !== ids.length) throw new Error(`fleet stop ended ${line}`);
      return;
    }
    await sleep(200);
  }
}

async function cleanUp(): Promise<void> {
  for (const id of created) {
    const a = await api('GET', `/agents/${id}`);
    if (a.status === 200 && a.body.data.status !== 'inactive') await api('POST', `/agents/${id}/stop`, { graceful: false });
    await api('DELETE', `/agents/${id}`);
  }
  if (created.length) say(`deleted the ${created.length} agents this demo made`);
}

/** The server to show: the one at AGENTS_API_URL, or one started here over an in-memory DynamoDB Local. */
async function server(): Promise<{ close(): Promise<void> } | undefined> {
  const up = await fetch(`${base}/health`).then((r) => r.ok, () => false);
  if (up) {
    say(`using the server at ${base}`);
    const probe = await api('GET', '/agents?limit=1');
    if (probe.status === 401) {
      throw new Error(
        `the server at ${base} needs an API key: ${key ? 'AGENTS_API_KEY is not a valid key there' : 'set AGENTS_API_KEY'} (create one with \`npm run keys -- create --name demo\`)`,
      );
    }
    return undefined;
  }
  say(`no server answers at ${base}: starting one for the demo (in memory, gone when it ends)`);
  const { configFromEnv } = await import('../functions/agents/config.js');
  const { startLocalApp } = await import('./app.js');
  const dynamo: LocalDynamo = await startDynamoDbLocal();
  await ensureTables(dynamo.endpoint, { agents: 'agents', records: 'agent-records', apiKeys: 'api-keys' });
  const config = configFromEnv({ ...process.env, AGENTS_TABLE: 'agents', RECORDS_TABLE: 'agent-records', RUNTIME_URLS: 'any', RUNTIME_ALLOW_HTTP: '1' });
  const app = await startLocalApp({ endpoint: dynamo.endpoint, config, auth: { keysTable: 'api-keys', require: 'auto' } });
  base = app.url;
  return {
    close: async () => {
      await app.close();
      await dynamo.stop();
    },
  };
}

const own = await server().catch((err: unknown) => {
  process.stderr.write(`demo failed: ${(err as Error).message}\n`);
  process.exit(1);
});
let failed: unknown;
try {
  say('1. a graceful stop drains the message in flight');
  await gracefulDrain();
  say('2. a graceful stop whose timeout cuts the work');
  await timedOut();
  say('3. a force stop');
  await forced();
  say('4. a fleet stop');
  await fleet();
} catch (err) {
  failed = err;
}
await cleanUp().catch((err: unknown) => say(`clean-up failed: ${(err as Error).message}`));
await own?.close();
if (failed) {
  process.stderr.write(`demo failed: ${(failed as Error).message}\n`);
  process.exit(1);
}
say('done: every stop ended as shown');
process.exit(0);
