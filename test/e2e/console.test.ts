import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../support/browser.js';
import { createAgent, eventually, sleep, startTestApp, type TestApp } from '../support/stack.js';

/**
 * The operator console in a real headless Chromium over the local stack: what the page shows
 * while agents drain, are forced and are stopped as a fleet, and how it asks for a key.
 */
let browser: Browser;
beforeAll(async () => {
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
});

const text = async (page: Page, selector: string) => ((await page.locator(selector).first().textContent()) ?? '').trim();
/** Resolves once the page shows `expected` at `selector`. */
const shows = (page: Page, selector: string, expected: string | RegExp, timeout = 20_000) =>
  page.locator(selector, { hasText: expected }).first().waitFor({ timeout });

async function sendAsync(app: TestApp, agentId: string, text: string): Promise<string> {
  const res = await app.api('POST', `/agents/${agentId}/messages`, { text }, { prefer: 'respond-async' });
  expect(res.status).toBe(202);
  await eventually(async () => (await app.api('GET', `/agents/${agentId}`)).body.data.inFlight === 1);
  return res.body.data.messageId as string;
}

describe('one agent', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp();
  });
  afterAll(async () => {
    await app.close();
  });

  it('shows a graceful stop drain the running message to inactive, its countdown moving', { timeout: 60_000 }, async () => {
    const agentId = await createAgent(app.api, { name: 'drains', runtime: { type: 'echo', delayMs: 5_000 } }, true);
    const messageId = await sendAsync(app, agentId, 'finish me');
    const page = await browser.newPage();
    await page.goto(`${app.url}/console#/agents/${agentId}`);
    await shows(page, '[data-in-flight]', '1 message in flight');
    await page.getByLabel('Timeout (seconds)').fill('30');
    await page.getByRole('button', { name: 'Stop gracefully' }).click();

    await shows(page, 'h1 .badge', 'stopping');
    await shows(page, '[data-leases]', '1');
    const first = await text(page, '[data-countdown]');
    expect(first).toMatch(/^(30|29|28) s left$/);
    await expect.poll(() => text(page, '[data-countdown]'), { timeout: 5_000 }).not.toBe(first);
    expect(Number.parseInt(await text(page, '[data-countdown]'), 10)).toBeLessThan(Number.parseInt(first, 10));

    await shows(page, 'h1 .badge', 'inactive');
    await shows(page, '[data-outcome]', 'drained');
    const row = page.locator('table[aria-label="Stop history"] tbody tr').first();
    await expect(row.textContent()).resolves.toContain(messageId);
    await shows(page, `tr[data-message="${messageId}"] [data-status]`, 'completed');
    await page.close();
  });

  it('force-stops after a confirmation and shows the interrupted message in the stop history', { timeout: 60_000 }, async () => {
    const agentId = await createAgent(app.api, { name: 'forced', runtime: { type: 'echo', delayMs: 60_000 } }, true);
    const messageId = await sendAsync(app, agentId, 'cut me short');
    const page = await browser.newPage();
    await page.goto(`${app.url}/console#/agents/${agentId}`);
    await shows(page, '[data-in-flight]', '1 message in flight');
    await page.getByRole('button', { name: 'Force stop' }).click();
    const confirm = page.getByRole('alertdialog', { name: 'Confirm force stop' });
    await expect(confirm.textContent()).resolves.toContain('1 message in progress will be interrupted');
    // Nothing is stopped until it is confirmed.
    expect((await app.api('GET', `/agents/${agentId}`)).body.data.status).toBe('active');
    await confirm.getByRole('button', { name: 'Confirm force stop' }).click();

    await shows(page, 'h1 .badge', 'inactive');
    await shows(page, '[data-outcome]', 'forced');
    await shows(page, 'table[aria-label="Stop history"] [data-interrupted]', messageId);
    await shows(page, `tr[data-message="${messageId}"] [data-status]`, 'interrupted');
    await page.close();
  });

  it('sends a message and shows the reply; sent asynchronously, watches it complete', { timeout: 30_000 }, async () => {
    const agentId = await createAgent(app.api, { name: 'talks', runtime: { type: 'echo', delayMs: 1_500 } }, true);
    const page = await browser.newPage();
    await page.goto(`${app.url}/console#/agents/${agentId}`);
    const form = page.getByRole('form', { name: 'Send a message' });
    await form.getByLabel('Message').fill('hello there');
    await form.getByRole('button', { name: 'Send' }).click();
    await shows(page, '[data-sent]', /completed — reply: hello there$/);

    await form.getByLabel('Message').fill('later, please');
    await form.getByLabel('asynchronously').check();
    await form.getByRole('button', { name: 'Send' }).click();
    await shows(page, '[data-sent="processing"]', 'processing');
    await shows(page, '[data-sent="completed"]', /reply: later, please$/);
    const messages = (await app.api('GET', `/agents/${agentId}/messages`)).body.data as { text: string; status: string }[];
    expect(messages.map((m) => [m.text, m.status])).toEqual([
      ['hello there', 'completed'],
      ['later, please', 'completed'],
    ]);
    await page.close();
  });

  it('shows the API\'s own sentence when an action is refused', { timeout: 30_000 }, async () => {
    const agentId = await createAgent(app.api, { name: 'refused' }, true);
    const page = await browser.newPage();
    await page.goto(`${app.url}/console#/agents/${agentId}`);
    await shows(page, 'h1 .badge', 'active');
    // Stopped behind the page's back: the page still offers a graceful stop, and the API refuses it.
    await app.api('POST', `/agents/${agentId}/stop`, { graceful: false });
    await page.getByRole('button', { name: 'Stop gracefully' }).click();
    const refusal = (await app.api('POST', `/agents/${agentId}/stop`, { graceful: true })).body.error as string;
    await shows(page, '[role="alert"]', refusal);
    await page.close();
  });
});

