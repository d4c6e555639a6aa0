import middy, { type MiddlewareObj } from '@middy/core';
import httpJsonBodyParser from '@middy/http-json-body-parser';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { noneMatch, representationTag } from './etag.js';
import type * as z from 'zod/mini';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logger } from '../adapters/logger.js';
import { correlation, correlationIdOf, currentCorrelationId } from '../adapters/observability.js';
import { traceInvocation, traced } from '../adapters/tracing.js';
import { authenticator } from '../auth/authenticate.js';
import { ValidationError } from '../agents/errors.js';
import { describeError, methodNotAllowed, payloadTooLarge, unsupportedMediaType } from './errors.js';
import { allowedAt } from './routes.js';
import { messageIdSchema, UUID_PROBLEM, uuidSchema } from '../agents/model.js';
import { operationIdSchema } from '../agents/fleet-model.js';
import { describeIssue } from './validation.js';
import { unstorable } from '../agents/storable.js';

/** Request bodies above this are refused with 413 (the largest valid body is well under it). */
export const MAX_BODY_BYTES = 128 * 1024;

export type Event = APIGatewayProxyEventV2;
export type Result = APIGatewayProxyStructuredResultV2;

export interface Reply {
  statusCode?: number;
  headers?: Record<string, string>;
  body: Record<string, unknown>;
}

