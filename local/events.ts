import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { EVENT_SOURCE } from '../functions/adapters/aws.js';
import type { EventPublisher, LifecycleEvent } from '../functions/agents/ports.js';

/** A lifecycle event as an EventBridge rule's target receives it (the local subscribers get the same). */
export interface EventEnvelope {
  version: '0';
  id: string;
  'detail-type': LifecycleEvent['type'];
  source: typeof EVENT_SOURCE;
  time: string;
  detail: LifecycleEvent['detail'];
}

/** The local stand-in for the EventBridge bus: in-process listeners plus a log line per event. */
export class LocalEventBus implements EventPublisher {
  private readonly emitter = new EventEmitter();
  readonly published: LifecycleEvent[] = [];

  constructor(private readonly print: (line: string) => void = () => {}) {
    this.emitter.setMaxListeners(1000);
  }

  async publish(event: LifecycleEvent): Promise<void> {
    this.published.push(event);
    if (this.published.length > 1000) this.published.shift();
    this.print(`event ${event.type} ${JSON.stringify(event.detail)}`);
    this.emitter.emit(event.type, event);
    const envelope: EventEnvelope = { version: '0', id: randomUUID(), 'detail-type': event.type, source: EVENT_SOURCE, time: new Date().toISOString(), detail: event.detail };
    this.emitter.emit('*', envelope);
  }

  on(type: LifecycleEvent['type'], listener: (event: LifecycleEvent) => void): () => void {
    this.emitter.on(type, listener);
    return () => this.emitter.off(type, listener);
  }

  /** Every event, in the order published, as EventBridge delivers it to a rule's target. */
  subscribe(listener: (event: EventEnvelope) => void): () => void {
    this.emitter.on('*', listener);
    return () => this.emitter.off('*', listener);
  }
}
