/** Reading messages and stops (reads never write). */
import type { Deps } from './ports.js';
import { AgentNotFound, MessageNotFound } from './errors.js';
import { cursorShapes, decodeCursor, encodeCursor } from './cursor.js';
import type { MessageRecord } from './model.js';
import { asRead } from './admission.js';

export async function getMessage(d: Deps, agentId: string, messageId: string): Promise<MessageRecord> {
  const readAt = d.now();
  const [agent, message] = await Promise.all([d.agents.get(agentId), d.records.getMessage(agentId, messageId)]);
  if (!agent) throw new AgentNotFound();
  if (!message) throw new MessageNotFound();
  return asRead(d, agent, message, readAt);
}

export async function listMessages(d: Deps, agentId: string, q: { limit: number; cursor?: string }) {
  const startKey = decodeCursor(q.cursor, cursorShapes.messages(agentId));
  const readAt = d.now();
  const agent = await d.agents.get(agentId);
  if (!agent) throw new AgentNotFound();
  const page = await d.records.listMessages(agentId, q.limit, startKey);
  const items = page.items.map((m) => asRead(d, agent, m, readAt));
  return { items, nextCursor: encodeCursor(page.lastKey) };
}

export async function listStops(d: Deps, agentId: string, q: { limit: number; cursor?: string }) {
  const startKey = decodeCursor(q.cursor, cursorShapes.stops(agentId));
  if (!(await d.agents.get(agentId))) throw new AgentNotFound();
  const page = await d.records.listStops(agentId, q.limit, startKey);
  return { items: page.items, nextCursor: encodeCursor(page.lastKey) };
}
