import type { Deps, LifecycleEvent } from './ports.js';

/**
 * Lifecycle events are notifications: a failure to publish never undoes a committed transition.
 * Each carries a correlation id: its stop's for a stop's events (whoever commits it), else the
 * invocation's.
 */
export async function publish(d: Deps, event: LifecycleEvent): Promise<void> {
  measure(d, event);
  try {
    const correlationId = event.detail.correlationId ?? d.correlationId();
    await d.events.publish(correlationId ? { ...event, detail: { ...event.detail, correlationId } } : event);
  } catch (err) {
    d.metrics.add('EventPublishFailures', 1, 'Count');
    d.log.error('lifecycle event not published', { event: event.type, agentId: event.detail.agentId, error: err as Error });
  }
}

/** What each transition counts for (measured when it is announced: once, by whoever committed it). */
function measure(d: Deps, { type, detail }: LifecycleEvent): void {
  switch (type) {
    case 'Agent Stopped':
      d.metrics.add('StopsEnded', 1, 'Count', { outcome: detail.outcome ?? 'unknown' }, { reason: detail.reason ?? 'unknown' });
      return;
    case 'Message Completed':
    case 'Message Failed':
    case 'Message Interrupted':
      d.metrics.add('MessagesEnded', 1, 'Count', { outcome: type.slice('Message '.length).toLowerCase() });
      return;
    case 'Fleet Stop Completed': {
      d.metrics.add('FleetStopsEnded', 1, 'Count', { status: detail.status ?? 'unknown' });
      const { counts } = detail;
      if (counts) for (const state of ['drained', 'timed_out', 'forced', 'failed', 'skipped'] as const) d.metrics.add('FleetStopAgents', counts[state], 'Count', { state });
      return;
    }
    default:
      return;
  }
}

/** The event of a message that ended on its own (completed, or failed with its reason). */
export function endingEvent(agentId: string, messageId: string, ended: { status: 'completed' } | { status: 'failed'; error?: string }): LifecycleEvent {
  return ended.status === 'completed'
    ? { type: 'Message Completed', detail: { agentId, messageId } }
    : { type: 'Message Failed', detail: { agentId, messageId, ...(ended.error !== undefined && { error: ended.error }) } };
}
