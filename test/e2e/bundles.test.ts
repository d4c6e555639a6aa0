import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { buildDeps } from '../../functions/adapters/deps.js';
import { createDocumentClient } from '../../functions/adapters/dynamodb/client.js';
import { ApiKeysStore } from '../../functions/auth/api-keys.js';
import { sendMessage } from '../../functions/agents/running.js';
import { startFleetStop } from '../../functions/agents/fleet.js';
import { beginGracefulStop } from '../../functions/agents/stop-begin.js';
import { ensureTables } from '../../local/dynamodb.js';
import { sqsEvent } from '../../local/queue.js';
import { BundleProcess, buildBundles, httpEvent, type BundledFunction } from '../support/bundles.js';
import { OpenAiStandIn } from '../../local/openai-standin.js';
import { A2AStandIn } from '../../local/a2a-agent.js';
import { eventually, testConfig } from '../support/stack.js';
import { LocalMetrics } from '../../local/metrics.js';
import { XRayDaemon, newTrace, type TraceDocument } from '../support/xray-daemon.js';

/**
 * The deployed artifacts themselves: every function's bundle, built by `cdk synth`'s own
 * bundling, run alone beside the AWS SDK in a Node 22 process, given the events API Gateway,
 * Step Functions, EventBridge and SQS send, against DynamoDB Local. AWS services other than
 * DynamoDB point at a closed port: what reaches them must fail cleanly, in the envelope.
 */
const endpoint = inject('dynamoEndpoint');
const config = testConfig();
const keysTable = `keys-${config.agentsTable.slice('agents-'.length)}`;
const db = createDocumentClient(endpoint);
const keys = new ApiKeysStore(db, keysTable);
let bundles: ReturnType<typeof buildBundles>;
const running = new Map<string, BundleProcess>();
let key: string;
/** The domain over the same tables, to set up what an event finds (its workflows and events go nowhere). */
const domain = () =>
  buildDeps({ metrics: new LocalMetrics(), config, db, workflow: { start: async () => {} }, fleetWorkflow: { start: async () => {} }, events: { publish: async () => {} }, queue: { send: async () => {} } });

/** The template's environment with its references bound to the local resources. */
function environment(fn: BundledFunction): Record<string, string> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    AWS_REGION: 'eu-west-1',
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
    AWS_LAMBDA_FUNCTION_NAME: fn.name,
    DYNAMODB_ENDPOINT: endpoint,
    AWS_ENDPOINT_URL_SFN: 'http://127.0.0.1:9',
    AWS_ENDPOINT_URL_EVENTBRIDGE: 'http://127.0.0.1:9',
    AWS_ENDPOINT_URL_SQS: 'http://127.0.0.1:9',
    POWERTOOLS_LOG_LEVEL: 'ERROR',
  };
  const bound: Record<string, string> = {
    AGENTS_TABLE: config.agentsTable,
    RECORDS_TABLE: config.recordsTable,
    API_KEYS_TABLE: keysTable,
    EVENT_BUS_NAME: 'agents-lifecycle-test',
    STOP_STATE_MACHINE_ARN: 'arn:aws:states:eu-west-1:123456789012:stateMachine:StopWorkflow',
    FLEET_STOP_STATE_MACHINE_ARN: 'arn:aws:states:eu-west-1:123456789012:stateMachine:FleetStopWorkflow',
    MESSAGE_QUEUE_URL: 'http://127.0.0.1:9/123456789012/agent-messages',
  };
  for (const [name, value] of Object.entries(fn.environment)) {
    env[name] = typeof value === 'string' ? value : (bound[name] ?? (() => { throw new Error(`unbound reference ${name} of ${fn.name}`); })());
  }
  return env;
}

const fn = (name: string): BundleProcess => {
  let p = running.get(name);
  if (!p) {
    const bundled = bundles.functions.get(name);
    if (!bundled) throw new Error(`no function ${name}`);
    p = new BundleProcess(bundled, environment(bundled));
    running.set(name, p);
  }
  return p;
};

type HttpResult = { statusCode: number; headers: Record<string, string>; body: string };
/** `auth`: the key to send (null: no Authorization header). */
async function call(name: string, opts: Parameters<typeof httpEvent>[0], auth: string | null = key) {
  const event = httpEvent({ ...opts, headers: { ...(auth && { authorization: `Bearer ${auth}` }), ...opts.headers } });
  const res = await fn(name).invoke<HttpResult>(event);
  return { status: res.statusCode, headers: res.headers, body: JSON.parse(res.body) };
}

