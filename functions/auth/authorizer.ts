import type { APIGatewayRequestAuthorizerEventV2, APIGatewaySimpleAuthorizerWithContextResult } from 'aws-lambda';
import { createDocumentClient } from '../adapters/dynamodb/client.js';
import { logger } from '../adapters/logger.js';
import { requiredEnv } from '../agents/config.js';
import { ApiKeysStore, bearerKey } from './api-keys.js';

let store: ApiKeysStore | undefined;
const keys = () => (store ??= new ApiKeysStore(createDocumentClient(process.env.DYNAMODB_ENDPOINT), requiredEnv(process.env, 'API_KEYS_TABLE')));

/**
 * HTTP API Lambda authorizer (payload 2.0, simple responses): allows a request whose
 * `Authorization: Bearer <key>` names a valid, unrevoked key. Logs the key's name, never the key.
 */
export const handler = async (
  event: APIGatewayRequestAuthorizerEventV2,
): Promise<APIGatewaySimpleAuthorizerWithContextResult<{ keyId: string; keyName: string }>> => {
  const info = await keys().verify(bearerKey(event.headers?.authorization));
  if (!info) {
    logger.info('request refused: no valid API key', { routeKey: event.routeKey });
    return { isAuthorized: false, context: { keyId: '', keyName: '' } };
  }
  logger.info('request authorized', { routeKey: event.routeKey, keyName: info.name, keyId: info.keyId });
  return { isAuthorized: true, context: { keyId: info.keyId, keyName: info.name } };
};

/** Tests and the local stack point the authorizer at their own store. */
export function useApiKeysStore(next: ApiKeysStore): void {
  store = next;
}
