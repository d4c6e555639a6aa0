import type { Deps, LifecycleEvent } from './ports.js';

/** Lifecycle events are notifications: a failure to publish never undoes a committed transition. */
export async function publish(d: Deps, event: LifecycleEvent): Promise<void> {
  try {
    await d.events.publish(event);
  } catch (err) {
    d.metrics.eventPublishFailures++;
    d.log.error('lifecycle event not published', { event: event.type, agentId: event.detail.agentId, error: err as Error });
  }
}

/** The event of a message that ended on its own (completed, or failed with its reason). */
export function endingEvent(agentId: string, messageId: string, ended: { status: 'completed' } | { status: 'failed'; error?: string }): LifecycleEvent {
  return ended.status === 'completed'
    ? { type: 'Message Completed', detail: { agentId, messageId } }
    : { type: 'Message Failed', detail: { agentId, messageId, ...(ended.error !== undefined && { error: ended.error }) } };
}