beforeAll(async () => {
  await ensureTables(endpoint, { agents: config.agentsTable, records: config.recordsTable, apiKeys: keysTable });
  ({ key } = await keys.create('bundle-test'));
  bundles = buildBundles();
}, 180_000);
afterAll(() => {
  for (const p of running.values()) p.stop();
  bundles?.cleanup();
  db.destroy();
});

describe('the console function', { timeout: 60_000 }, () => {
  it('serves the page and the script it names from its own bundle, gzipped for API Gateway', async () => {
    const get = (path: string, routeKey: string) =>
      fn('Console').invoke<HttpResult & { isBase64Encoded?: boolean }>(httpEvent({ method: 'GET', path, routeKey, headers: { 'accept-encoding': 'gzip, br' } }));
    const page = await get('/console', 'GET /console');
    expect([page.statusCode, page.isBase64Encoded, page.headers['Content-Encoding']]).toEqual([200, true, 'gzip']);
    const html = gunzipSync(Buffer.from(page.body, 'base64')).toString();
    const script = /src="\/console\/(app-[\w-]+\.js)"/.exec(html)?.[1];
    expect(script).toBeDefined();
    const js = await get(`/console/${script}`, 'GET /console/{file}');
    expect([js.statusCode, js.headers['Content-Type'], js.headers['Cache-Control']]).toEqual([200, 'text/javascript; charset=utf-8', 'public, max-age=31536000, immutable']);
    expect(gunzipSync(Buffer.from(js.body, 'base64')).toString()).toContain('/agents/counts');
  });
});