describe('polling', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp();
  });
  afterAll(async () => {
    await app.close();
  });

  it('revalidates with ETags (304s), pauses while the tab is hidden and polls at once when it shows again', { timeout: 60_000 }, async () => {
    await createAgent(app.api, { name: 'watched' }, true);
    const page = await browser.newPage();
    const answers: { path: string; status: number }[] = [];
    page.on('response', (r) => {
      const { pathname } = new URL(r.url());
      if (pathname.startsWith('/agents')) answers.push({ path: pathname, status: r.status() });
    });
    // The page's timers run on Playwright's clock: the test moves it on instead of waiting.
    await page.clock.install();
    await page.goto(`${app.url}/console`);
    await expect.poll(() => answers.filter((a) => a.path === '/agents/counts').length, { timeout: 15_000 }).toBeGreaterThan(0);
    await page.clock.runFor(5_000); // the visible pace: the next poll revalidates
    await expect.poll(() => answers.filter((a) => a.path === '/agents/counts' && a.status === 304).length, { timeout: 15_000 }).toBeGreaterThan(0);
    await expect(page.locator('[data-count="active"]').textContent()).resolves.toBe('1');

    const setHidden = (hidden: boolean) =>
      page.evaluate(`Object.defineProperty(document, 'hidden', { configurable: true, get: () => ${hidden} }); document.dispatchEvent(new Event('visibilitychange'))`);
    await setHidden(true);
    await sleep(500); // a poll already on the wire lands
    const hiddenFrom = answers.length;
    await page.clock.runFor(7_000); // longer than the visible pace (5 s), shorter than the hidden one (30 s)
    await sleep(500); // a poll it would have sent would have landed by now
    expect(answers.slice(hiddenFrom)).toEqual([]);
    await setHidden(false);
    await expect.poll(() => answers.length, { timeout: 2_000 }).toBeGreaterThan(hiddenFrom);
    await page.close();
  });
});

describe('the fleet', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp();
  });
  afterAll(async () => {
    await app.close();
  });

  it('pages through 150 agents, then fleet-stops every active one and shows the counts reach 150 stopped', { timeout: 180_000 }, async () => {
    const ids: string[] = [];
    for (let i = 0; i < 150; i += 10) {
      ids.push(...(await Promise.all(Array.from({ length: 10 }, (_, j) => createAgent(app.api, { name: `fleet-${String(i + j).padStart(3, '0')}` }, true)))));
    }
    const page = await browser.newPage();
    await page.goto(`${app.url}/console`);
    await shows(page, '[data-count="active"]', /^150$/);
    // The first page is not the fleet: the page says so and loads the rest on request.
    await shows(page, '[data-list-summary]', '100 agents loaded. More agents are not loaded yet');
    await page.getByLabel('Name').fill('fleet-14');
    const firstPage = (await app.api('GET', '/agents?limit=100')).body.data as { name: string }[];
    const onFirstPage = firstPage.filter((a) => a.name.startsWith('fleet-14')).length;
    await shows(page, '[data-list-summary]', new RegExp(`^${onFirstPage} match(es)? among 100 loaded agents\\. More agents are not loaded yet`));
    await page.getByRole('button', { name: 'Load more' }).click();
    await shows(page, '[data-list-summary]', /^10 matches among 150 loaded agents\.$/);
    await page.getByLabel('Name').fill('');

    await page.getByLabel('every active agent').check();
    await page.getByRole('button', { name: 'Stop every active agent' }).click();
    await shows(page, '[data-fleet-status]', 'completed', 150_000);
    expect(await text(page, '[data-fleet-stopped]')).toBe('150');
    await expect(page.getByLabel('Fleet stop progress').textContent()).resolves.toContain('150 of 150 stopped');
    await shows(page, '[data-count="inactive"]', /^150$/);
    await shows(page, '[data-count="active"]', /^0$/);
    const statuses = await Promise.all(ids.map(async (id) => (await app.api('GET', `/agents/${id}`)).body.data.status));
    expect(new Set(statuses)).toEqual(new Set(['inactive']));
    await page.close();
  });
});

