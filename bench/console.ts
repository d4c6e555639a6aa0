/**
 * `npm run bench:console`: the operator console's size (what a first visit downloads, gzipped as
 * served), its first-load time from the local server in headless Chromium (a fresh browser
 * context per load, so nothing is cached; then a reload, which revalidates), and what one open
 * console costs: requests per minute, the share answered 304, and the DynamoDB read units they
 * spend (DynamoDB Local's ConsumedCapacity), on the fleet page, on an agent's page, on an agent's
 * page while it drains, and hidden. Each figure is printed next to its goal; a miss exits non-zero.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Browser, Page } from 'playwright-core';
import { buildConsole } from '../console/build.js';
import { launchChromium } from '../test/support/browser.js';
import { benchStack, goal, percentile } from './support.js';
import { meter } from './meter.js';

const LOADS = 10;
const WINDOW_MS = 15_000;
const HIDDEN_WINDOW_MS = 65_000;

const assets = await buildConsole();
const gz = (name: string) => Buffer.from(assets.files[name]!.gzip, 'base64').length;
const names = Object.keys(assets.files);
const script = names.find((n) => n.endsWith('.js'))!;
const styles = names.find((n) => n.endsWith('.css'))!;
console.log('The console, as a first visit downloads it');
console.log(`  page ${assets.files['index.html']!.body.length} B, script ${assets.files[script]!.body.length} B, stylesheet ${assets.files[styles]!.body.length} B (minified)`);
console.log(goal('  first visit, gzipped (page + script + stylesheet)', names.reduce((n, f) => n + gz(f), 0) / 1024, 40, 'KB'));

const stack = await benchStack();
const { app, api } = stack;
const units = meter(app.db);
const agents: string[] = [];
for (let i = 0; i < 20; i++) {
  const id = (await api('POST', '/agents', { name: `console-${i}`, runtime: { type: 'echo', delayMs: 60_000 } })).body.data.agentId as string;
  if (i < 10) await api('POST', `/agents/${id}/start`);
  agents.push(id);
}
const browser: Browser = await launchChromium();

/** From navigation to the console drawn (its script ran) and to the fleet's counts shown (the API answered). */
async function load(page: Page, url: string): Promise<{ drawn: number; data: number }> {
  const started = performance.now();
  await page.goto(url, { waitUntil: 'commit' });
  await page.locator('header .brand').waitFor({ timeout: 10_000 });
  const drawn = performance.now() - started;
  await page.locator('[data-count="total"]', { hasText: /^\d+$/ }).waitFor({ timeout: 10_000 });
  return { drawn, data: performance.now() - started };
}

console.log(`\nFirst load from ${app.url}/console (n=${LOADS}, a fresh browser context each, then a reload)`);
// One load first, not counted: it pays for Chromium's own first renderer, not for the console.
await (async () => {
  const context = await browser.newContext();
  await load(await context.newPage(), `${app.url}/console`);
  await context.close();
})();
const cold: { drawn: number; data: number }[] = [];
const warm: { drawn: number; data: number }[] = [];
for (let i = 0; i < LOADS; i++) {
  const context = await browser.newContext();
  const page = await context.newPage();
  cold.push(await load(page, `${app.url}/console`));
  warm.push(await load(page, `${app.url}/console?reload=${i}`));
  await context.close();
}
const p = (xs: { drawn: number; data: number }[], k: 'drawn' | 'data', q: number) => percentile(xs.map((x) => x[k]), q);
console.log(goal('  empty cache: drawn, p95', p(cold, 'drawn', 95), 500, 'ms'));
console.log(goal('  empty cache: counts shown, p50', p(cold, 'data', 50), 500, 'ms'));
console.log(goal('  empty cache: counts shown, p95', p(cold, 'data', 95), 1_000, 'ms'));
console.log(goal('  reload (script and stylesheet cached): drawn, p50', p(warm, 'drawn', 50), 250, 'ms'));

/** Read units the stack spends over `ms` with no console open (a drain's own polling and heartbeats). */
async function background(page: Page, ms: number): Promise<number> {
  await page.goto('about:blank');
  units.reset();
  await sleep(ms);
  return units.totals().rcu;
}

/**
 * Requests per minute one open page makes over `ms`, the share answered 304, and the read units
 * they cost (`baseline`: what the stack spends meanwhile without the page, subtracted).
 */
async function cost(label: string, page: Page, ms: number, perMinuteGoal: number, opts: { hide?: boolean; baseline?: () => Promise<number> } = {}): Promise<void> {
  const answers: number[] = [];
  const onResponse = (r: { url(): string; status(): number }) => {
    if (!new URL(r.url()).pathname.startsWith('/console')) answers.push(r.status());
  };
  await sleep(1_000);
  if (opts.hide) await page.evaluate(`Object.defineProperty(document, 'hidden', { configurable: true, get: () => true }); document.dispatchEvent(new Event('visibilitychange'))`);
  page.on('response', onResponse);
  units.reset();
  await sleep(ms);
  page.off('response', onResponse);
  let { rcu } = units.totals();
  if (opts.baseline) rcu -= await opts.baseline();
  const perMinute = (n: number) => (n * 60_000) / ms;
  const notModified = answers.filter((s) => s === 304).length;
  console.log(goal(`  ${label}: requests`, perMinute(answers.length), perMinuteGoal, '/min'));
  console.log(`  ${''.padEnd(label.length)}  ${((100 * notModified) / Math.max(1, answers.length)).toFixed(0)}% answered 304; ${perMinute(rcu).toFixed(1)} RCU/min`);
}

console.log('\nWhat one open console costs (RCU: the reads its requests make, as DynamoDB bills them)');
const page = await (await browser.newContext()).newPage();
await page.goto(`${app.url}/console`);
await cost('fleet page (20 agents, one list page)', page, WINDOW_MS, 30);
const busy = agents[0]!;
await page.goto(`${app.url}/console#/agents/${busy}`);
await cost("an agent's page", page, WINDOW_MS, 45);
await api('POST', `/agents/${busy}/messages`, { text: 'long' }, { prefer: 'respond-async' });
await api('POST', `/agents/${busy}/stop`, { graceful: true, timeout: 120_000 }, { prefer: 'respond-async' });
await page.locator('[data-countdown]').waitFor();
await cost("an agent's page while it drains", page, WINDOW_MS, 110, { baseline: () => background(page, WINDOW_MS) });
await api('POST', `/agents/${busy}/stop`, { graceful: false });
await page.goto(`${app.url}/console`);
await cost('fleet page, tab hidden', page, HIDDEN_WINDOW_MS, 5, { hide: true });

await browser.close();
await stack.close();
