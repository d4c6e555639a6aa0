import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAgent, startTestApp, type TestApp } from '../support/stack.js';

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => {
  await app.close();
});

describe('agents CRUD', () => {
  it('creates an inactive agent with defaults and returns 201 with Location', async () => {
    const res = await app.api('POST', '/agents', { name: 'demo' });
    expect(res.status).toBe(201);
    expect(res.body.success).toBe(true);
    expect(res.body.data).toMatchObject({
      name: 'demo',
      status: 'inactive',
      settings: {},
      runtime: { type: 'echo' },
      idleTimeoutMs: 3_600_000,
      inFlight: 0,
      version: 1,
    });
    expect(res.headers.get('location')).toBe(`/agents/${res.body.data.agentId}`);
    expect(res.body.data).not.toHaveProperty('leases');
  });

  it('accepts a client agentId and answers 409 when it exists', async () => {
    const agentId = randomUUID();
    expect((await app.api('POST', '/agents', { agentId, name: 'a' })).status).toBe(201);
    const again = await app.api('POST', '/agents', { agentId, name: 'b' });
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({ success: false, error: `An agent with agentId ${agentId} already exists` });
  });

  it('gets an agent with its version in the ETag, and 404s an unknown one', async () => {
    const agentId = await createAgent(app.api);
    const res = await app.api('GET', `/agents/${agentId}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('etag')).toMatch(/^"1-[\w-]{22}"$/);
    const missing = await app.api('GET', `/agents/${randomUUID()}`);
    expect(missing.status).toBe(404);
    expect(missing.body).toEqual({ success: false, error: 'Agent not found', code: 'AGENT_NOT_FOUND' });
  });

  it('lists agents by status through pages with an opaque cursor', async () => {
    const ids = new Set<string>();
    for (let i = 0; i < 5; i++) ids.add(await createAgent(app.api, { name: `page-${i}` }, true));
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const res = await app.api('GET', `/agents?status=active&limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(res.status).toBe(200);
      expect(Array.isArray(res.body.data)).toBe(true);
      expect(res.body.data.length).toBeLessThanOrEqual(2);
      for (const a of res.body.data) {
        expect(a.status).toBe('active');
        seen.push(a.agentId);
      }
      cursor = res.body.nextCursor;
    } while (cursor);
    expect(seen.filter((id) => ids.has(id)).sort()).toEqual([...ids].sort());
  });

  it('rejects a forged cursor with 400', async () => {
    const res = await app.api('GET', '/agents?cursor=bm90LWpzb24');
    expect(res.status).toBe(400);
    expect(res.body.error).toMatch(/"cursor" is not valid/);
  });

  it('updates name any time, but runtime and settings only while inactive', async () => {
    const agentId = await createAgent(app.api, {}, true);
    const renamed = await app.api('PATCH', `/agents/${agentId}`, { name: 'renamed' });
    expect(renamed.status).toBe(200);
    expect(renamed.body.data.name).toBe('renamed');
    const runtime = await app.api('PATCH', `/agents/${agentId}`, { runtime: { type: 'echo', delayMs: 10 } });
    expect(runtime.status).toBe(409);
    expect(runtime.body.error).toMatch(/only be changed while it is inactive/);
  });

  it('answers 412 when If-Match names an old version', async () => {
    const agentId = await createAgent(app.api);
    const first = await app.api('PATCH', `/agents/${agentId}`, { settings: { a: 1 } }, { 'if-match': '"1"' });
    expect(first.status).toBe(200);
    expect(first.headers.get('etag')).toBe('"2"');
    const stale = await app.api('PATCH', `/agents/${agentId}`, { settings: { a: 2 } }, { 'if-match': '"1"' });
    expect(stale.status).toBe(412);
    expect(stale.body.error).toMatch(/current version is 2/);
    expect((await app.api('GET', `/agents/${agentId}`)).body.data.settings).toEqual({ a: 1 });
  });

  it("takes a GET's ETag as If-Match: the version in it is compared", async () => {
    const agentId = await createAgent(app.api);
    const etag = (await app.api('GET', `/agents/${agentId}`)).headers.get('etag')!;
    expect((await app.api('PATCH', `/agents/${agentId}`, { name: 'one' }, { 'if-match': etag })).status).toBe(200);
    const stale = await app.api('PATCH', `/agents/${agentId}`, { name: 'two' }, { 'if-match': etag });
    expect(stale.status).toBe(412);
    expect(stale.body.error).toMatch(/current version is 2/);
  });

  it('deletes an inactive agent with its records, and refuses a running one', async () => {
    const agentId = await createAgent(app.api, {}, true);
    await app.api('POST', `/agents/${agentId}/messages`, { text: 'hi' });
    const refused = await app.api('DELETE', `/agents/${agentId}`);
    expect(refused.status).toBe(409);
    expect(refused.body.error).toBe('Agent is active: stop it before deleting it');
    await app.api('POST', `/agents/${agentId}/stop`, {});
    expect((await app.api('DELETE', `/agents/${agentId}`)).status).toBe(200);
    expect((await app.api('GET', `/agents/${agentId}`)).status).toBe(404);
    const records = await app.deps.records.listMessages(agentId, 10);
    expect(records.items).toEqual([]);
    expect((await app.api('DELETE', `/agents/${agentId}`)).status).toBe(404);
  });
});

