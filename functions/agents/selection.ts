import type { Deps, Key } from './ports.js';
import type { AgentStatus } from './model.js';

/**
 * Every agent in a status, a page of ids at a time, through the byStatus index (status, dueAt):
 * the reaper (due ones only) and the local resume of stops. (A fleet stop reads the same index one
 * page per step, its cursor saved between steps.)
 */
export async function* agentPages(
  d: Deps,
  status: AgentStatus,
  opts: { pageSize?: number; dueBy?: number } = {},
): AsyncGenerator<{ agents: { agentId: string; dueAt: number }[] }> {
  let startKey: Key | undefined;
  do {
    const page = await d.agents.queryByStatus(status, { limit: opts.pageSize ?? 100, startKey, dueBy: opts.dueBy });
    yield { agents: page.items };
    startKey = page.lastKey;
  } while (startKey);
}

/** Run `fn` over `items`, at most `limit` at once (the reaper's and a fleet stop's bounded concurrency). */
export async function mapBounded<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]!);
  });
  await Promise.all(workers);
}
