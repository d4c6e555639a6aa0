import { startOwnStack, type AppOptions } from '../test/support/local-stack.js';

/** DynamoDB Local in memory plus the whole local stack, for a benchmark run. */
export const benchStack = (opts: AppOptions = {}) =>
  startOwnStack({ ...opts, config: { maxInFlight: 98, stopWaitWindowMs: 25_000, stopPollMs: 100, ...opts.config } });

export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

export const fmt = (ms: number) => `${ms.toFixed(1)} ms`;

export function summary(label: string, values: number[]): string {
  return `${label.padEnd(48)} n=${String(values.length).padStart(3)}  p50 ${fmt(percentile(values, 50)).padStart(10)}  p95 ${fmt(percentile(values, 95)).padStart(10)}`;
}