const JSON_HEADERS = { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store' };

export const ok = (data: unknown, extra: { statusCode?: number; message?: string; headers?: Record<string, string>; nextCursor?: string | null } = {}): Reply => ({
  statusCode: extra.statusCode ?? 200,
  headers: extra.headers,
  body: {
    success: true,
    ...(extra.message !== undefined && { message: extra.message }),
    data,
    ...(extra.nextCursor !== undefined && { nextCursor: extra.nextCursor }),
  },
});

/**
 * The one error mapping of the API, used by every handler and by the local server (its auth check
 * and body reading run before a handler): domain and HTTP errors keep their sentence and get the
 * status of their code (STATUS_BY_CODE, the one table); a store that is down, slow or failing is
 * 503 with Retry-After; anything else (a bug) is logged with its stack and answered 500 with a
 * generic sentence.
 */
export function errorResponse(err: unknown, routeKey?: string): Result {
  const known = describeError(err);
  if (known) {
    const { data } = known;
    return {
      statusCode: known.status,
      headers: { ...JSON_HEADERS, ...known.headers },
      body: JSON.stringify({ success: false, error: (err as Error).message, code: known.code, ...(data !== undefined && { data }) }),
    };
  }
  if (isTransient(err)) {
    logger.warn('dependency unavailable', { error: err as Error, routeKey });
    return {
      statusCode: 503,
      headers: { ...JSON_HEADERS, 'Retry-After': '1' },
      body: JSON.stringify({ success: false, error: 'Service temporarily unavailable: the database did not answer in time; retry in a moment', code: 'UNAVAILABLE' }),
    };
  }
  logger.error('unhandled error', { error: err as Error, routeKey });
  return {
    statusCode: 500,
    headers: JSON_HEADERS,
    body: JSON.stringify({ success: false, error: 'Internal error; the request may be retried', code: 'INTERNAL' }),
  };
}

const errorEnvelope = (): MiddlewareObj<Event, Result> => ({
  onError: (request) => {
    request.response = errorResponse(request.error, request.event.routeKey);
  },
});

/** DynamoDB's own server-side failures and throttling (after the SDK's retries). */
const TRANSIENT_NAMES = new Set([
  'TimeoutError',
  'ThrottlingException',
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
  'InternalServerError',
  'InternalFailure',
  'ServiceUnavailable',
  'ServiceUnavailableException',
  'RequestTimeout',
  'RequestTimeoutException',
  'TransactionConflict',
]);
/** The store cannot be reached, or hung up. */
const TRANSIENT_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

/** A dependency that is down, slow or throttling (after the SDK's own retries): 503, retry later. */
export function isTransient(err: unknown): boolean {
  const e = err as { name?: string; code?: string; cause?: { code?: string }; $fault?: string; $metadata?: { httpStatusCode?: number } } | undefined;
  if (!e) return false;
  if (TRANSIENT_NAMES.has(e.name ?? '') || TRANSIENT_CODES.has(e.code ?? '') || TRANSIENT_CODES.has(e.cause?.code ?? '')) return true;
  // Any other 5xx the store answers with is its fault, not the request's.
  return e.$fault === 'server' && (e.$metadata?.httpStatusCode ?? 0) >= 500;
}

/**
 * The request's correlation id (a client's `X-Request-Id`, else API Gateway's request id) on every
 * log line, in the stop workflow, the worker's job and the events, and echoed in `X-Request-Id`.
 */
const requestId = (): MiddlewareObj<Event, Result> => {
  const set = correlation<Event, Result>((event) => correlationIdOf(event.headers?.['x-request-id']) ?? event.requestContext?.requestId);
  const started = new WeakMap<Event, number>();
  const echo = (request: { event: Event; response: Result | null | undefined }) => {
    const id = currentCorrelationId();
    if (request.response && id) request.response.headers = { ...request.response.headers, 'X-Request-Id': id };
    // API Gateway's access log has every request; this line (DEBUG) ties it to the function's.
    logger.debug('request handled', { routeKey: request.event.routeKey, status: request.response?.statusCode, durationMs: Math.round(performance.now() - (started.get(request.event) ?? 0)) });
  };
  return {
    before: (request) => {
      started.set(request.event, performance.now());
      return set.before!(request);
    },
    after: echo,
    onError: echo,
  };
};

/** Bearer API keys, before anything else of the request is looked at (401 in the envelope). */
const apiKeyAuth = (): MiddlewareObj<Event, Result> => ({
  before: async (request) => {
    await traced('authenticate', {}, () => authenticator().authenticate(request.event.headers?.authorization));
  },
});

const jsonParser = httpJsonBodyParser();

/**
 * Body handling before middy's JSON parser: size (413), no body at all (allowed: `{}` is implied),
 * Content-Type (415), then middy's parser (prototype-pollution safe), with a bad JSON body as 400.
 */
const jsonBody = (): MiddlewareObj<Event, Result> => ({
  before: async (request) => {
    const event = request.event;
    const raw = event.body;
    if (raw === undefined || raw === null || raw === '') {
      (event as { body?: unknown }).body = undefined;
      return;
    }
    const bytes = event.isBase64Encoded ? Math.floor((raw.length * 3) / 4) : Buffer.byteLength(raw);
    if (bytes > MAX_BODY_BYTES) throw payloadTooLarge(MAX_BODY_BYTES);
    const contentType = event.headers?.['content-type'] ?? '';
    if (!/^application\/(?:[\w.+-]+\+)?json\s*(?:;.*)?$/i.test(contentType)) {
      throw unsupportedMediaType(contentType || '(none)');
    }
    try {
      await jsonParser.before!(request as never);
    } catch (err) {
      // middy refuses keys that could reach an object's prototype, before any handler sees them.
      const key = (err as { cause?: { data?: unknown } }).cause?.data;
      if (key === '__proto__' || key === 'constructor') {
        throw new ValidationError(`Request body has a "${key}" key, which is refused: it could change the prototype of the objects that read it; rename the key`);
      }
      throw new ValidationError('Request body is not valid JSON');
    }
  },
});

interface RouteSpec<B extends z.ZodMiniType | undefined, Q extends z.ZodMiniType | undefined> {
  body?: B;
  query?: Q;
  /** No API key check (the route table's `public` routes only). */
  public?: true;
}

type Parsed<T> = T extends z.ZodMiniType ? z.output<T> : undefined;

export interface RouteInput<B, Q> {
  event: Event;
  body: B;
  query: Q;
  params: Record<string, string>;
  header(name: string): string | undefined;
}

function validate<T extends z.ZodMiniType>(schema: T, value: unknown, where: 'body' | 'query'): z.output<T> {
  if (where === 'body' && (value === null || typeof value !== 'object' || Array.isArray(value))) {
    throw new ValidationError('Request body must be a JSON object');
  }
  const result = schema.safeParse(value, { reportInput: true });
  if (!result.success) throw new ValidationError(describeIssue(result.error.issues[0], where));
  // Valid in shape; every value in it must also be one the store keeps as given.
  const why = where === 'body' ? unstorable(result.data) : undefined;
  if (why) throw new ValidationError(why);
  return result.data;
}

/** Path parameters: agentId must be a UUID; messageId follows the message id rules. */
function validatePathParams(params: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(params)) {
    if (value === undefined) continue;
    if (name === 'agentId') {
      const id = uuidSchema.safeParse(value);
      if (!id.success) throw new ValidationError(`Path parameter "agentId" ${UUID_PROBLEM}, got ${JSON.stringify(value.slice(0, 64))}`);
      out[name] = id.data;
      continue;
    }
    const operationId = name === 'operationId' ? operationIdSchema.safeParse(value) : undefined;
    if (operationId && !operationId.success) {
      throw new ValidationError(`Path parameter "operationId" ${operationId.error.issues[0]!.message}, got ${JSON.stringify(value.slice(0, 64))}`);
    }
    if (name === 'messageId' && !messageIdSchema.safeParse(value).success) {
      throw new ValidationError('Path parameter "messageId" must be 1 to 64 letters, digits, "_" or "-"');
    }
    out[name] = value;
  }
  return out;
}