describe('delete, then re-create under the same agentId', () => {
  it("keeps the new agent's records when the old agent's cleanup runs late", async () => {
    const agentId = randomUUID();
    await createAgent(app.api, { agentId }, true);
    await app.api('POST', `/agents/${agentId}/messages`, { text: 'old life', messageId: 'old-1' });
    await app.api('POST', `/agents/${agentId}/stop`, {});
    const deletedAt = Date.now();
    expect((await app.api('DELETE', `/agents/${agentId}`)).status).toBe(200);

    await createAgent(app.api, { agentId }, true);
    expect((await app.api('POST', `/agents/${agentId}/messages`, { text: 'new life', messageId: 'new-1' })).status).toBe(200);
    // The old agent's cleanup, still running (or retried) after the new agent wrote its first record:
    await app.deps.records.deleteAll(agentId, deletedAt);

    const history = (await app.api('GET', `/agents/${agentId}/messages`)).body.data;
    expect(history.map((m: { messageId: string }) => m.messageId)).toEqual(['new-1']);
  });
});

describe('start and stop', () => {
  it('starts an inactive agent and refuses to start it twice', async () => {
    const agentId = await createAgent(app.api);
    const started = await app.api('POST', `/agents/${agentId}/start`);
    expect(started.status).toBe(200);
    expect(started.body.data.status).toBe('active');
    const again = await app.api('POST', `/agents/${agentId}/start`);
    expect(again.status).toBe(409);
    expect(again.body.error).toBe('Agent is already running');
  });

  it('stops an idle agent at once with exactly the documented body', async () => {
    const agentId = await createAgent(app.api, {}, true);
    const res = await app.api('POST', `/agents/${agentId}/stop`, {});
    expect(res.status).toBe(200);
    expect(Object.keys(res.body)).toEqual(['success', 'message', 'data']);
    expect(res.body).toEqual({
      success: true,
      message: 'Agent stopped successfully',
      data: { agentId, status: 'inactive', stoppedAt: expect.any(Number) },
    });
    const agent = (await app.api('GET', `/agents/${agentId}`)).body.data;
    expect(agent.status).toBe('inactive');
    expect(agent.lastStop).toMatchObject({ outcome: 'drained', reason: 'api', interrupted: 0, stoppedAt: res.body.data.stoppedAt });
    expect(agent).not.toHaveProperty('stop');
  });

  it('treats no body like {} and answers 409 "Agent is not running" the second time', async () => {
    const agentId = await createAgent(app.api, {}, true);
    expect((await app.api('POST', `/agents/${agentId}/stop`)).status).toBe(200);
    const again = await app.api('POST', `/agents/${agentId}/stop`, {});
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({ success: false, error: 'Agent is not running' });
  });

  it('answers 404 "Agent not found" for an unknown agent', async () => {
    const res = await app.api('POST', `/agents/${randomUUID()}/stop`, {});
    expect(res.status).toBe(404);
    expect(res.body).toMatchObject({ success: false, error: 'Agent not found' });
  });

  it('force-stops an active agent with 200 and records outcome forced', async () => {
    const agentId = await createAgent(app.api, {}, true);
    const res = await app.api('POST', `/agents/${agentId}/stop`, { graceful: false });
    expect(res.status).toBe(200);
    expect(res.body.data.status).toBe('inactive');
    const stops = (await app.api('GET', `/agents/${agentId}/stops`)).body.data;
    expect(stops).toHaveLength(1);
    expect(stops[0]).toMatchObject({ outcome: 'forced', graceful: false, interrupted: 0 });
  });

  it('publishes Agent Started, Agent Stopping and Agent Stopped', async () => {
    const agentId = await createAgent(app.api, {}, true);
    await app.api('POST', `/agents/${agentId}/stop`, {});
    const types = app.bus.published.filter((e) => e.detail.agentId === agentId).map((e) => e.type);
    expect(types).toEqual(['Agent Started', 'Agent Stopping', 'Agent Stopped']);
  });

  it('can start a stopped agent again, keeping its configuration', async () => {
    const agentId = await createAgent(app.api, { settings: { model: 'x' } }, true);
    await app.api('POST', `/agents/${agentId}/stop`, {});
    const restarted = await app.api('POST', `/agents/${agentId}/start`);
    expect(restarted.status).toBe(200);
    expect(restarted.body.data).toMatchObject({ status: 'active', settings: { model: 'x' } });
    expect(restarted.body.data.lastStop.outcome).toBe('drained');
  });
});

