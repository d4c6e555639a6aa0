import type { Middleware } from 'openapi-fetch';

export interface RevalidateOptions {
  /** The most answer bytes kept, all URLs together (default 4 MiB); the least recently used go first. */
  maxBytes?: number;
}

/**
 * An openapi-fetch middleware for pollers: each GET is sent with the ETag of the last answer to
 * the same URL (`If-None-Match`), and a 304 is handed on as that answer, a 200 with the same body,
 * so callers never see the difference. Plain JavaScript: the CLI and the console both use it.
 */
export function revalidating(opts: RevalidateOptions = {}): Middleware {
  const maxBytes = opts.maxBytes ?? 4 * 1024 * 1024;
  const held = new Map<string, { etag: string; body: string }>();
  let bytes = 0;
  const forget = (url: string) => {
    const copy = held.get(url);
    if (copy) bytes -= copy.body.length;
    held.delete(url);
  };
  return {
    onRequest({ request }) {
      const copy = request.method === 'GET' ? held.get(request.url) : undefined;
      if (copy) request.headers.set('If-None-Match', copy.etag);
      return request;
    },
    async onResponse({ request, response }) {
      if (request.method !== 'GET') return response;
      const copy = held.get(request.url);
      if (response.status === 304 && copy) {
        // Most recently used last.
        held.delete(request.url);
        held.set(request.url, copy);
        return new Response(copy.body, { status: 200, headers: response.headers });
      }
      const etag = response.headers.get('ETag');
      if (response.status !== 200 || !etag) return response;
      const body = await response.clone().text();
      forget(request.url);
      // An answer bigger than a quarter of the budget is not worth evicting the others for.
      if (body.length > maxBytes / 4) return response;
      held.set(request.url, { etag, body });
      bytes += body.length;
      while (bytes > maxBytes) forget(held.keys().next().value!);
      return response;
    },
  };
}