describe('HTTP functions, given API Gateway v2 events', { timeout: 60_000 }, () => {
  let agentId: string;
  const json = { 'content-type': 'application/json; charset=utf-8' };

  it('checks the API key first: none, bogus or revoked is 401 in the envelope; $default too', async () => {
    const revoked = await keys.create('revoked');
    await keys.revoke(revoked.info.keyId);
    for (const auth of [null, 'agk_0000000000000000_' + 'a'.repeat(43), revoked.key]) {
      const res = await call('ListAgents', { method: 'GET', path: '/agents', routeKey: 'GET /agents' }, auth);
      expect(res.status).toBe(401);
      expect(res.headers['WWW-Authenticate']).toBe('Bearer');
      expect(res.body).toEqual({ success: false, error: expect.stringContaining('Authorization: Bearer <key>'), code: 'UNAUTHORIZED' });
    }
    const unknown = await call('NotFound', { method: 'GET', path: '/nowhere', routeKey: '$default' }, null);
    expect(unknown.status).toBe(401);
  });

  it('fails closed when the key store cannot be reached: 503 in the envelope, never a request let in', async () => {
    const bundled = bundles.functions.get('ListAgents')!;
    const cut = new BundleProcess(bundled, { ...environment(bundled), DYNAMODB_ENDPOINT: 'http://127.0.0.1:9', DYNAMODB_MAX_ATTEMPTS: '1' });
    try {
      const res = await cut.invoke<HttpResult>(httpEvent({ method: 'GET', path: '/agents', routeKey: 'GET /agents', headers: { authorization: `Bearer ${key}` } }));
      expect(res.statusCode).toBe(503);
      expect(res.headers['Retry-After']).toBe('1');
      expect(JSON.parse(res.body)).toMatchObject({ success: false, code: 'UNAVAILABLE' });
    } finally {
      cut.stop();
    }
  });

  it('creates (base64 body, charset content type), starts, messages and stops an agent', async () => {
    const created = await call('CreateAgent', {
      method: 'POST', path: '/agents', routeKey: 'POST /agents', headers: json, base64: true, body: JSON.stringify({ name: 'bundled', idleTimeoutMs: null }),
    });
    expect(created.status).toBe(201);
    agentId = created.body.data.agentId;
    const path = (suffix: string) => ({ path: `/agents/${agentId}${suffix}`, pathParameters: { agentId } });

    expect((await call('StartAgent', { method: 'POST', routeKey: 'POST /agents/{agentId}/start', ...path('/start') })).status).toBe(200);
    const sent = await call('SendMessage', { method: 'POST', routeKey: 'POST /agents/{agentId}/messages', headers: json, body: '{"text":"hello"}', ...path('/messages') });
    expect(sent).toMatchObject({ status: 200, body: { success: true, data: { status: 'completed', reply: 'hello' } } });
    const listed = await call('ListAgents', { method: 'GET', path: '/agents', routeKey: 'GET /agents', query: { status: 'active', limit: '10' } });
    expect(listed.body.data.map((a: { agentId: string }) => a.agentId)).toContain(agentId);

    const stop = await call('StopAgent', { method: 'POST', routeKey: 'POST /agents/{agentId}/stop', headers: json, body: '{"graceful":true,"timeout":5000}', ...path('/stop') });
    expect(stop).toMatchObject({ status: 200, body: { success: true, message: 'Agent stopped successfully', data: { agentId, status: 'inactive' } } });
    const again = await call('StopAgent', { method: 'POST', routeKey: 'POST /agents/{agentId}/stop', ...path('/stop') });
    expect(again).toMatchObject({ status: 409, body: { success: false, error: 'Agent is not running', code: 'AGENT_NOT_RUNNING' } });
    const stops = await call('ListStops', { method: 'GET', routeKey: 'GET /agents/{agentId}/stops', ...path('/stops') });
    expect(stops.body.data[0]).toMatchObject({ outcome: 'drained', reason: 'api' });
  });

  it('stops an llm agent through a bundle without the openai client (closing it saves its memory, no model call)', async () => {
    const runtime = { type: 'llm', baseUrl: 'https://llm.example.com/v1', model: 'm' };
    const created = await call('CreateAgent', { method: 'POST', path: '/agents', routeKey: 'POST /agents', headers: json, body: JSON.stringify({ name: 'thinker', runtime }) });
    const id = created.body.data.agentId as string;
    const path = (suffix: string) => ({ path: `/agents/${id}${suffix}`, pathParameters: { agentId: id } });
    expect((await call('StartAgent', { method: 'POST', routeKey: 'POST /agents/{agentId}/start', ...path('/start') })).status).toBe(200);
    const stop = await call('StopAgent', { method: 'POST', routeKey: 'POST /agents/{agentId}/stop', headers: json, body: '{"graceful":true}', ...path('/stop') });
    expect(stop).toMatchObject({ status: 200, body: { data: { status: 'inactive' } } });
    const stops = await call('ListStops', { method: 'GET', routeKey: 'GET /agents/{agentId}/stops', ...path('/stops') });
    expect(stops.body.data[0]).toMatchObject({ outcome: 'drained', stateSaved: true });
  });

  it("answers an llm agent's message through a bundle whose openai client is installed beside it, not in it", async () => {
    const bundled = bundles.functions.get('SendMessage')!;
    const llm = await new OpenAiStandIn().start();
    // Loopback and plain http are refused by default; the stand-in on loopback is the only endpoint reachable here.
    const operator = { RUNTIME_URLS: 'any', RUNTIME_ALLOW_HTTP: '1', LLM_API_KEY: 'sk-bundle-test', LLM_BASE_URL: llm.url };
    const send = new BundleProcess(bundled, { ...environment(bundled), ...operator });
    const withOperatorEnv = (name: string) => new BundleProcess(bundles.functions.get(name)!, { ...environment(bundles.functions.get(name)!), ...operator });
    const [create, start] = [withOperatorEnv('CreateAgent'), withOperatorEnv('StartAgent')];
    try {
      const runtime = { type: 'llm', baseUrl: llm.url, model: 'tiny', apiKey: { env: 'LLM_API_KEY' } };
      const created = await create.invoke<HttpResult>(
        httpEvent({ method: 'POST', path: '/agents', routeKey: 'POST /agents', headers: { ...json, authorization: `Bearer ${key}` }, body: JSON.stringify({ name: 'thinker', runtime }) }),
      );
      expect(created.statusCode, created.body).toBe(201);
      const id = JSON.parse(created.body).data.agentId as string;
      const started = await start.invoke<HttpResult>(
        httpEvent({ method: 'POST', path: `/agents/${id}/start`, routeKey: 'POST /agents/{agentId}/start', pathParameters: { agentId: id }, headers: { authorization: `Bearer ${key}` } }),
      );
      expect(started.statusCode, started.body).toBe(200);
      const res = await send.invoke<HttpResult>(
        httpEvent({
          method: 'POST', path: `/agents/${id}/messages`, routeKey: 'POST /agents/{agentId}/messages', pathParameters: { agentId: id },
          headers: { ...json, authorization: `Bearer ${key}` }, body: '{"text":"hello"}',
        }),
      );
      expect({ status: res.statusCode, body: JSON.parse(res.body) }).toMatchObject({ status: 200, body: { data: { status: 'completed', reply: 'reply 1 to: hello' } } });
      expect(llm.received).toMatchObject([{ model: 'tiny', authorization: 'Bearer sk-bundle-test' }]);
      for (const name of ['SendMessage', 'MessageWorker']) {
        const dir = bundles.functions.get(name)!.dir;
        expect(readFileSync(join(dir, 'index.mjs'), 'utf8')).not.toMatch(/chat\/completions/);
        expect(statSync(join(dir, 'node_modules', 'openai', 'index.mjs')).size).toBeGreaterThan(100_000);
      }
    } finally {
      send.stop();
      create.stop();
      start.stop();
      await llm.stop();
    }
  });

  it("answers an a2a agent's message through bundles whose A2A client is installed beside them, not in them", async () => {
    const agent = await new A2AStandIn().start();
    const operator = { RUNTIME_URLS: 'any', RUNTIME_ALLOW_HTTP: '1' };
    const processes = ['CreateAgent', 'StartAgent', 'SendMessage'].map((name) => new BundleProcess(bundles.functions.get(name)!, { ...environment(bundles.functions.get(name)!), ...operator }));
    const [create, start, send] = processes as [BundleProcess, BundleProcess, BundleProcess];
    try {
      const auth = { authorization: `Bearer ${key}` };
      const created = await create.invoke<HttpResult>(
        httpEvent({ method: 'POST', path: '/agents', routeKey: 'POST /agents', headers: { ...json, ...auth }, body: JSON.stringify({ name: 'a2a', runtime: { type: 'a2a', url: agent.url } }) }),
      );
      expect(created.statusCode, created.body).toBe(201);
      expect(JSON.parse(created.body).data.agentCard).toMatchObject({ name: 'A2A stand-in' });
      const id = JSON.parse(created.body).data.agentId as string;
      const started = await start.invoke<HttpResult>(httpEvent({ method: 'POST', path: `/agents/${id}/start`, routeKey: 'POST /agents/{agentId}/start', pathParameters: { agentId: id }, headers: auth }));
      expect(started.statusCode, started.body).toBe(200);
      const res = await send.invoke<HttpResult>(
        httpEvent({ method: 'POST', path: `/agents/${id}/messages`, routeKey: 'POST /agents/{agentId}/messages', pathParameters: { agentId: id }, headers: { ...json, ...auth }, body: '{"text":"hello"}' }),
      );
      expect({ status: res.statusCode, body: JSON.parse(res.body) }).toMatchObject({ status: 200, body: { data: { status: 'completed', reply: 'echo: hello' } } });
      for (const name of ['SendMessage', 'FinalizeTask', 'GetAgent']) {
        const dir = bundles.functions.get(name)!.dir;
        // The SDK's header constant: in the client, not in the bundle.
        expect(readFileSync(join(dir, 'index.mjs'), 'utf8').includes('A2A-Version'), name).toBe(false);
        expect(existsSync(join(dir, 'node_modules', '@a2a-js', 'sdk', 'client.mjs')), name).toBe(name !== 'GetAgent');
      }
    } finally {
      processes.forEach((p) => p.stop());
      await agent.close();
    }
  });

  it('answers bad input in the envelope: bad JSON 400, unknown route 404, wrong method 405', async () => {
    const bad = await call('CreateAgent', { method: 'POST', path: '/agents', routeKey: 'POST /agents', headers: json, body: '{"name":' });
    expect(bad).toMatchObject({ status: 400, body: { success: false, code: 'VALIDATION_ERROR', error: 'Request body is not valid JSON' } });
    const missing = await call('NotFound', { method: 'GET', path: '/nowhere', routeKey: '$default' });
    expect(missing).toMatchObject({ status: 404, body: { success: false, code: 'ROUTE_NOT_FOUND' } });
    const wrong = await call('NotFound', { method: 'PUT', path: '/agents', routeKey: '$default' });
    expect(wrong.status).toBe(405);
    expect(wrong.headers.Allow).toBe('POST, GET');
    // API Gateway gives PATCH /agents/stop to the PATCH /agents/{agentId} route: its function answers 405, not a 400 about the id.
    const literal = await call('UpdateAgent', { method: 'PATCH', path: '/agents/stop', routeKey: 'PATCH /agents/{agentId}', pathParameters: { agentId: 'stop' }, headers: json, body: '{"name":"x"}' });
    expect(literal).toMatchObject({ status: 405, body: { success: false, code: 'METHOD_NOT_ALLOWED', error: 'PATCH is not allowed on /agents/stop; use POST' } });
    expect(literal.headers.Allow).toBe('POST');
  });

  it('a message the queue cannot take is a 503 and recorded failed (the SQS client loads and fails cleanly)', async () => {
    const created = await call('CreateAgent', { method: 'POST', path: '/agents', routeKey: 'POST /agents', headers: json, body: '{"name":"async"}' });
    const id = created.body.data.agentId as string;
    await call('StartAgent', { method: 'POST', path: `/agents/${id}/start`, routeKey: 'POST /agents/{agentId}/start', pathParameters: { agentId: id } });
    const res = await call('SendMessage', {
      method: 'POST', path: `/agents/${id}/messages`, routeKey: 'POST /agents/{agentId}/messages', pathParameters: { agentId: id },
      headers: { ...json, prefer: 'respond-async' }, body: '{"text":"later","messageId":"q-1"}',
    });
    expect(res).toMatchObject({ status: 503, body: { success: false, code: 'UNAVAILABLE' } });
    const message = await call('GetMessage', {
      method: 'GET', path: `/agents/${id}/messages/q-1`, routeKey: 'GET /agents/{agentId}/messages/{messageId}', pathParameters: { agentId: id, messageId: 'q-1' },
    });
    expect(message.body.data).toMatchObject({ status: 'failed', error: 'the message could not be handed to a worker' });
  });
});

