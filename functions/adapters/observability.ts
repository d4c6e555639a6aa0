import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy, { type MiddlewareObj } from '@middy/core';
import type { Context } from 'aws-lambda';
import { logger } from './logger.js';
import { annotateInvocation, traceInvocation } from './tracing.js';

/**
 * A correlation id follows one request across functions: the API function, the stop workflow's
 * tasks, the message worker and the lifecycle events all log it as `correlation_id`. A client may
 * bring its own in `X-Request-Id` (letters, digits and `._:-`, up to 128); anything else is
 * ignored and API Gateway's request id is used.
 */
export const CORRELATION_ID = /^[\w.:-]{1,128}$/;

export const correlationIdOf = (value: unknown): string | undefined =>
  typeof value === 'string' && CORRELATION_ID.test(value) ? value : undefined;

/** The correlation id of the invocation running now (each one has its own, also on one machine). */
export function currentCorrelationId(): string | undefined {
  return correlationIdOf(logger.getCorrelationId());
}

/** Sets the invocation's correlation id from its event (or its own request id when the event has none). */
export const correlation = <E, R>(of: (event: E) => string | undefined): MiddlewareObj<E, R, Error, Context> => ({
  before: (request) => {
    const id = of(request.event) ?? request.context.awsRequestId;
    logger.setCorrelationId(id);
    annotateInvocation('correlationId', id);
  },
});

/**
 * A Lambda handler traced (its subsegment, see tracing.ts), with Powertools' Lambda context on
 * every log line (request id, cold start, function name) and the correlation id its event
 * carries; the keys are reset after each invocation.
 */
export function lambdaHandler<E, R>(correlationOf: (event: E) => string | undefined, fn: (event: E, context: Context) => Promise<R>) {
  return middy<E, R, Error, Context>()
    .use(traceInvocation())
    .use(injectLambdaContext(logger, { resetKeys: true }))
    .use(correlation<E, R>(correlationOf))
    .handler(fn);
}

/** The correlation id a workflow task's or a job's input carries. */
export const carried = (input: unknown): string | undefined => correlationIdOf((input as { correlationId?: unknown } | undefined)?.correlationId);
