/**
 * The console's one way to the API: openapi-fetch typed by the OpenAPI document's generated
 * `paths`, with a middleware that adds the tab's key and reads the server's clock from `Date`,
 * and the client package's revalidation (every GET sent with its ETag, a 304 answered from the
 * copy already held).
 */
import createClient, { type Middleware } from 'openapi-fetch';
import type { components, paths } from '../../clients/typescript/src/openapi.js';
import { revalidating } from '../../clients/typescript/src/revalidate.js';

type Schemas = components['schemas'];
export type Agent = Schemas['Agent'];
export type AgentStatus = Agent['status'];
export type Message = Schemas['Message'];
export type StopRecord = Schemas['StopRecord'];
export type FleetStop = Schemas['FleetStop'];

/** An answer that is not a success, with the sentence the API wrote. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code?: string,
  ) {
    super(message);
  }
}

const KEY_NAME = 'agents-console-key';
/** The API key lives in this tab's sessionStorage only: never in a URL, a cookie or a log. */
export const apiKey = {
  get: (): string | null => sessionStorage.getItem(KEY_NAME),
  set: (key: string) => sessionStorage.setItem(KEY_NAME, key),
  clear: () => sessionStorage.removeItem(KEY_NAME),
};

/** Fired when the API refuses the key (or wants one): the page returns to the key prompt. */
export const unauthorized = new EventTarget();

/** Server time minus this machine's, when they differ by more than `Date`'s one-second resolution. */
let clockOffsetMs = 0;
export const serverNow = (): number => Date.now() + clockOffsetMs;

const middleware: Middleware = {
  onRequest({ request }) {
    const key = apiKey.get();
    if (key) request.headers.set('Authorization', `Bearer ${key}`);
    return request;
  },
  onResponse({ response }) {
    const date = Date.parse(response.headers.get('Date') ?? '');
    if (Number.isFinite(date)) {
      const offset = date + 500 - Date.now();
      if (Math.abs(offset - clockOffsetMs) > 2_000) clockOffsetMs = Math.abs(offset) > 2_000 ? offset : 0;
    }
    if (response.status === 401) unauthorized.dispatchEvent(new Event('unauthorized'));
    return response;
  },
};

export const api = createClient<paths>({ baseUrl: location.origin });
api.use(middleware, revalidating());

/** The answer's data, or an ApiError with the API's own sentence. */
export async function call<T>(request: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  let answer: Awaited<typeof request>;
  try {
    answer = await request;
  } catch {
    throw new ApiError(0, 'The API could not be reached: check the connection and try again.');
  }
  const { data, error, response } = answer;
  if (response.ok && data !== undefined) return data;
  const body = error as { error?: string; code?: string } | undefined;
  throw new ApiError(response.status, body?.error ?? `The API answered ${response.status} ${response.statusText}`, body?.code);
}

export const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));
