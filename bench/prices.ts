/**
 * List prices the cost figures are computed from: AWS us-east-1, on-demand, without free tiers,
 * as published on the services' pricing pages (read 2025-12-01). Change them here; every figure
 * of `npm run bench:capacity` follows.
 */
export const PRICES = {
  date: '2025-12-01',
  region: 'us-east-1',
  dynamodb: { perMillionWriteUnits: 0.625, perMillionReadUnits: 0.125, perGbMonth: 0.25 },
  lambda: { perMillionRequests: 0.2, perGbSecondArm: 0.0000133334 },
  apiGateway: { perMillionHttpApiRequests: 1.0 },
  stepFunctions: { perThousandStandardTransitions: 0.025 },
  sqs: { perMillionRequests: 0.4 },
  eventBridge: { perMillionCustomEvents: 1.0 },
} as const;

/** What one operation uses, in the units each service bills. */
export interface Usage {
  apiRequests?: number;
  lambdaInvocations?: number;
  /** Lambda GB-seconds: duration times the configured memory. */
  lambdaGbSeconds?: number;
  writeUnits?: number;
  readUnits?: number;
  transitions?: number;
  sqsRequests?: number;
  events?: number;
}

/** Dollars for one operation of this usage, by service. */
export function bill(u: Usage): Record<'API Gateway' | 'Lambda' | 'DynamoDB' | 'Step Functions' | 'SQS' | 'EventBridge', number> {
  const p = PRICES;
  return {
    'API Gateway': ((u.apiRequests ?? 0) * p.apiGateway.perMillionHttpApiRequests) / 1e6,
    Lambda: ((u.lambdaInvocations ?? 0) * p.lambda.perMillionRequests) / 1e6 + (u.lambdaGbSeconds ?? 0) * p.lambda.perGbSecondArm,
    DynamoDB: ((u.writeUnits ?? 0) * p.dynamodb.perMillionWriteUnits) / 1e6 + ((u.readUnits ?? 0) * p.dynamodb.perMillionReadUnits) / 1e6,
    'Step Functions': ((u.transitions ?? 0) * p.stepFunctions.perThousandStandardTransitions) / 1e3,
    SQS: ((u.sqsRequests ?? 0) * p.sqs.perMillionRequests) / 1e6,
    EventBridge: ((u.events ?? 0) * p.eventBridge.perMillionCustomEvents) / 1e6,
  };
}

export const dollars = (u: Usage) => Object.values(bill(u)).reduce((a, b) => a + b, 0);
