import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { createFleet, listAll } from '../support/fleet.js';
import { createAgent, gatedTestApp } from '../support/stack.js';

/** agentctl as a user runs it: the `bin` npm links into node_modules/.bin (compiled by the global setup), a child process over HTTP. */
const root = fileURLToPath(new URL('../..', import.meta.url));
const agentctl = `${root}node_modules/.bin/agentctl`;
const { gated, app } = gatedTestApp();

function run(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(agentctl, args, { cwd: root, env: { ...process.env, AGENTS_API_URL: app().url, NO_COLOR: '1' }, timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: unknown }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe('agentctl', () => {
  it('stop --all --watch: a fleet of 150 active agents ends inactive, with progress, a summary and exit 0', { timeout: 120_000 }, async () => {
    await createFleet(app().api, 150);
    const { code, stdout, stderr } = await run('stop', '--all', '--watch', '--timeout', '5s', '--concurrency', '25');
    expect(code, stderr).toBe(0);
    expect(stdout).toMatch(/: completed: 150 of 150 stopped \(150 drained, 0 timed out, 0 forced\), 0 failed, 0 skipped/);
    expect(stderr).toMatch(/--idempotency-key agentctl-/);
    expect(stderr).toMatch(/\[#+-*\] \d+\/150 stopped/);
    expect(await listAll(app().api, 'active')).toHaveLength(0);
  });

  it('stop on an inactive agent: exit 1 and the API sentence', async () => {
    const agentId = await createAgent(app().api, {});
    const { code, stdout, stderr } = await run('stop', agentId);
    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toBe('agentctl: Agent is not running (409 AGENT_NOT_RUNNING)\n');
  });

  it('a stop whose timeout cuts a message: exit 2, the message named; stops shows it', async () => {
    const agentId = await createAgent(app().api, { settings: { gated: true } }, true);
    const sending = app().api('POST', `/agents/${agentId}/messages`, { text: 'long', messageId: 'long-1' });
    await gated.waitForHeld(1, agentId);
    const { code, stdout } = await run('stop', agentId, '--timeout', '200ms', '--watch');
    expect(code).toBe(2);
    expect(stdout).toMatch(new RegExp(`^${agentId}: timed_out, 1 interrupted, 0 drained`));
    expect(stdout).toMatch(/interrupted: long-1/);
    const stops = await run('stops', agentId);
    expect(stops.stdout).toMatch(/timed_out\s+api\s/);
    expect(stops.stdout).toMatch(/long-1/);
    gated.releaseAll();
    await sending;
  });

  it('--json, before the command or after it, prints what a script parses: create, send, list, get, messages', async () => {
    const created = await run('--json', 'create', '--name', 'scripted', '--runtime', '{"type":"echo"}', '--start');
    expect(created.code, created.stderr).toBe(0);
    const agent = JSON.parse(created.stdout);
    expect(agent).toMatchObject({ name: 'scripted', status: 'active', runtime: { type: 'echo' } });
    const sent = await run('--json', 'send', agent.agentId, 'hi there', '--async', '--watch');
    expect(JSON.parse(sent.stdout)).toMatchObject({ status: 'completed', reply: 'hi there' });
    const listed = JSON.parse((await run('list', '--status', 'active', '--json')).stdout);
    expect(listed.map((a: { agentId: string }) => a.agentId)).toContain(agent.agentId);
    expect(JSON.parse((await run('--json', 'get', agent.agentId)).stdout)).toMatchObject({ agentId: agent.agentId, status: 'active' });
    expect(JSON.parse((await run('messages', agent.agentId, '--json')).stdout)).toMatchObject([{ status: 'completed', text: 'hi there' }]);
    const table = await run('list', '--status', 'active');
    expect(table.stdout.split('\n')[0]).toMatch(/^AGENT\s+NAME\s+STATUS\s+IN FLIGHT\s+LAST STOP$/);
    expect(table.stdout).toMatch(new RegExp(`${agent.agentId}\\s+scripted\\s+active\\s+0`));
  });

  it('bad input: exit 3 with a sentence, the CLI\'s or the API\'s', async () => {
    const noUnit = await run('stop', '--all', '--timeout', '60');
    expect(noUnit.code).toBe(3);
    expect(noUnit.stderr).toMatch(/"60" is not a duration: give a number and a unit, e.g. 1500ms, 30s, 5m/);
    const both = await run('stop', crypto.randomUUID(), '--all');
    expect(both).toMatchObject({ code: 3, stderr: 'agentctl: Give an agent id, or --all for the fleet (not both)\n' });
    const unknown = await run('get', crypto.randomUUID());
    expect(unknown.code).toBe(3);
    expect(unknown.stderr).toBe('agentctl: Agent not found (404 AGENT_NOT_FOUND)\n');
    const badRuntime = await run('create', '--name', 'x', '--runtime', '{"type":"nope"}');
    expect(badRuntime.code).toBe(3);
    expect(badRuntime.stderr).toMatch(/^agentctl: .*runtime.*\(400 /);
  });
});
