import type { IncomingMessage, ServerResponse } from 'node:http';
import { ValidationError } from '../functions/agents/errors.js';
import { uuidSchema } from '../functions/agents/model.js';
import { errorResponse } from '../functions/http/middleware.js';
import type { LocalEventBus } from './events.js';
import type { LocalMetrics } from './metrics.js';

/** A comment line this often keeps proxies and clients from closing a quiet stream. */
const KEEP_ALIVE_MS = 15_000;

export interface LocalEndpoints {
  /** Answers the request if it is one of the local-only endpoints. */
  serve(req: IncomingMessage, res: ServerResponse): boolean;
  /** End every open event stream (the server is closing). */
  close(): void;
}

/**
 * What only the local server has (deployed, CloudWatch and EventBridge take their place):
 * - `GET /metrics`: the functions' metrics in Prometheus' text format;
 * - `GET /events?agentId=`: the lifecycle events as server-sent events (`event:` the type,
 *   `data:` the EventBridge envelope), of one agent or of all, from the moment of connecting.
 * Both need an API key once keys are on, as every route does; an open event stream checks its
 * key again before each event and at each keep-alive, and ends (an `error` event saying why) once
 * the key is revoked or no longer valid.
 */
export function localEndpoints(opts: { metrics: LocalMetrics; bus: LocalEventBus; authenticate: (authorization: string | undefined) => Promise<unknown> }): LocalEndpoints {
  const streams = new Set<ServerResponse>();
  const refuse = (res: ServerResponse, err: unknown) => {
    const result = errorResponse(err);
    res.writeHead(result.statusCode ?? 500, result.headers as Record<string, string>);
    res.end(result.body);
  };

  const events = (req: IncomingMessage, res: ServerResponse, query: URLSearchParams) => {
    const given = query.get('agentId');
    const agentId = given === null ? undefined : uuidSchema.safeParse(given);
    if (agentId && !agentId.success) throw new ValidationError(`Query parameter "agentId" must be a UUID, got ${JSON.stringify(given!.slice(0, 64))}`);
    res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-store', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
    res.write(': lifecycle events\n\n');
    // One check at a time, in the order of the events: an event is written only once the key that
    // opened the stream still holds.
    let checked: Promise<unknown> = Promise.resolve();
    const whileAuthorized = (write: () => void) => {
      checked = checked.then(() => opts.authenticate(req.headers.authorization)).then(
        () => res.writableEnded || write(),
        (err: unknown) => {
          if (res.writableEnded) return;
          const { body } = errorResponse(err);
          res.end(`event: error\ndata: ${body}\n\n`);
        },
      );
    };
    const unsubscribe = opts.bus.subscribe((event) => {
      if (agentId && event.detail.agentId !== agentId.data) return;
      whileAuthorized(() => res.write(`id: ${event.id}\nevent: ${event['detail-type']}\ndata: ${JSON.stringify(event)}\n\n`));
    });
    const keepAlive = setInterval(() => whileAuthorized(() => res.write(': keep-alive\n\n')), KEEP_ALIVE_MS).unref();
    streams.add(res);
    const end = () => {
      clearInterval(keepAlive);
      unsubscribe();
      streams.delete(res);
    };
    req.on('close', end);
    res.on('close', end);
  };

  return {
    serve(req, res) {
      // The request target as sent (a target such as `//x` is a path here, not a URL).
      const target = req.url ?? '/';
      const q = target.indexOf('?');
      const url = { pathname: q < 0 ? target : target.slice(0, q), searchParams: new URLSearchParams(q < 0 ? '' : target.slice(q + 1)) };
      if (req.method !== 'GET' || (url.pathname !== '/metrics' && url.pathname !== '/events')) return false;
      void opts.authenticate(req.headers.authorization).then(
        () => {
          try {
            if (url.pathname === '/events') return events(req, res, url.searchParams);
            res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8', 'Cache-Control': 'no-store' });
            res.end(opts.metrics.prometheus());
          } catch (err) {
            refuse(res, err);
          }
        },
        (err: unknown) => refuse(res, err),
      );
      return true;
    },
    close() {
      for (const res of streams) res.end();
    },
  };
}
