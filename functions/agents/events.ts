import type { Deps, LifecycleEvent } from './ports.js';

/**
 * Lifecycle events are notifications: a failure to publish never undoes a committed transition.
 * Each carries a correlation id: its stop's for a stop's events (whoever commits it), else the
 * invocation's.
 */
export async function publish(d: Deps, event: LifecycleEvent): Promise<void> {
  try {
    const correlationId = event.detail.correlationId ?? d.correlationId();
    await d.events.publish(correlationId ? { ...event, detail: { ...event.detail, correlationId } } : event);
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
