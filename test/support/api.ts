import { contractViolation } from './contract.js';
import { randomUUID } from 'node:crypto';
import type { Config } from '../../functions/agents/config.js';

/** A small JSON client for the API and per-run configuration: shared by the tests and bench/. */
export interface ApiResponse<T = any> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

export type Api = (method: string, path: string, body?: unknown, headers?: Record<string, string>) => Promise<ApiResponse>;

export const testConfig = (overrides: Partial<Config> = {}): Config & { agentsTable: string; recordsTable: string } => {
  const suffix = randomUUID().slice(0, 8);
  return {
    agentsTable: `agents-${suffix}`,
    recordsTable: `records-${suffix}`,
    heartbeatMs: Math.floor((overrides.leaseTtlMs ?? 60_000) / 4),
    leaseTtlMs: 60_000,
    // One clock in most tests: a tolerance well inside the lease (the clock tier sets its own).
    clockToleranceMs: Math.floor((overrides.leaseTtlMs ?? 60_000) / 4),
    maxInFlight: 50,
    stopWaitWindowMs: 10_000,
    stopPollMs: 20,
    recordRetentionDays: 30,
    closeGraceMs: 2_000,
    stuckStopGraceMs: 300_000,
    stopRecoveryMs: 30_000,
    workerWrapUpMs: 10_000,
    runtimeUrls: 'any',
    runtimeAllowHttp: true,
    ...overrides,
  };
};

export function apiClient(base: string): Api {
  return async (method, path, body, headers = {}) => {
    const init: RequestInit = { method, headers: { ...headers } };
    if (body !== undefined) {
      init.body = typeof body === 'string' ? body : JSON.stringify(body);
      (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
    }
    const res = await fetch(`${base}${path}`, init);
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    const violation = contractViolation(method, path, res.status, res.headers.get('content-type'), parsed);
    if (violation) throw new Error(`The answer breaks docs/openapi.json: ${violation}`);
    return { status: res.status, headers: res.headers, body: parsed, text };
  };
}


export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Poll until `check` returns a value (or throw after `timeoutMs`). */
export async function eventually<T>(check: () => Promise<T | undefined | false>, timeoutMs = 10_000, everyMs = 25): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > until) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(everyMs);
  }
}
