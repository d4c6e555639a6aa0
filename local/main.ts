/**
 * `npm start`: the whole API on http://localhost:3000 over Amazon DynamoDB Local (started here,
 * data under AGENTS_DATA_DIR) unless DYNAMODB_ENDPOINT points elsewhere.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { ConfigError, configFromEnv } from '../functions/agents/config.js';
import { buildConsole } from '../console/build.js';
import { startLocalApp } from './app.js';
import { printLine, prettyStdout } from './log.js';
import { assertPortFree, DataDirLocked, endpointFile, ensureTables, JavaMissing, startDynamoDbLocal, type LocalDynamo } from './dynamodb.js';

const env = process.env;
const port = Number(env.PORT ?? 3000);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  process.stderr.write(`PORT must be a port number (0-65535), got ${JSON.stringify(env.PORT)}\n`);
  process.exit(1);
}
const dataDir = env.AGENTS_DATA_DIR ?? '.data';
// A terminal gets readable lines; a pipe or a file (a log collector) the JSON ones.
if (env.LOG_FORMAT === 'pretty' || (env.LOG_FORMAT === undefined && process.stdout.isTTY)) prettyStdout();
else if (env.LOG_FORMAT !== undefined && env.LOG_FORMAT !== 'json') {
  process.stderr.write(`LOG_FORMAT must be json or pretty, got ${JSON.stringify(env.LOG_FORMAT)}\n`);
  process.exit(1);
}
const print = printLine;

// Local defaults for what the CDK stack sets in AWS.
env.AGENTS_TABLE ??= 'agents';
env.RECORDS_TABLE ??= 'agent-records';
env.API_KEYS_TABLE ??= 'api-keys';
// On one machine the agents' workers run on it too: the http runtime may call loopback and private
// addresses, over plain http (deployed, the defaults refuse both).
env.RUNTIME_URLS ??= 'any';
env.RUNTIME_ALLOW_HTTP ??= '1';

async function main(): Promise<void> {
  const config = configFromEnv(env);
  const requireAuth = env.AGENTS_REQUIRE_AUTH === '1' || env.AGENTS_REQUIRE_AUTH === 'true';
  const host = env.HOST ?? '127.0.0.1';
  // Before Java starts: a busy port must not leave a DynamoDB Local behind.
  await assertPortFree(port, host);
  let dynamo: LocalDynamo | undefined;
  let endpoint = env.DYNAMODB_ENDPOINT;
  if (!endpoint) {
    dynamo = await startDynamoDbLocal({ dataDir: `${dataDir}/dynamodb` });
    endpoint = dynamo.endpoint;
    print(`DynamoDB Local on ${endpoint}, data in ${dataDir}/dynamodb`);
  }
  let app: Awaited<ReturnType<typeof startLocalApp>>;
  try {
    // The console from its sources as they are now (served at /console).
    await buildConsole();
    const keysTable = env.API_KEYS_TABLE!;
    await ensureTables(endpoint, { agents: env.AGENTS_TABLE!, records: env.RECORDS_TABLE!, apiKeys: keysTable });
    // Lets `npm run keys` reach this DynamoDB Local while the server runs (one process per data dir).
    if (dynamo) writeFileSync(endpointFile(dataDir), endpoint);
    const reaperIntervalMs = Number(env.AGENTS_REAPER_INTERVAL_MS ?? 60_000);
    if (!Number.isInteger(reaperIntervalMs) || reaperIntervalMs < 0) {
      throw new Error(`AGENTS_REAPER_INTERVAL_MS must be a whole number of milliseconds (0 turns the reaper off), got ${env.AGENTS_REAPER_INTERVAL_MS}`);
    }
    app = await startLocalApp({
      endpoint,
      config,
      port,
      host,
      log: print,
      reaperIntervalMs,
      auth: { keysTable, require: requireAuth ? 'always' : 'auto' },
      allowedHosts: (env.ALLOWED_HOSTS ?? '').split(',').map((h) => h.trim().toLowerCase()).filter(Boolean),
      ...(env.EVENTS_WEBHOOK_URL && { eventsWebhook: { url: env.EVENTS_WEBHOOK_URL, secret: env.EVENTS_WEBHOOK_SECRET } }),
    });
  } catch (err) {
    // Whatever failed, the DynamoDB Local started for this server goes with it.
    await dynamo?.stop();
    if (dynamo) rmSync(endpointFile(dataDir), { force: true });
    throw err;
  }
  const activeKeys = (await app.keys!.list()).filter((k) => k.revokedAt === undefined).length;
  // Where to go first, then what the server found.
  print(`agents API on http://localhost:${port} (stop window ${config.stopWaitWindowMs} ms); console on http://localhost:${port}/console, docs on /docs`);
  print(`lifecycle events on http://localhost:${port}/events${env.EVENTS_WEBHOOK_URL ? ` and to ${env.EVENTS_WEBHOOK_URL}` : ''}; metrics on http://localhost:${port}/metrics`);
  print(
    app.authRequired()
      ? `auth: ON, every request needs "Authorization: Bearer <key>" (${activeKeys} active key(s); npm run keys -- list)`
      : 'auth: OFF, no API key was ever created (create one with `npm run keys -- create --name <name>`, or set AGENTS_REQUIRE_AUTH=1); auth turns on with the first key and stays on',
  );
  if (app.resumed > 0) print(`resumed the stop workflow of ${app.resumed} agent(s) left stopping`);
  if (app.resumedFleetStops > 0) print(`resumed ${app.resumedFleetStops} fleet stop(s) left running`);

  let closing = false;
  const shutdown = async (signal: string) => {
    if (closing) return;
    closing = true;
    print(`${signal}: shutting down`);
    await app.close(10_000);
    await dynamo?.stop();
    if (dynamo) rmSync(endpointFile(dataDir), { force: true });
    print('stopped');
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
}

main().catch((err: unknown) => {
  if (err instanceof JavaMissing || err instanceof DataDirLocked || err instanceof ConfigError) {
    process.stderr.write(`${err.message}\n`);
  } else if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
    process.stderr.write(`Port ${port} is in use: stop what runs there or set PORT to another port.\n`);
  } else {
    process.stderr.write(`Could not start: ${(err as Error).stack ?? String(err)}\n`);
  }
  process.exit(1);
});
