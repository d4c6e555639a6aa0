import { DomainError, type ErrorCode } from '../agents/errors.js';

/** Errors only HTTP has: routing, body framing, authentication. */
export type HttpErrorCode =
  | 'ROUTE_NOT_FOUND'
  | 'METHOD_NOT_ALLOWED'
  | 'PAYLOAD_TOO_LARGE'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'UNAUTHORIZED'
  | 'BAD_REQUEST'
  | 'REQUEST_TIMEOUT'
  | 'URI_TOO_LONG'
  | 'HEADERS_TOO_LARGE';

export class HttpError extends Error {
  constructor(
    readonly code: HttpErrorCode,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export const unauthorized = () =>
  new HttpError('UNAUTHORIZED', 'A valid API key is required: send it as "Authorization: Bearer <key>"', { 'WWW-Authenticate': 'Bearer' });
export const keyWithAuthOff = () =>
  new HttpError(
    'UNAUTHORIZED',
    'This server has no API keys yet (auth is off until the first key is created), so the Authorization header cannot be checked: send the request without it, or create a key with `npm run keys -- create --name <name>`',
    { 'WWW-Authenticate': 'Bearer' },
  );
export const routeNotFound = (method: string, path: string) => new HttpError('ROUTE_NOT_FOUND', `No route for ${method} ${path}; see the README for the API`);
export const methodNotAllowed = (method: string, path: string, allowed: string[]) =>
  new HttpError('METHOD_NOT_ALLOWED', `${method} is not allowed on ${path}; use ${allowed.join(', ')}`, { Allow: allowed.join(', ') });
export const payloadTooLarge = (limit: number) => new HttpError('PAYLOAD_TOO_LARGE', `Request body is too large: the limit is ${limit} bytes`);
export const unsupportedMediaType = (contentType: string) =>
  new HttpError('UNSUPPORTED_MEDIA_TYPE', `Content-Type ${JSON.stringify(contentType)} is not supported: send the body as application/json`);

/** The one code-to-status table of the API, for domain and HTTP errors alike. */
export const STATUS_BY_CODE: Record<ErrorCode | HttpErrorCode, number> = {
  VALIDATION_ERROR: 400,
  BAD_REQUEST: 400,
  ASYNC_REQUIRED: 400,
  UNAUTHORIZED: 401,
  AGENT_NOT_FOUND: 404,
  OPERATION_NOT_FOUND: 404,
  MESSAGE_NOT_FOUND: 404,
  ROUTE_NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  STOP_TIMED_OUT: 408,
  REQUEST_TIMEOUT: 408,
  AGENT_NOT_RUNNING: 409,
  AGENT_STOPPING: 409,
  AGENT_ALREADY_RUNNING: 409,
  AGENT_EXISTS: 409,
  AGENT_NOT_INACTIVE: 409,
  RUNTIME_NOT_ALLOWED: 409,
  MESSAGE_IN_PROGRESS: 409,
  MESSAGE_INTERRUPTED: 409,
  MESSAGE_FAILED: 409,
  VERSION_MISMATCH: 412,
  PAYLOAD_TOO_LARGE: 413,
  URI_TOO_LONG: 414,
  IDEMPOTENCY_KEY_REUSED: 422,
  UNSUPPORTED_MEDIA_TYPE: 415,
  TOO_MANY_IN_FLIGHT: 429,
  HEADERS_TOO_LARGE: 431,
  AGENT_BUSY: 429,
  STOP_FAILED: 500,
  RUNTIME_FAILED: 502,
  UNAVAILABLE: 503,
};

/**
 * What the HTTP parser refuses before any route runs (Node's own codes), in the envelope: headers
 * over the server's limit, a request line too long, a request that never finished, bytes that are
 * not HTTP.
 */
export function parserRefusal(code: string | undefined, maxHeaderBytes: number): HttpError {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return new HttpError('HEADERS_TOO_LARGE', `Request headers are too large: the request line and headers together may be at most ${maxHeaderBytes} bytes`);
    case 'HPE_URI_TOO_LONG':
      return new HttpError('URI_TOO_LONG', 'Request target is too long; send large input in the body');
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new HttpError('REQUEST_TIMEOUT', 'The request was not received in time; send it again');
    default:
      return new HttpError('BAD_REQUEST', 'Request is not valid HTTP/1.1 and was not read; check its request line and headers');
  }
}

/** Status and headers of an expected error (domain or HTTP); undefined for anything else. */
export function describeError(err: unknown): { status: number; code: string; headers: Record<string, string>; data?: unknown } | undefined {
  if (err instanceof HttpError) return { status: STATUS_BY_CODE[err.code], code: err.code, headers: err.headers };
  if (err instanceof DomainError) {
    return {
      status: STATUS_BY_CODE[err.code],
      code: err.code,
      headers: err.retryAfterSeconds !== undefined ? { 'Retry-After': String(err.retryAfterSeconds) } : {},
      data: err.data,
    };
  }
  return undefined;
}