describe('escalating drains', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startTestApp();
  });
  afterAll(async () => {
    await app.close();
  });

  it('force-stops every stopping agent from the list filtered to stopping, after a confirmation', { timeout: 60_000 }, async () => {
    const ids = await Promise.all(['slow-1', 'slow-2'].map((name) => createAgent(app.api, { name, runtime: { type: 'echo', delayMs: 60_000 } }, true)));
    const messages = await Promise.all(ids.map((id) => sendAsync(app, id, 'long work')));
    for (const id of ids) expect((await app.api('POST', `/agents/${id}/stop`, { graceful: true, timeout: 120_000 }, { prefer: 'respond-async' })).status).toBe(202);
    const page = await browser.newPage();
    await page.goto(`${app.url}/console`);
    await shows(page, '[data-count="stopping"]', /^2$/);
    await page.getByLabel('Status', { exact: true }).selectOption('stopping');
    await page.getByLabel('every stopping agent').check();
    await page.getByLabel('force: interrupt what is in progress').check();
    await page.getByRole('button', { name: 'Stop every stopping agent' }).click();
    const confirm = page.getByRole('alertdialog', { name: 'Confirm force stop' });
    await expect(confirm.textContent()).resolves.toContain('Force-stop every stopping agent?');
    await confirm.getByRole('button', { name: 'Confirm force stop' }).click();
    await shows(page, '[data-fleet-status]', 'completed');
    await expect(page.getByLabel('Fleet stop progress').textContent()).resolves.toMatch(/2 of 2 stopped[\s\S]*forced 2/);
    await shows(page, '[data-count="inactive"]', /^2$/);
    for (const [i, id] of ids.entries()) {
      const stops = (await app.api('GET', `/agents/${id}/stops`)).body.data as { interruptedMessageIds: string[] }[];
      expect(stops[0]!.interruptedMessageIds).toEqual([messages[i]]);
    }
    await page.close();
  });
});

describe('with auth on', () => {
  let app: TestApp;
  let key: string;
  beforeAll(async () => {
    app = await startTestApp({ requireAuth: true });
    ({ key } = await app.keys!.create('console-test'));
  });
  afterAll(async () => {
    await app.close();
  });

  it('asks for a key, refuses a wrong one with the API\'s sentence, and keeps a good one for the tab only', { timeout: 30_000 }, async () => {
    const page = await browser.newPage();
    await page.goto(`${app.url}/console`);
    const field = page.getByLabel('API key', { exact: true });
    await field.waitFor();
    await field.fill('not-a-key');
    await page.getByRole('button', { name: 'Use this key' }).click();
    const refusal = (await app.api('GET', '/agents/counts', undefined, { authorization: 'Bearer not-a-key' })).body.error as string;
    expect(refusal).toBeTruthy();
    await shows(page, '[role="alert"]', refusal);
    expect(await page.locator('[data-count]').count()).toBe(0);

    await field.fill(key);
    await page.getByRole('button', { name: 'Use this key' }).click();
    await shows(page, '[data-count="total"]', /^\d+$/);
    expect(page.url()).not.toContain(key);
    expect(await page.evaluate('[sessionStorage.length, localStorage.length, document.cookie]')).toEqual([1, 0, '']);

    // A key revoked while the page is open brings the prompt back.
    await app.keys!.revoke((await app.keys!.list())[0]!.keyId);
    await field.waitFor({ timeout: 20_000 });
    await page.close();
  });
});