describe('bad input', () => {
  const cases: [string, string, string, unknown, Record<string, string>, number, RegExp][] = [
    ['malformed JSON', 'POST', '/agents', '{"name":', {}, 400, /not valid JSON/],
    ['an array body', 'POST', '/agents', '[]', {}, 400, /must be a JSON object/],
    ['a missing name', 'POST', '/agents', {}, {}, 400, /"name" is required/],
    ['a wrong type', 'POST', '/agents', { name: 42 }, {}, 400, /"name" must be a string/],
    ['an unknown field', 'POST', '/agents', { name: 'x', colour: 'red' }, {}, 400, /unknown field "colour"/],
    ['a bad client agentId', 'POST', '/agents', { name: 'x', agentId: 'nope' }, {}, 400, /"agentId" must be a UUID/],
    ['an unknown runtime', 'POST', '/agents', { name: 'x', runtime: { type: 'gpt' } }, {}, 400, /"runtime.type" must be one of "echo", "http", "llm"/],
    ['a bad UUID in the path', 'GET', '/agents/not-a-uuid', undefined, {}, 400, /"agentId" must be a UUID/],
    ['a path id of the wrong shape', 'GET', '/agents/4b9c3c49-4c5a-4e7b-cd2f', undefined, {}, 400, /^Path parameter "agentId" must be a UUID \(8-4-4-4-12 hexadecimal digits\), got/],
    // Any UUID that names no agent is not found, whatever its version and variant digits.
    ['a UUID of any version or variant that names no agent', 'GET', '/agents/e3e70682-c209-4cac-629f-6fbed82c07cd', undefined, {}, 404, /^Agent not found$/],
    ['a body id of the wrong shape', 'POST', '/agents', { name: 'x', agentId: '4b9c3c49-4c5a-0e7b-8d2f' }, {}, 400, /^Field "agentId" must be a UUID \(8-4-4-4-12 hexadecimal digits\)$/],
    ['a non-JSON content type', 'POST', '/agents', 'name=x', { 'content-type': 'application/x-www-form-urlencoded' }, 415, /application\/json/],
    ['an unknown route', 'GET', '/nothing/here', undefined, {}, 404, /No route for GET \/nothing\/here/],
    ['a wrong method', 'PUT', '/agents', undefined, {}, 405, /PUT is not allowed on \/agents; use POST, GET/],
    // A literal path is not an id: the routes of /agents/{agentId} do not answer for it.
    ['PATCH of the fleet stop path', 'PATCH', '/agents/stop', { name: 'x' }, {}, 405, /^PATCH is not allowed on \/agents\/stop; use POST$/],
    ['GET of the fleet stop path', 'GET', '/agents/stop', undefined, {}, 405, /^GET is not allowed on \/agents\/stop; use POST$/],
    ['DELETE of the counts', 'DELETE', '/agents/counts', undefined, {}, 405, /^DELETE is not allowed on \/agents\/counts; use GET$/],
    ['PUT of the fleet stop path', 'PUT', '/agents/stop', undefined, {}, 405, /^PUT is not allowed on \/agents\/stop; use POST$/],
    ['a bad status filter', 'GET', '/agents?status=sleeping', undefined, {}, 400, /"status" must be one of/],
    ['a limit out of range', 'GET', '/agents?limit=1000', undefined, {}, 400, /"limit" must be at most 100/],
    ['an empty PATCH', 'PATCH', `/agents/${randomUUID()}`, {}, {}, 400, /must name at least one field/],
    ['a bad If-Match', 'PATCH', `/agents/${randomUUID()}`, { name: 'x' }, { 'if-match': 'abc' }, 400, /"If-Match"/],
  ];
  it.each(cases)('answers %s with the JSON envelope', async (_label, method, path, body, headers, status, error) => {
    const res = await app.api(method, path, body, headers);
    expect(res.status).toBe(status);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(res.body.success).toBe(false);
    expect(res.body.error).toMatch(error);
  });

  it('sends Allow with 405', async () => {
    const res = await app.api('DELETE', '/agents');
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('POST, GET');
  });

  const stopCases: [unknown, RegExp][] = [
    [{ graceful: 'yes' }, /"graceful" must be a boolean/],
    [{ timeout: -1 }, /"timeout" must be at least 0/],
    [{ timeout: 86_400_001 }, /"timeout" must be at most 86400000/],
    [{ timeout: 1.5 }, /"timeout" must be an integer/],
    [{ timeout: '100' }, /"timeout" must be a/],
    [{ force: true }, /unknown field "force"/],
  ];
  it.each(stopCases)('rejects the stop body %j with a sentence naming the field', async (body, error) => {
    const agentId = await createAgent(app.api, {}, true);
    const res = await app.api('POST', `/agents/${agentId}/stop`, body);
    expect(res.status).toBe(400);
    expect(res.body.error).toMatch(error);
    expect((await app.api('GET', `/agents/${agentId}`)).body.data.status).toBe('active');
  });

  it('answers 413 for an oversized body', async () => {
    const res = await app.api('POST', '/agents', { name: 'x', settings: { blob: 'x'.repeat(200_000) } });
    expect(res.status).toBe(413);
    expect(res.body.error).toMatch(/too large/);
  });

  it('answers 415 for a stop body that is not JSON', async () => {
    const agentId = await createAgent(app.api, {}, true);
    const res = await app.api('POST', `/agents/${agentId}/stop`, 'graceful=true', { 'content-type': 'text/plain' });
    expect(res.status).toBe(415);
  });
});

