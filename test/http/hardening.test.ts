import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runReaper } from '../../functions/agents/reaper.js';
import { createAgent, eventually, startTestApp, type TestApp } from '../support/stack.js';

/** Contract details found by probing: crafted cursors, UUID case, idle timeout changes. */
let app: TestApp;
const logLines: string[] = [];
beforeAll(async () => {
  app = await startTestApp({ log: (line) => logLines.push(line) });
});
afterAll(async () => {
  await app.close();
});

const cursor = (key: unknown) => Buffer.from(JSON.stringify(key)).toString('base64url');

describe('page cursors', () => {
  it('answers 400 with a sentence for every crafted cursor, never 500', async () => {
    const agentId = await createAgent(app.api, {}, true);
    await app.api('POST', `/agents/${agentId}/messages`, { text: 'one' });
    expect((await app.api('POST', `/agents/${agentId}/stop`, {})).status).toBe(200);
    const probes = [
      `/agents?status=inactive&cursor=${cursor({ agentId, status: 'inactive', dueAt: 1e200 })}`,
      `/agents?status=inactive&cursor=${cursor({ agentId, status: 'inactive', dueAt: 1e-200 })}`,
      `/agents?status=inactive&cursor=${cursor({ agentId, status: 'inactive', dueAt: -1 })}`,
      `/agents?status=inactive&cursor=${cursor({ agentId, status: 'active', dueAt: 1 })}`,
      `/agents?cursor=${cursor({ agentId: 'not-a-uuid' })}`,
      `/agents/${agentId}/messages?cursor=${cursor({ agentId, sk: 'STOP#01JZZZZZZZZZZZZZZZZZZZZZZZ' })}`,
      `/agents/${agentId}/messages?cursor=${cursor({ agentId, sk: 'MSG#a b' })}`,
      `/agents/${agentId}/stops?cursor=${cursor({ agentId, sk: 'MSG#one' })}`,
      `/agents/${agentId}/stops?cursor=${cursor({ agentId, sk: 'STOP#x' })}`,
    ];
    for (const path of probes) {
      const res = await app.api('GET', path);
      expect(res.status, path).toBe(400);
      expect(res.body).toEqual({
        success: false,
        code: 'VALIDATION_ERROR',
        error: 'Query parameter "cursor" is not valid: pass the nextCursor of a previous page unchanged',
      });
    }
  });

  it('still follows the cursors it hands out', async () => {
    const agentId = await createAgent(app.api, {}, true);
    for (const text of ['a', 'b', 'c']) await app.api('POST', `/agents/${agentId}/messages`, { text });
    const first = await app.api('GET', `/agents/${agentId}/messages?limit=2`);
    const second = await app.api('GET', `/agents/${agentId}/messages?limit=2&cursor=${first.body.nextCursor}`);
    expect(second.status).toBe(200);
    expect([...first.body.data, ...second.body.data].map((m: { text: string }) => m.text)).toEqual(['a', 'b', 'c']);
    const listed = await app.api('GET', '/agents?status=active&limit=1');
    expect((await app.api('GET', `/agents?status=active&limit=1&cursor=${listed.body.nextCursor}`)).status).toBe(200);
  });
});

describe('agent ids', () => {
  it('are case-insensitive: stored in lower case, found and refused as duplicates whatever the case', async () => {
    const lower = crypto.randomUUID();
    const upper = lower.toUpperCase();
    const created = await app.api('POST', '/agents', { agentId: upper, name: 'upper' });
    expect(created.status).toBe(201);
    expect(created.body.data.agentId).toBe(lower);
    expect(created.headers.get('location')).toBe(`/agents/${lower}`);
    expect((await app.api('POST', '/agents', { agentId: lower, name: 'lower' })).status).toBe(409);
    expect((await app.api('GET', `/agents/${upper}`)).body.data.agentId).toBe(lower);
    expect((await app.api('POST', `/agents/${upper}/start`)).status).toBe(200);
    expect((await app.api('POST', `/agents/${upper}/stop`, {})).status).toBe(200);
    expect((await app.api('GET', `/agents/${lower}`)).body.data.status).toBe('inactive');
  });
});

describe('idle timeout changes', () => {
  it('a lowered idleTimeoutMs on an active agent is what the reaper goes by', async () => {
    const disabled = await createAgent(app.api, { idleTimeoutMs: null }, true);
    const hourly = await createAgent(app.api, { idleTimeoutMs: 3_600_000 }, true);
    for (const agentId of [disabled, hourly]) {
      expect((await app.api('PATCH', `/agents/${agentId}`, { idleTimeoutMs: 1000 })).status).toBe(200);
    }
    await eventually(async () => {
      await runReaper(app.deps, { budgetMs: 5_000 });
      const states = await Promise.all([disabled, hourly].map(async (id) => (await app.api('GET', `/agents/${id}`)).body.data));
      return states.every((a) => a.status === 'inactive' && a.lastStop.reason === 'idle');
    }, 10_000, 250);
  });
});

describe('the access log', () => {
  it('never writes out a credential sent in the query string, by its parameter or by its form', async () => {
    const secret = 'agk_k1_thisIsTheSecretPartOfTheKey';
    const paths = [`/agents?status=active&api_key=${secret}`, `/agents?token=t0ps3cr3t&limit=5`, `/agents?q=${encodeURIComponent(secret)}`, `/agents/${secret}`];
    for (const path of paths) await app.api('GET', path);
    const lines = logLines.filter((l) => l.startsWith('GET /agents'));
    expect(lines.join('\n')).not.toMatch(/thisIsTheSecretPartOfTheKey|t0ps3cr3t/);
    expect(lines).toEqual(expect.arrayContaining([expect.stringContaining('GET /agents?status=active&api_key=[redacted] '), expect.stringContaining('GET /agents?token=[redacted]&limit=5 ')]));
  });
});
