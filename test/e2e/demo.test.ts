import { afterAll, beforeAll, expect, it } from 'vitest';
import { startNode } from '../support/processes.js';
import { startTestApp, type TestApp } from '../support/stack.js';

/** `npm run demo` against a running server: each stop ends as it says, and it leaves nothing behind. */
let app: TestApp;
beforeAll(async () => {
  app = await startTestApp();
});
afterAll(async () => {
  await app.close();
});

it('shows a drain, a timed-out stop, a force stop and a fleet stop, cleans up and exits 0', { timeout: 60_000 }, async () => {
  const demo = startNode(['--import', 'tsx', 'local/demo.ts'], { AGENTS_API_URL: app.url, POWERTOOLS_LOG_LEVEL: 'WARN' });
  expect(await demo.exited, demo.output()).toBe(0);
  const out = demo.output();
  expect(out).toMatch(/drains: stopping, 1 in flight/);
  expect(out).toMatch(/drains: answered 200 "Agent stopped successfully"; the message: completed, reply "finish me"; a new message now: 409 "Agent is not running"/);
  expect(out).toMatch(/times-out: answered 408 "Graceful shutdown timed out" \(the agent is inactive\); the message: interrupted; stop record: timed_out, interrupted \["\w+"\]/);
  expect(out).toMatch(/forced: POST \/stop \{"graceful":false\}: 200 in \d+ ms, inactive; the message: interrupted/);
  expect(out).toMatch(/fleet: completed: 3 of 3 stopped \(drained 3\)/);
  expect(out).not.toMatch(/0 of 0/);
  expect(out).toMatch(/deleted the 6 agents this demo made/);
  expect((await app.api('GET', '/agents')).body.data).toEqual([]);
});

it('against a server that needs a key, without one: says to set AGENTS_API_KEY and exits 1', { timeout: 60_000 }, async () => {
  const locked = await startTestApp({ requireAuth: true });
  try {
    const demo = startNode(['--import', 'tsx', 'local/demo.ts'], { AGENTS_API_URL: locked.url, AGENTS_API_KEY: '', POWERTOOLS_LOG_LEVEL: 'WARN' });
    expect(await demo.exited).toBe(1);
    expect(demo.output()).toMatch(/demo failed: the server at http:\/\/127\.0\.0\.1:\d+ needs an API key: set AGENTS_API_KEY \(create one with `npm run keys -- create --name demo`\)/);
  } finally {
    await locked.close();
  }
});
