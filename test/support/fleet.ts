import { mapBounded } from '../../functions/agents/selection.js';
import { eventually, type Api } from './api.js';
import { createAgent } from './stack.js';

/** Create `n` agents (started unless told), 10 requests at a time. */
export async function createFleet(api: Api, n: number, body: Record<string, unknown> = {}, start = true): Promise<string[]> {
  const ids: string[] = [];
  await mapBounded([...Array(n).keys()], 10, async () => {
    ids.push(await createAgent(api, { idleTimeoutMs: null, ...body }, start));
  });
  return ids;
}

/** Follow a fleet stop until it is done (the README's loop); its final view. */
export async function untilDone(api: Api, operationId: string, timeoutMs = 60_000) {
  return eventually(
    async () => {
      const res = await api('GET', `/fleet-stops/${operationId}`);
      if (res.status !== 200) throw new Error(`GET operation: ${res.text}`);
      return res.body.data.done && res.body.data;
    },
    timeoutMs,
    100,
  );
}

/** Every agent of a status, following nextCursor until it is null (as a client must). */
export async function listAll(api: Api, status: string): Promise<{ agentId: string }[]> {
  const all: { agentId: string }[] = [];
  let cursor: string | null = null;
  do {
    const res = await api('GET', `/agents?status=${status}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    if (res.status !== 200 || !('nextCursor' in res.body)) throw new Error(`GET /agents: ${res.text}`);
    all.push(...res.body.data);
    cursor = res.body.nextCursor;
  } while (cursor);
  return all;
}
