import { EventEmitter } from 'node:events';
import type { EventPublisher, LifecycleEvent } from '../functions/agents/ports.js';

/** The local stand-in for the EventBridge bus: in-process listeners plus a log line per event. */
export class LocalEventBus implements EventPublisher {
  private readonly emitter = new EventEmitter();
  readonly published: LifecycleEvent[] = [];

  constructor(private readonly print: (line: string) => void = () => {}) {
    this.emitter.setMaxListeners(100);
  }

  async publish(event: LifecycleEvent): Promise<void> {
    this.published.push(event);
    if (this.published.length > 1000) this.published.shift();
    this.print(`event ${event.type} ${JSON.stringify(event.detail)}`);
    this.emitter.emit(event.type, event);
  }

  on(type: LifecycleEvent['type'], listener: (event: LifecycleEvent) => void): () => void {
    this.emitter.on(type, listener);
    return () => this.emitter.off(type, listener);
  }
}