/**
 * One HTTP API (v2) route: the API key check, JSON body parsing and validation, path and query
 * validation, the envelope and the error mapping. The handler body only calls the domain and shapes the reply.
 */
export function httpRoute<B extends z.ZodMiniType | undefined = undefined, Q extends z.ZodMiniType | undefined = undefined>(
  spec: RouteSpec<B, Q>,
  fn: (input: RouteInput<Parsed<B>, Parsed<Q>>) => Promise<Reply>,
) {
  const handler = middy<Event, Result, Error, Context>().use(traceInvocation()).use(injectLambdaContext(logger, { resetKeys: true })).use(requestId());
  if (!spec.public) handler.use(apiKeyAuth());
  if (spec.body) handler.use(jsonBody());
  // Registered last, as middy documents for error handlers: its onError runs first.
  handler.use(errorEnvelope());
  return handler.handler(async (event) => {
    // A literal path taken for a parameter (`PATCH /agents/stop` routed to `PATCH /agents/{agentId}`): 405, not a 400 about the id.
    const { method, path } = event.requestContext?.http ?? {};
    const allowed = path ? allowedAt(path) : [];
    if (method && path && allowed.length > 0 && !allowed.includes(method)) throw methodNotAllowed(method, path, allowed);
    const params = validatePathParams(event.pathParameters ?? {});
    const body = (spec.body ? validate(spec.body, (event.body as unknown) ?? {}, 'body') : undefined) as Parsed<B>;
    const query = (spec.query ? validate(spec.query, event.queryStringParameters ?? {}, 'query') : undefined) as Parsed<Q>;
    const reply = await fn({ event, body, query, params, header: (name) => event.headers?.[name.toLowerCase()] });
    const statusCode = reply.statusCode ?? 200;
    const text = JSON.stringify(reply.body);
    // The health check stays a plain 200: a load balancer asks whether the API answers, not what changed.
    if (spec.public || event.requestContext?.http?.method !== 'GET' || statusCode !== 200) {
      return { statusCode, headers: { ...JSON_HEADERS, ...reply.headers }, body: text };
    }
    const etag = representationTag(reply.headers?.ETag, text);
    const headers = { ...JSON_HEADERS, ...reply.headers, ETag: etag };
    if (noneMatch(event.headers?.['if-none-match'], etag)) return { statusCode: 304, headers, body: '' };
    return { statusCode, headers, body: text };
  });
}
