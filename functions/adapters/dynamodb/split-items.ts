import { randomUUID } from 'node:crypto';
import { GetCommand, ScanCommand, TransactWriteCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { cancellationReasons } from './client.js';
import { configKey } from './agent-config-store.js';

const CONFIG_ATTRIBUTES = ['name', 'description', 'settings', 'runtime', 'signingSecret'] as const;

/**
 * Agent items that still hold their configuration (one item per agent, no `configVersion`) are
 * split into the hot item and the configuration item, one transaction per agent, each
 * conditioned on the item being unsplit still (safe to run again, and beside live traffic).
 * Returns how many were split.
 */
export async function splitCombinedItems(db: DynamoDBDocumentClient, tables: { agents: string; records: string }): Promise<number> {
  let split = 0;
  let startKey: Record<string, unknown> | undefined;
  do {
    const page = await db.send(
      new ScanCommand({ TableName: tables.agents, FilterExpression: 'attribute_not_exists(configVersion)', ExclusiveStartKey: startKey, ConsistentRead: true }),
    );
    for (const scanned of page.Items ?? []) {
      if (await splitOne(db, tables, scanned)) split++;
    }
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return split;
}

/**
 * One agent, from the item as read: conditioned on its being unsplit and on the version read
 * (race split vs a write of the item meanwhile: the configuration copied must be the one the item
 * holds, so the split is conditioned on the version and updatedAt read), read again and tried again when that write came first. False: split already, or gone.
 */
async function splitOne(db: DynamoDBDocumentClient, tables: { agents: string; records: string }, scanned: Record<string, unknown>): Promise<boolean> {
  let item: Record<string, unknown> | undefined = scanned;
  for (let attempt = 0; attempt < 5; attempt++) {
    if (!item || item.configVersion !== undefined) return false;
    const configVersion = randomUUID();
    const config = Object.fromEntries(CONFIG_ATTRIBUTES.filter((a) => item![a] !== undefined).map((a) => [a, item![a]]));
    const names = Object.fromEntries(CONFIG_ATTRIBUTES.map((a, i) => [`#c${i}`, a]));
    try {
      await db.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              Update: {
                TableName: tables.agents,
                Key: { agentId: item.agentId },
                UpdateExpression: `SET configVersion = :cv REMOVE ${Object.keys(names).join(', ')}`,
                // Every write of a single item moved its version or updatedAt (a rotation only the latter).
                ConditionExpression: 'attribute_not_exists(configVersion) AND version = :version AND updatedAt = :updatedAt',
                ExpressionAttributeNames: names,
                ExpressionAttributeValues: { ':cv': configVersion, ':version': item.version, ':updatedAt': item.updatedAt },
              },
            },
            {
              Put: {
                TableName: tables.records,
                Item: { ...configKey(String(item.agentId)), settings: {}, runtime: { type: 'echo' }, ...config, configVersion, createdAt: item.createdAt },
              },
            },
          ],
        }),
      );
      return true;
    } catch (err) {
      if (cancellationReasons(err)?.[0]?.code !== 'ConditionalCheckFailed') throw err;
      item = (await db.send(new GetCommand({ TableName: tables.agents, Key: { agentId: scanned.agentId }, ConsistentRead: true }))).Item;
    }
  }
  throw new Error(`agent ${String(scanned.agentId)} kept changing while it was split; run the split again`);
}
