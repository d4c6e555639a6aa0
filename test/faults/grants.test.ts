import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { functionAccess } from '../../functions/adapters/dynamodb/grants.js';
import { routes } from '../../functions/http/routes.js';
import { patchAgentsStore } from '../support/patch.js';
import { createAgent, eventually, startTestApp, type TestApp } from '../support/stack.js';

/**
 * Each function runs under the grants its declaration gives it (the one CDK grants from): a call
 * outside them is refused as IAM refuses it deployed, so a read route that writes fails here too.
 */
let app: TestApp;
beforeAll(async () => {
  app = await startTestApp({ config: { leaseTtlMs: 400 } });
});
afterAll(() => app.close());

describe('grants', () => {
  it("refuses a write from a read route's client, as IAM does: AccessDeniedException, not sent", async () => {
    const agentId = await createAgent(app.api);
    const reader = app.functionDeps('get-message');
    const refused = await reader.agents.setSigningSecret(agentId, 'x'.repeat(43), Date.now()).catch((err: Error) => err);
    expect(refused).toMatchObject({ name: 'AccessDeniedException', message: expect.stringContaining('dynamodb:UpdateItem') });
    // Nothing was written, and the same route may read.
    expect((await app.deps.agents.get(agentId))!.version).toBe(1);
    expect((await reader.agents.get(agentId))!.agentId).toBe(agentId);
    // A table the function declares nothing for is refused for reads too.
    const health = app.functionDeps('health');
    expect(await health.agents.get(agentId).catch((err: Error) => err.name)).toBe('AccessDeniedException');
  });

  it('gives every route and function exactly what it declares', async () => {
    const agentId = await createAgent(app.api);
    const canWrite = async (name: string) =>
      (await app.functionDeps(name).agents.moveDueAt(agentId, 'inactive', 1).then(() => true, (err: Error) => (err.name === 'AccessDeniedException' ? false : err.name))) as boolean | string;
    // And the records table, read or not at all.
    const canReadRecords = async (name: string) =>
      (await app.functionDeps(name).records.getMessage(agentId, 'none').then(() => true, (err: Error) => (err.name === 'AccessDeniedException' ? false : err.name))) as boolean | string;
    for (const route of routes) {
      expect(await canWrite(route.handler), route.handler).toBe(route.agents === 'write');
      expect(await canReadRecords(route.handler), route.handler).toBe(route.records !== 'none');
    }
    for (const [name, access] of Object.entries(functionAccess)) {
      expect(await canWrite(name), name).toBe(access.agents === 'write');
      expect(await canReadRecords(name), name).toBe(access.records !== 'none');
    }
  });
});

describe('reads are reads', () => {
  it('a message whose admission died before its lease reads as failed, and is settled by the next admission of its id', async () => {
    const agentId = await createAgent(app.api, { idleTimeoutMs: null }, true);
    const undo = patchAgentsStore(app, 'admitLease', (admitLease) => (a) => (a.agentId === agentId ? new Promise(() => {}) : admitLease(a)));
    void app.api('POST', `/agents/${agentId}/messages`, { messageId: 'half', text: 'half admitted' }).catch(() => undefined);
    await eventually(async () => (await app.deps.records.getMessage(agentId, 'half'))?.status === 'processing');

    await eventually(async () => (await app.api('GET', `/agents/${agentId}/messages/half`)).body.data?.status === 'failed');
    expect((await app.api('GET', `/agents/${agentId}/messages`)).body.data).toEqual([expect.objectContaining({ messageId: 'half', status: 'failed' })]);
    // The GETs wrote nothing (they may not): the store still holds it processing.
    expect((await app.deps.records.getMessage(agentId, 'half'))!.status).toBe('processing');

    undo();
    const retry = await app.api('POST', `/agents/${agentId}/messages`, { messageId: 'half', text: 'half admitted' });
    expect(retry).toMatchObject({ status: 409, body: { code: 'MESSAGE_FAILED', error: expect.stringMatching(/never admitted/) } });
    expect(await app.deps.records.getMessage(agentId, 'half')).toMatchObject({ status: 'failed', error: expect.stringMatching(/never admitted/) });
  });
});
