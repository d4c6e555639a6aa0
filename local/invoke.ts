import { randomUUID } from 'node:crypto';
import { InvokeStore, InvokeStoreBase } from '@aws/lambda-invoke-store';
import type { Context } from 'aws-lambda';
import { runAs, type Deps } from '../functions/adapters/deps.js';

/**
 * One machine runs every function in one process, many invocations at once: as a Lambda function
 * with multi-concurrency does. So the local stack runs each invocation as that runtime does,
 * inside the Lambda runtime's InvokeStore, where Powertools keeps each invocation's log keys
 * (Lambda context, correlation id) apart from the others'.
 */
process.env.AWS_LAMBDA_MAX_CONCURRENCY ??= '1000';
const store = await InvokeStore.getInstanceAsync(true);

export function lambdaContext(functionName: string, requestId: string, timeoutMs: number): Context {
  const deadline = Date.now() + timeoutMs;
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:local:000000000000:function:${functionName}`,
    memoryLimitInMB: '512',
    awsRequestId: requestId,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => {},
    fail: () => {},
    succeed: () => {},
  };
}

/** One invocation of a function: its own request id and context, with that function's grants. */
export function invokeLocally<T>(
  functionName: string,
  opts: { deps?: Deps; timeoutMs: number; requestId?: string },
  call: (context: Context) => Promise<T>,
): Promise<T> {
  const requestId = opts.requestId ?? randomUUID();
  const context = lambdaContext(functionName, requestId, opts.timeoutMs);
  const run = () => call(context);
  return store.run({ [InvokeStoreBase.PROTECTED_KEYS.REQUEST_ID]: requestId }, () => (opts.deps ? runAs(opts.deps, run) : run()));
}
