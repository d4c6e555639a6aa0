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
