import { randomUUID } from 'node:crypto';
import { ScanCommand, TransactWriteCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
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
    for (const item of page.Items ?? []) {
      const configVersion = randomUUID();
      const config = Object.fromEntries(CONFIG_ATTRIBUTES.filter((a) => item[a] !== undefined).map((a) => [a, item[a]]));
      const names = Object.fromEntries(CONFIG_ATTRIBUTES.map((a, i) => [`#c${i}`, a]));
      await db.send(
        new TransactWriteCommand({
          TransactItems: [
            {
              Update: {
                TableName: tables.agents,
                Key: { agentId: item.agentId },
                UpdateExpression: `SET configVersion = :cv REMOVE ${Object.keys(names).join(', ')}`,
                ConditionExpression: 'attribute_exists(agentId) AND attribute_not_exists(configVersion)',
                ExpressionAttributeNames: names,
                ExpressionAttributeValues: { ':cv': configVersion },
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
      split++;
    }
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return split;
}
