import { ConfigError } from '../functions/agents/config.js';
import { SIGNATURE_HEADER, signRequest } from '../functions/adapters/runtimes/http.js';
import type { EventEnvelope, LocalEventBus } from './events.js';

const RETRY_DELAYS_MS = [250, 1000, 4000];
const TIMEOUT_MS = 5000;

export interface EventsWebhook {
  /** Wait until every event published so far was delivered or given up on. */
  idle(): Promise<void>;
  close(): void;
}

/**
 * Lifecycle events to a local subscriber: each POSTed as its EventBridge envelope, one at a time
 * in the order published, signed as the http runtime's calls are (`Agent-Signature` over method,
 * path, timestamp, `Idempotency-Key` = the event's id, and body, with EVENTS_WEBHOOK_SECRET), so
 * the subscriber can tell them from forgeries and drop repeats. A subscriber that fails or does not
 * answer is tried again three times (0.25 s, 1 s, 4 s), then the event is logged as not delivered.
 */
export function startEventsWebhook(bus: LocalEventBus, url: string, secret: string | undefined, log: (line: string) => void): EventsWebhook {
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    throw new ConfigError(`EVENTS_WEBHOOK_URL must be a URL, got ${JSON.stringify(url)}`);
  }
  if (target.protocol !== 'http:' && target.protocol !== 'https:') throw new ConfigError(`EVENTS_WEBHOOK_URL must be http(s), got ${target.protocol}`);
  if (!secret || secret.length < 16) {
    throw new ConfigError('EVENTS_WEBHOOK_SECRET must be set (16 characters or more) with EVENTS_WEBHOOK_URL: the events are signed with it');
  }
  const path = `${target.pathname}${target.search}`;
  let chain = Promise.resolve();
  let closed = false;
  const deliver = async (event: EventEnvelope) => {
    const body = JSON.stringify(event);
    for (let attempt = 0; !closed; attempt++) {
      const signature = signRequest(secret, { method: 'POST', path, idempotencyKey: event.id, body });
      const outcome = await fetch(target, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'Idempotency-Key': event.id, [SIGNATURE_HEADER]: signature },
        body,
        signal: AbortSignal.timeout(TIMEOUT_MS),
      }).then(
        async (res) => {
          await res.body?.cancel();
          return res.ok ? 'ok' : `answered ${res.status}`;
        },
        (err: Error) => err.message,
      );
      if (outcome === 'ok') return;
      const wait = RETRY_DELAYS_MS[attempt];
      if (wait === undefined) {
        log(`event ${event['detail-type']} ${event.id} not delivered to the webhook: ${outcome}`);
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, wait).unref());
    }
  };
  const unsubscribe = bus.subscribe((event) => {
    chain = chain.then(() => deliver(event));
  });
  return {
    idle: () => chain,
    close: () => {
      closed = true;
      unsubscribe();
    },
  };
}