describe('workflow tasks, the reaper and the worker, given their events', { timeout: 60_000 }, () => {
  it('runs CheckDrain, RecordStopFailure and Finalize on a stop with work in flight', async () => {
    // A stopping agent with a message in flight, set up through the domain on the same tables.
    const d = domain();
    const created = await call('CreateAgent', { method: 'POST', path: '/agents', routeKey: 'POST /agents', headers: { 'content-type': 'application/json' }, body: '{"name":"draining"}' });
    const agentId = created.body.data.agentId as string;
    await call('StartAgent', { method: 'POST', path: `/agents/${agentId}/start`, routeKey: 'POST /agents/{agentId}/start', pathParameters: { agentId } });
    await sendMessage(d, agentId, { text: 'in flight' }, { mode: 'async', waitMs: 0 });
    // Cold starts first (a new process each), so the stop's deadline is not spent on them.
    const unknown = { agentId: '4b9c3c49-4c5a-4e7b-9d2f-2f1b7f0e7c11', stopId: 'none' };
    expect(await fn('CheckDrainTask').invoke(unknown)).toMatchObject({ state: 'gone' });
    expect(await fn('RecordFailureTask').invoke(unknown)).toEqual({ ...unknown, recover: false, ended: true, waitSeconds: 0 });
    expect(await fn('FinalizeTask').invoke(unknown)).toEqual({ ...unknown, outcome: 'superseded' });
    const { stop } = await beginGracefulStop(d, agentId, { timeoutMs: 3000, reason: 'api' });
    const input = { agentId, stopId: stop.stopId };

    expect(await fn('CheckDrainTask').invoke(input)).toMatchObject({ ...input, state: 'draining', inFlight: 1, waitSeconds: expect.any(Number) });
    // Within its deadline plus the recovery window: the workflow is sent back to its drain check.
    expect(await fn('RecordFailureTask').invoke({ ...input, error: 'States.TaskFailed', cause: 'test' })).toEqual({ ...input, recover: true, ended: false, waitSeconds: 5 });
    await new Promise((r) => setTimeout(r, Math.max(0, stop.deadline - Date.now() + 100)));
    expect(await fn('CheckDrainTask').invoke(input)).toMatchObject({ state: 'ready' });
    expect(await fn('FinalizeTask').invoke(input)).toEqual({ ...input, outcome: 'timed_out' });
    expect(await fn('FinalizeTask').invoke(input)).toMatchObject({ outcome: 'superseded' });
  });

  it('runs a fleet stop step by step (advance, fail) and shows it through GET /fleet-stops/{operationId}', async () => {
    const d = domain();
    const created = await call('CreateAgent', { method: 'POST', path: '/agents', routeKey: 'POST /agents', headers: { 'content-type': 'application/json' }, body: '{"name":"fleet"}' });
    const agentId = created.body.data.agentId as string;
    await call('StartAgent', { method: 'POST', path: `/agents/${agentId}/start`, routeKey: 'POST /agents/{agentId}/start', pathParameters: { agentId } });
    const { op } = await startFleetStop(d, { agentIds: [agentId], graceful: true, timeout: 5000, concurrency: 10 });
    const { operationId } = op;

    expect(await fn('FleetStopTask').invoke({ operationId, step: 'advance' }, 60_000)).toEqual({ operationId, state: 'done', waitSeconds: 0 });
    const view = await call('GetFleetStop', { method: 'GET', path: `/fleet-stops/${operationId}`, routeKey: 'GET /fleet-stops/{operationId}', pathParameters: { operationId } });
    expect(view).toMatchObject({ status: 200, body: { data: { operationId, status: 'completed', done: true, counts: { selected: 1, stopped: 1, drained: 1 } } } });
    expect(await fn('FleetStopTask').invoke({ operationId, step: 'fail', error: 'States.TaskFailed', cause: 'late' })).toEqual({ operationId, state: 'failed' });
    const still = await call('GetFleetStop', { method: 'GET', path: `/fleet-stops/${operationId}`, routeKey: 'GET /fleet-stops/{operationId}', pathParameters: { operationId } });
    expect(still.body.data.status).toBe('completed');
  });

  it('answers POST /agents/stop 503 when its workflow cannot start (Step Functions unreachable), leaving no operation', async () => {
    const res = await call('StopFleet', { method: 'POST', path: '/agents/stop', routeKey: 'POST /agents/stop', headers: { 'content-type': 'application/json', 'idempotency-key': 'k-1' }, body: '{"status":"active"}' });
    expect(res).toMatchObject({ status: 503, body: { success: false, code: 'UNAVAILABLE' } });
    const bad = await call('StopFleet', { method: 'POST', path: '/agents/stop', routeKey: 'POST /agents/stop', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(bad).toMatchObject({ status: 400, body: { code: 'VALIDATION_ERROR' } });
    expect(await domain().fleet.listRunning()).toEqual([]);
  });

  it('runs the reaper on a scheduled event, and the worker on SQS events (a job it cannot run, a malformed one)', async () => {
    const summary = await fn('Reaper').invoke(
      { version: '0', id: 'e-1', 'detail-type': 'Scheduled Event', source: 'aws.events', account: '123456789012', time: new Date().toISOString(), region: 'eu-west-1', resources: [], detail: {} },
      60_000,
    );
    expect(summary).toMatchObject({ complete: true, errors: 0 });
    const job = { agentId: '4b9c3c49-4c5a-4e7b-9d2f-2f1b7f0e7c11', messageId: 'm-1', token: '0b3f5a6e-2c1d-4e8f-9a7b-6c5d4e3f2a1b' };
    const records = [...sqsEvent(job, 1, 'sqs-1').Records, ...sqsEvent('not json', 1, 'sqs-2').Records];
    expect(await fn('MessageWorker').invoke({ Records: records }, 900_000)).toEqual({ batchItemFailures: [] });
  });
});

describe('traced, as X-Ray receives it from a function with active tracing', { timeout: 60_000 }, () => {
  let daemon: XRayDaemon;
  beforeAll(async () => {
    daemon = await new XRayDaemon().start();
  });
  afterAll(() => daemon.stop());

  /** The function as Lambda runs it under active tracing: in Lambda's environment, with the daemon's address. */
  const traced = (name: string, env: Record<string, string> = {}) => {
    const bundled = bundles.functions.get(name)!;
    return new BundleProcess(bundled, {
      ...environment(bundled),
      AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs22.x',
      AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
      LAMBDA_TASK_ROOT: bundled.dir,
      _HANDLER: 'index.handler',
      AWS_XRAY_DAEMON_ADDRESS: daemon.address,
      AWS_XRAY_CONTEXT_MISSING: 'LOG_ERROR',
      ...env,
    });
  };
  const named = (docs: TraceDocument[], name: string) => docs.filter((d) => d.name === name);

  it("an llm agent's message: the handler, each store operation with its DynamoDB calls, the runtime call with its HTTP call; no key, no content", async () => {
    const llm = await new OpenAiStandIn().start();
    const operator = { RUNTIME_URLS: 'any', RUNTIME_ALLOW_HTTP: '1', LLM_API_KEY: 'sk-trace-test', LLM_BASE_URL: llm.url };
    const send = traced('SendMessage', operator);
    const withOperatorEnv = (name: string) => new BundleProcess(bundles.functions.get(name)!, { ...environment(bundles.functions.get(name)!), ...operator });
    const [create, start] = [withOperatorEnv('CreateAgent'), withOperatorEnv('StartAgent')];
    try {
      const runtime = { type: 'llm', baseUrl: llm.url, model: 'tiny', apiKey: { env: 'LLM_API_KEY' } };
      const created = await create.invoke<HttpResult>(
        httpEvent({ method: 'POST', path: '/agents', routeKey: 'POST /agents', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` }, body: JSON.stringify({ name: 'traced', runtime }) }),
      );
      const agentId = JSON.parse(created.body).data.agentId as string;
      await start.invoke(httpEvent({ method: 'POST', path: `/agents/${agentId}/start`, routeKey: 'POST /agents/{agentId}/start', pathParameters: { agentId }, headers: { authorization: `Bearer ${key}` } }));

      const { traceId, header } = newTrace();
      const event = httpEvent({
        method: 'POST', path: `/agents/${agentId}/messages`, routeKey: 'POST /agents/{agentId}/messages', pathParameters: { agentId },
        headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, 'x-request-id': 'trace-me-1' }, body: '{"text":"a private question"}',
      });
      const res = await send.invoke<HttpResult>(event, 29_000, header);
      expect(JSON.parse(res.body)).toMatchObject({ data: { status: 'completed', reply: 'reply 1 to: a private question' } });
      await eventually(async () => named(daemon.trace(traceId), '### runtime.process').length === 1 && named(daemon.trace(traceId), '## index.handler').length === 1);
      const docs = daemon.trace(traceId);

      const [handler] = named(docs, '## index.handler');
      expect(handler!.annotations).toMatchObject({ ColdStart: true, Service: 'agents', correlationId: 'trace-me-1' });
      expect(handler!.metadata).toBeUndefined();
      const childrenOf = (parent: TraceDocument) => docs.filter((d) => d.parent_id === parent.id);

      // Admission: its subsegment under the handler, annotated with the agent, its DynamoDB call under it.
      const [admit] = named(docs, '### AgentStore.admitLease');
      expect(admit).toMatchObject({ parent_id: handler!.id, annotations: { agentId } });
      expect(admit!.fault).toBeUndefined();
      expect(childrenOf(admit!).map((d) => [d.name, d.aws?.operation])).toContainEqual(['DynamoDB', expect.stringMatching(/UpdateItem|TransactWriteItems/)]);
      expect(named(docs, '### RecordStore.recordOutcome')).toHaveLength(1);

      // The runtime call: annotated with its type, and the model's HTTP call under it.
      const [process] = named(docs, '### runtime.process');
      expect(process).toMatchObject({ parent_id: handler!.id, annotations: { runtime: 'llm', agentId } });
      expect(childrenOf(process!).map((d) => [d.namespace, d.http?.request?.url, d.http?.response?.status])).toContainEqual(['remote', `${llm.url}/chat/completions`, 200]);

      // Every DynamoDB call of the request is a subsegment of the key check or of a store operation.
      const dynamo = named(docs, 'DynamoDB');
      expect(dynamo.length).toBeGreaterThanOrEqual(3);
      for (const call of dynamo) expect(docs.find((d) => d.id === call.parent_id)?.name).toMatch(/^### (authenticate|AgentStore\.|ConfigStore\.|RecordStore\.)/);
      // The conversation the model was given, and the one saved with its reply, inside the runtime call.
      expect(['### RecordStore.getConversation', '### RecordStore.saveConversation'].map((name) => named(docs, name)[0]?.parent_id)).toEqual([process!.id, process!.id]);
      expect(named(docs, '### authenticate')[0]).toMatchObject({ parent_id: handler!.id });

      // Neither the operator's key nor the user's message or its reply is sent to X-Ray.
      const sent = daemon.raw.join('\n');
      expect(sent).not.toContain('sk-trace-test');
      expect(sent).not.toContain('a private question');
      expect(sent).not.toContain(key);
    } finally {
      [send, create, start].forEach((p) => p.stop());
      await llm.stop();
    }
  });

  it('an expected refusal (a condition that does not hold, a bad key) is an error in the trace, a store that is down a fault; a workflow task carries the stop\'s correlation id', async () => {
    const created = await call('CreateAgent', { method: 'POST', path: '/agents', routeKey: 'POST /agents', headers: { 'content-type': 'application/json' }, body: '{"name":"idle"}' });
    const agentId = created.body.data.agentId as string;
    const stop = traced('StopAgent');
    const down = traced('GetAgent', { DYNAMODB_ENDPOINT: 'http://127.0.0.1:9', DYNAMODB_MAX_ATTEMPTS: '1' });
    const check = traced('CheckDrainTask');
    try {
      const refused = newTrace();
      const res = await stop.invoke<HttpResult>(
        httpEvent({ method: 'POST', path: `/agents/${agentId}/stop`, routeKey: 'POST /agents/{agentId}/stop', pathParameters: { agentId }, headers: { authorization: `Bearer ${key}` } }),
        29_000,
        refused.header,
      );
      expect(res.statusCode).toBe(409);
      await eventually(async () => named(daemon.trace(refused.traceId), '### AgentStore.beginStop').length === 1);
      const [begin] = named(daemon.trace(refused.traceId), '### AgentStore.beginStop');
      expect(begin).toMatchObject({ error: true, annotations: { agentId, errorCode: 'CONDITION_FAILED' } });
      expect(begin!.fault).toBeUndefined();

      const unreachable = newTrace();
      const failed = await down.invoke<HttpResult>(httpEvent({ method: 'GET', path: `/agents/${agentId}`, routeKey: 'GET /agents/{agentId}', pathParameters: { agentId }, headers: { authorization: `Bearer ${key}` } }), 29_000, unreachable.header);
      expect(failed.statusCode).toBe(503);
      // The key lookup is the first store call, and it fails: a fault of the key check, not a refusal.
      await eventually(async () => named(daemon.trace(unreachable.traceId), '### authenticate').length === 1);
      expect(daemon.trace(unreachable.traceId).some((d) => d.name === 'DynamoDB' && d.fault)).toBe(true);
      const [lookup] = named(daemon.trace(unreachable.traceId), '### authenticate');
      expect(lookup).toMatchObject({ fault: true });
      expect(lookup!.annotations?.errorCode).toBeUndefined();

      // A key that is not one: the caller's mistake (401), an error of the key check, not a fault.
      const bogus = newTrace();
      const refusedKey = await stop.invoke<HttpResult>(
        httpEvent({ method: 'POST', path: `/agents/${agentId}/stop`, routeKey: 'POST /agents/{agentId}/stop', pathParameters: { agentId }, headers: { authorization: 'Bearer not-a-key' } }),
        29_000,
        bogus.header,
      );
      expect(refusedKey.statusCode).toBe(401);
      await eventually(async () => named(daemon.trace(bogus.traceId), '### authenticate').length === 1);
      const [check401] = named(daemon.trace(bogus.traceId), '### authenticate');
      expect(check401).toMatchObject({ error: true, annotations: { errorCode: 'UNAUTHORIZED' } });
      expect(check401!.fault).toBeUndefined();

      const task = newTrace();
      const input = { agentId, stopId: 'none', correlationId: 'stop-begun-by-me' };
      expect(await check.invoke(input, 29_000, task.header)).toMatchObject({ state: 'gone' });
      await eventually(async () => named(daemon.trace(task.traceId), '## index.handler').length === 1);
      expect(named(daemon.trace(task.traceId), '## index.handler')[0]!.annotations).toMatchObject({ correlationId: 'stop-begun-by-me' });
      expect(named(daemon.trace(task.traceId), '### AgentStore.get')[0]).toMatchObject({ annotations: { agentId } });
    } finally {
      [stop, down, check].forEach((p) => p.stop());
    }
  });
});
