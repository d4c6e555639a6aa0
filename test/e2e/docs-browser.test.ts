import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { freePort } from '../../local/dynamodb.js';
import { launchChromium } from '../support/browser.js';

/**
 * `npm start`, then the reference page in a real headless Chromium (Debian's `chromium`, driven
 * by playwright-core): the stop operation renders with its body fields. A screenshot goes to
 * .artifacts/ (git-ignored).
 */
const dataDir = mkdtempSync(join(tmpdir(), 'agents-docs-'));
let server: ChildProcess;
let browser: Browser;
let base: string;

beforeAll(async () => {
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  server = spawn('npm', ['start', '--silent'], {
    env: { ...process.env, PORT: String(port), AGENTS_DATA_DIR: dataDir, AGENTS_REAPER_INTERVAL_MS: '0' },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  await new Promise<void>((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => reject(new Error(`npm start did not come up: ${output}`)), 45_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes('agents API on')) {
        clearTimeout(timer);
        resolve();
      }
    };
    server.stdout!.on('data', onData);
    server.stderr!.on('data', onData);
    server.once('exit', (code) => reject(new Error(`npm start exited with ${code}: ${output}`)));
  });
  browser = await launchChromium();
}, 90_000);

afterAll(async () => {
  await browser?.close();
  if (server?.pid) {
    process.kill(-server.pid, 'SIGINT');
    await new Promise((resolve) => server.once('exit', resolve));
  }
  rmSync(dataDir, { recursive: true, force: true });
});

it('renders the stop operation with its body fields at /docs', { timeout: 60_000 }, async () => {
  const page = await browser.newPage();
  await page.goto(`${base}/docs`);
  const operation = page.locator('#operations-Stopping-stopAgent');
  await operation.waitFor({ timeout: 20_000 });
  await expect(operation.textContent()).resolves.toContain('/agents/{agentId}/stop');
  await operation.locator('.opblock-summary').first().click();
  const body = operation.locator('.opblock-section-request-body');
  await body.waitFor();
  await body.getByText('Schema', { exact: true }).click();
  await expect(body.textContent()).resolves.toMatch(/graceful[\s\S]*timeout/);
  const responses = await operation.locator('.responses-table').first().textContent();
  for (const status of ['200', '202', '408', '409', '500']) expect(responses).toContain(status);
  mkdirSync('.artifacts', { recursive: true });
  await page.screenshot({ path: '.artifacts/docs-stop-operation.png', fullPage: true });
});

it('leads from / to the console, which shows the fleet', { timeout: 60_000 }, async () => {
  const page = await browser.newPage();
  await page.goto(`${base}/`);
  expect(new URL(page.url()).pathname).toBe('/console');
  await page.locator('[data-count="total"]', { hasText: /^\d+$/ }).waitFor({ timeout: 20_000 });
});