describe('polling with If-None-Match', () => {
  it('answers 304 with no body while the agent is unchanged, and 200 once a message is in flight under the same version', async () => {
    const agentId = await createAgent(app.api, { runtime: { type: 'echo', delayMs: 1500 } }, true);
    const first = await app.api('GET', `/agents/${agentId}`);
    const etag = first.headers.get('etag')!;
    const again = await app.api('GET', `/agents/${agentId}`, undefined, { 'if-none-match': etag });
    expect(again.status).toBe(304);
    expect(again.text).toBe('');
    expect(again.headers.get('etag')).toBe(etag);
    // Admitting a message changes inFlight, not the version: the answer must not be "unchanged".
    const sent = await app.api('POST', `/agents/${agentId}/messages`, { text: 'slow' }, { prefer: 'respond-async' });
    expect(sent.status).toBe(202);
    const busy = await app.api('GET', `/agents/${agentId}`, undefined, { 'if-none-match': etag });
    expect(busy.status).toBe(200);
    expect(busy.body.data).toMatchObject({ inFlight: 1, version: first.body.data.version });
    expect(busy.headers.get('etag')).not.toBe(etag);
    expect(busy.headers.get('etag')!.split('-')[0]).toBe(etag.split('-')[0]);
  });

  it('answers 304 on lists and history too, and 200 when a page changes', async () => {
    const agentId = await createAgent(app.api, {}, true);
    for (const path of [`/agents/${agentId}/messages`, `/agents/${agentId}/stops`, '/agents/counts', '/agents?status=active']) {
      const first = await app.api('GET', path);
      expect(first.status, path).toBe(200);
      const etag = first.headers.get('etag')!;
      expect(etag, path).toMatch(/^"[\w-]{22}"$/);
      expect((await app.api('GET', path, undefined, { 'if-none-match': `W/"other", ${etag}` })).status, path).toBe(304);
    }
    const before = await app.api('GET', `/agents/${agentId}/messages`);
    await app.api('POST', `/agents/${agentId}/messages`, { text: 'hello' });
    const after = await app.api('GET', `/agents/${agentId}/messages`, undefined, { 'if-none-match': before.headers.get('etag')! });
    expect(after.status).toBe(200);
    expect(after.body.data).toHaveLength(1);
    // The health check answers whether the API is up, never "unchanged".
    expect((await app.api('GET', '/health', undefined, { 'if-none-match': '*' })).status).toBe(200);
  });
});

describe('fleet counts', () => {
  it('counts the agents in each status', async () => {
    const before = (await app.api('GET', '/agents/counts')).body.data;
    const running = await createAgent(app.api, {}, true);
    await createAgent(app.api);
    const stopped = await createAgent(app.api, {}, true);
    await app.api('POST', `/agents/${stopped}/stop`, { graceful: false });
    const after = await app.api('GET', '/agents/counts');
    expect(after.status).toBe(200);
    expect(after.body.data).toEqual({
      active: before.active + 1,
      stopping: before.stopping,
      inactive: before.inactive + 2,
      total: before.total + 3,
    });
    expect((await app.api('GET', `/agents/${running}`)).body.data.status).toBe('active');
  });
});
