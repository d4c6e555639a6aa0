import { execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { freePort } from '../../local/dynamodb.js';
import { startNode } from '../support/processes.js';
import { eventually } from '../support/stack.js';

/**
 * `npm start` as a user runs it (local/main.ts in its own Node process): one DynamoDB Local per
 * data folder, nothing left behind by a busy port, and Java gone with the server even when the
 * server is killed with SIGKILL.
 */
const dataDir = mkdtempSync(join(tmpdir(), 'agents-start-'));
const started: ChildProcess[] = [];
afterAll(() => {
  for (const p of started) p.kill('SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
});

/** A Node process of ours (local/*.ts) as a user starts it, its output collected. */
function run(script: string, args: string[], env: Record<string, string>) {
  const child = startNode(['--import', 'tsx', script, ...args], env);
  started.push(child.proc);
  return child;
}

const server = (env: Record<string, string>, opts: { group?: boolean } = {}) => {
  const child = startNode(['--import', 'tsx', 'local/main.ts'], { AGENTS_REAPER_INTERVAL_MS: '0', ...env }, opts);
  started.push(child.proc);
  return child;
};
const keys = (args: string[], dir: string) => run('local/keys.ts', args, { AGENTS_DATA_DIR: dir });

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
const lock = () => JSON.parse(readFileSync(join(dataDir, 'dynamodb', 'LOCK'), 'utf8')) as { pid: number; javaPid: number };

it('locks its data folder, checks the port before Java, and takes Java down with it on SIGKILL', { timeout: 90_000 }, async () => {
  const port = await freePort();
  const first = server({ PORT: String(port), AGENTS_DATA_DIR: dataDir });
  await eventually(async () => first.output().includes('agents API on'), 60_000, 100);
  expect(first.output()).toContain(`console on http://localhost:${port}/console, docs on /docs`);
  // Not a terminal (a pipe here): the server's own lines are JSON log items, as the functions' are.
  const lines = first.output().trim().split('\n');
  expect(lines.map((l) => JSON.parse(l) as Record<string, unknown>)).toEqual(lines.map(() => expect.objectContaining({ level: 'INFO', service: 'agents-local', message: expect.any(String) })));
  const owner = lock();
  expect(owner.pid).toBe(first.proc.pid);
  expect(alive(owner.javaPid)).toBe(true);

  // `npm run keys` on the same folder writes to the running server's store, and says so.
  const created = keys(['create', '--name', 'ops'], dataDir);
  expect(await created.exited).toBe(0);
  expect(created.output()).toContain(`of the running \`npm start\` on ${dataDir}`);
  const key = /agk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}/.exec(created.output())![0];
  await eventually(async () => (await fetch(`http://127.0.0.1:${port}/agents`)).status === 401, 10_000, 200);
  expect((await fetch(`http://127.0.0.1:${port}/agents`, { headers: { authorization: `Bearer ${key}` } })).status).toBe(200);
  expect((await fetch(`http://127.0.0.1:${port}/health`)).status).toBe(200);
  // Auth goes back off only with the data: refused while the server runs on the folder.
  const busy = run('local/reset.ts', ['--yes'], { AGENTS_DATA_DIR: dataDir });
  expect(await busy.exited).toBe(1);
  expect(busy.output()).toContain(`is running on ${dataDir} (process ${first.proc.pid}): stop it first`);
  // On a folder no server uses, it warns that a server elsewhere will not see the key.
  const elsewhere = keys(['list'], join(dataDir, 'elsewhere'));
  expect(await elsewhere.exited).toBe(0);
  expect(elsewhere.output()).toContain('warning: no `npm start` is running on');

  // A second server on the same folder refuses to start, naming the first.
  const second = server({ PORT: String(await freePort()), AGENTS_DATA_DIR: dataDir });
  expect(await second.exited).toBe(1);
  expect(second.output()).toContain(`is in use by another DynamoDB Local (process ${first.proc.pid}, Java ${owner.javaPid}`);

  // A busy port is refused, and no DynamoDB Local is left running on the other folder.
  const otherDir = join(dataDir, 'other');
  const third = server({ PORT: String(port), AGENTS_DATA_DIR: otherDir });
  expect(await third.exited).toBe(1);
  expect(third.output()).toContain(`Port ${port} is in use`);
  const processes = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' });
  expect(processes.split('\n').filter((args) => args.includes('DynamoDBLocal.jar') && args.includes(otherDir))).toEqual([]);

  // SIGKILL: no shutdown code runs, yet Java goes with the server; the stale lock is taken over.
  first.proc.kill('SIGKILL');
  await first.exited;
  await eventually(async () => !alive(owner.javaPid), 10_000, 100);
  const again = server({ PORT: String(await freePort()), AGENTS_DATA_DIR: dataDir });
  // The banner: where to go first, then that auth is on, said once (its keys were there at start).
  await eventually(async () => again.output().includes('auth: ON'), 60_000, 100);
  expect(again.output().indexOf('agents API on')).toBeLessThan(again.output().indexOf('auth: ON'));
  expect(again.output().match(/auth: ON/g)).toHaveLength(1);
  expect(lock().pid).toBe(again.proc.pid);
  again.proc.kill('SIGTERM');
  expect(await again.exited).toBe(0);
  expect(() => readFileSync(join(dataDir, 'dynamodb', 'LOCK'))).toThrow();

  // With no server on it, reset deletes the folder (keys included): the next start has auth off.
  const reset = run('local/reset.ts', ['--yes'], { AGENTS_DATA_DIR: dataDir });
  expect(await reset.exited, reset.output()).toBe(0);
  expect(existsSync(dataDir)).toBe(false);
  const fresh = server({ PORT: String(port), AGENTS_DATA_DIR: dataDir });
  await eventually(async () => fresh.output().includes('auth: OFF'), 60_000, 100);
  expect(fresh.output()).toContain('agents API on');
  expect((await fetch(`http://127.0.0.1:${port}/agents`)).status).toBe(200);
  fresh.proc.kill('SIGTERM');
  expect(await fresh.exited).toBe(0);
});

it('Ctrl-C during a drain: the work in flight finishes within the shutdown grace, with its database up, and the stop ends drained', { timeout: 120_000 }, async () => {
  const dir = join(dataDir, 'ctrl-c');
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const first = server({ PORT: String(port), AGENTS_DATA_DIR: dir }, { group: true });
  await eventually(async () => first.output().includes('agents API on'), 60_000, 100);
  const call = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(`${base}${path}`, { method, headers: { 'content-type': 'application/json', ...headers }, ...(body !== undefined && { body: JSON.stringify(body) }) });
    return { status: res.status, body: (await res.json()) as { data: Record<string, unknown> & { agentId: string } } };
  };
  const { agentId } = (await call('POST', '/agents', { name: 'drained-at-shutdown', runtime: { type: 'echo', delayMs: 3000 } })).body.data;
  expect((await call('POST', `/agents/${agentId}/start`)).status).toBe(200);
  expect((await call('POST', `/agents/${agentId}/messages`, { messageId: 'in-flight', text: 'three seconds' }, { prefer: 'respond-async' })).status).toBe(202);
  expect((await call('POST', `/agents/${agentId}/stop`, { timeout: 300_000 }, { prefer: 'respond-async' })).status).toBe(202);

  // Ctrl-C: SIGINT to the terminal's foreground process group, the server and whatever it started in it.
  process.kill(-first.proc.pid!, 'SIGINT');
  expect(await first.exited).toBe(0);
  const errors = first.output().split('\n').filter((l) => l.includes('"level":"ERROR"'));
  expect(errors).toEqual([]);

  const again = server({ PORT: String(port), AGENTS_DATA_DIR: dir });
  await eventually(async () => again.output().includes('agents API on'), 60_000, 100);
  expect((await call('GET', `/agents/${agentId}/messages/in-flight`)).body.data).toMatchObject({ status: 'completed', reply: 'three seconds' });
  expect((await call('GET', `/agents/${agentId}`)).body.data).toMatchObject({ status: 'inactive', lastStop: { outcome: 'drained', interrupted: 0 } });
  again.proc.kill('SIGTERM');
  expect(await again.exited).toBe(0);
});
