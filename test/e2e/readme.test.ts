import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestApp, type TestApp } from '../support/stack.js';

/**
 * The README's command blocks run as pasted: every block that talks to a local server is run with
 * bash against one (its `localhost:3000` pointed at the test server), and must exit 0 with the
 * answers it promises. The other blocks need what a test cannot start (a second `npm start`,
 * `npm test` itself, an AWS account, minutes of benchmarks), and are named here so a new block
 * cannot go unchecked.
 */
const blocks = [...readFileSync(new URL('../../README.md', import.meta.url), 'utf8').matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
const notRunHere = [/^npm ci && npm start/, /^npm ci\nnpx cdk bootstrap/, /^npm run bench /];
const runHere = (block: string) => !notRunHere.some((r) => r.test(block)) && ((block.includes('curl') && block.includes('localhost:3000')) || block.includes('npx agentctl'));
const withCurl = (block: string) => block.includes('curl');

let app: TestApp;
beforeAll(async () => {
  app = await startTestApp({ config: { stopWaitWindowMs: 25_000 } });
});
afterAll(async () => {
  await app.close();
});

const bash = (script: string, env: Record<string, string> = {}) =>
  new Promise<{ code: number | null; output: string }>((resolve) => {
    const child = spawn('bash', ['-e', '-o', 'pipefail', '-c', script], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    child.on('exit', (code) => resolve({ code, output }));
  });

it('has only blocks this test runs or names', () => {
  for (const block of blocks) expect(runHere(block) || notRunHere.some((r) => r.test(block)), block.slice(0, 80)).toBe(true);
  expect(blocks.filter(runHere).length).toBeGreaterThan(0);
});

it('runs the local blocks as pasted: each answer as the comments say, every line ending in a newline', { timeout: 60_000 }, async () => {
  const host = new URL(app.url).host;
  for (const block of blocks.filter(runHere).filter(withCurl)) {
    const { code, output } = await bash(block.replaceAll('localhost:3000', host));
    expect(code, output).toBe(0);
    const answers = output.trim().split('\n').map((line) => JSON.parse(line) as { success: boolean; message?: string; error?: string; data?: any });
    expect(answers.map((a) => a.message ?? a.error)).toEqual([
      'Agent started',
      'Message processed',
      'Agent stopped successfully',
      'Agent is not running',
      undefined,
      'Agent started',
      'Message accepted',
      'Agent stopped successfully',
      undefined,
      'Agent started',
      'Fleet stop started',
      'Agent deleted',
    ]);
    expect(answers[8]!.data.status).toBe('interrupted');
    expect(answers[4]!.data.map((s: { outcome: string }) => s.outcome)).toEqual(['drained']);
  }
});

it('runs the agentctl block as pasted: the reply, a drained stop, the history, JSON, a fleet stop, exit 0', { timeout: 60_000 }, async () => {
  const [block] = blocks.filter(runHere).filter((b) => !withCurl(b));
  const { code, output } = await bash(block!, { AGENTS_API_URL: app.url, NO_COLOR: '1' });
  expect(code, output).toBe(0);
  // stdout and stderr together: the progress lines (--watch) are among them.
  expect(output).toMatch(/^hello$/m);
  expect(output).toMatch(/^stopping: 1 in flight, deadline in \d+\.\d s$/m);
  expect(output).toMatch(/^[0-9a-f-]{36}: drained, 0 interrupted, 1 drained, in \d+ ms$/m);
  expect(output).toMatch(/^STOP\s+OUTCOME\s+REASON\s+STOPPED\s+TOOK\s+DRAINED\s+INTERRUPTED\n\w+\s+drained\s+api\s/m);
  expect(output).toMatch(/"name": "try-cli",\n\s+"status": "inactive"/);
  // The closing fleet stop has an agent to stop (the one started again just before it).
  expect(output).toMatch(/: completed: [1-9]\d* of [1-9]\d* stopped/);
});
