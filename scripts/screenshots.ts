/**
 * `npm run screenshots`: the console's fleet and agent pages, as the README shows them, taken in
 * headless Chromium over a fresh local stack (DynamoDB Local in memory): a small fleet, one agent
 * draining a message, one force-stopped before. Writes docs/images/console-*.png.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { buildConsole } from '../console/build.js';
import { startOwnStack } from '../test/support/local-stack.js';
import { launchChromium } from '../test/support/browser.js';

const out = 'docs/images';
// The console as its sources are now: the stack below serves what this writes.
await buildConsole();
const stack = await startOwnStack();
const { api, app } = stack;
const agent = async (name: string, runtime: Record<string, unknown>, start: boolean) => {
  const id = (await api('POST', '/agents', { name, runtime, settings: { team: 'support', tier: 'gold' } })).body.data.agentId as string;
  if (start) await api('POST', `/agents/${id}/start`);
  return id;
};
const slow = { type: 'echo', delayMs: 120_000 };
const names = ['billing-assistant', 'claims-triage', 'docs-answerer', 'onboarding-guide', 'refund-checker', 'returns-desk', 'search-concierge', 'shipping-tracker'];
for (const [i, name] of names.entries()) await agent(name, { type: 'echo', delayMs: 50 }, i < 6);
const forced = await agent('invoice-reader', slow, true);
await api('POST', `/agents/${forced}/messages`, { text: 'Summarize invoice INV-2207' }, { prefer: 'respond-async' });
await sleep(300);
await api('POST', `/agents/${forced}/stop`, { graceful: false });
const draining = await agent('support-triage', { type: 'echo', delayMs: 8_000 }, true);
for (const text of ['Where is order 1182?', 'Reset my password']) await api('POST', `/agents/${draining}/messages`, { text });
for (const text of ['Refund for order 1190', 'Change my delivery address']) {
  await api('POST', `/agents/${draining}/messages`, { text }, { prefer: 'respond-async' });
}
await sleep(300);
await api('POST', `/agents/${draining}/stop`, { graceful: true, timeout: 60_000 }, { prefer: 'respond-async' });

const browser = await launchChromium();
const shoot = async (file: string, path: string, viewport: { width: number; height: number }, ready: string) => {
  const page = await browser.newPage({ viewport });
  await page.goto(`${app.url}${path}`);
  await page.locator(ready).first().waitFor();
  await sleep(500);
  await page.screenshot({ path: `${out}/${file}`, fullPage: viewport.width < 800 ? false : true });
  await page.close();
  process.stdout.write(`${out}/${file}\n`);
};
await shoot('console-fleet.png', '/console', { width: 1280, height: 800 }, 'tr[data-agent]');
await shoot('console-agent.png', `/console#/agents/${draining}`, { width: 1280, height: 800 }, '[data-countdown]');
await shoot('console-phone.png', `/console#/agents/${draining}`, { width: 390, height: 844 }, '[data-countdown]');
await browser.close();
await api('POST', `/agents/${draining}/stop`, { graceful: false });
await stack.close();
