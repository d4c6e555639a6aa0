/**
 * `npm run keys -- create --name <name> | list | revoke <keyId>`: manage API keys.
 *
 * Local by default: the DynamoDB Local of a running `npm start` (same AGENTS_DATA_DIR), else one
 * started for the command, or DYNAMODB_ENDPOINT. With `--aws`, the deployed table named by
 * API_KEYS_TABLE (the stack's ApiKeysTableName output), with your AWS credentials.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ListTablesCommand } from '@aws-sdk/client-dynamodb';
import { createDocumentClient } from '../functions/adapters/dynamodb/client.js';
import { ApiKeysStore } from '../functions/auth/api-keys.js';
import { DataDirLocked, endpointFile, ensureTables, JavaMissing, localClient, startDynamoDbLocal, type LocalDynamo } from './dynamodb.js';

const usage = 'usage: npm run keys -- create --name <name> | list | revoke <keyId>   [--aws]';

async function reachable(endpoint: string): Promise<boolean> {
  const client = localClient(endpoint);
  try {
    await client.send(new ListTablesCommand({ Limit: 1 }));
    return true;
  } catch {
    return false;
  } finally {
    client.destroy();
  }
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({ options: { name: { type: 'string' }, aws: { type: 'boolean' } }, allowPositionals: true });
  const [command, arg] = positionals;
  const table = process.env.API_KEYS_TABLE ?? (values.aws ? undefined : 'api-keys');
  if (!table) {
    process.stderr.write('Set API_KEYS_TABLE to the stack\'s ApiKeysTableName output to manage deployed keys.\n');
    return 2;
  }
  let dynamo: LocalDynamo | undefined;
  let endpoint: string | undefined;
  /** Which store this command reads and writes, said on every run: a key in the wrong store is a silent lock-out. */
  let where: string;
  if (values.aws) {
    where = `the deployed table ${table} (AWS credentials and region from your environment)`;
  } else {
    const dataDir = resolve(process.env.AGENTS_DATA_DIR ?? '.data');
    const running = existsSync(endpointFile(dataDir)) ? readFileSync(endpointFile(dataDir), 'utf8').trim() : undefined;
    const serving = running && (await reachable(running)) ? running : undefined;
    if (process.env.DYNAMODB_ENDPOINT) {
      endpoint = process.env.DYNAMODB_ENDPOINT;
      where = `table ${table} at DYNAMODB_ENDPOINT=${endpoint}`;
    } else if (serving) {
      endpoint = serving;
      where = `table ${table} of the running \`npm start\` on ${dataDir} (DynamoDB Local at ${serving})`;
    } else {
      dynamo = await startDynamoDbLocal({ dataDir: `${dataDir}/dynamodb` });
      endpoint = dynamo.endpoint;
      where = `table ${table} in ${dataDir}`;
      process.stderr.write(
        `warning: no \`npm start\` is running on ${dataDir}. Keys are stored there and apply when a server starts on it; ` +
          'a server running with another AGENTS_DATA_DIR does not see them (run this with the same AGENTS_DATA_DIR).\n',
      );
    }
    await ensureTables(endpoint, { agents: process.env.AGENTS_TABLE ?? 'agents', records: process.env.RECORDS_TABLE ?? 'agent-records', apiKeys: table });
  }
  process.stderr.write(`keys: ${where}\n`);
  const db = createDocumentClient(endpoint);
  const keys = new ApiKeysStore(db, table);
  try {
    switch (command) {
      case 'create': {
        if (!values.name) break;
        const { key, info } = await keys.create(values.name);
        process.stdout.write(`Created key "${info.name}" (keyId ${info.keyId}). It is shown once; store it now:\n\n  ${key}\n\n`);
        process.stdout.write(`Use it as: curl -H "Authorization: Bearer ${key}" ...\n`);
        return 0;
      }
      case 'list': {
        const all = await keys.list();
        if (all.length === 0) process.stdout.write('No API keys.\n');
        for (const k of all) {
          const state = k.revokedAt ? `revoked ${new Date(k.revokedAt).toISOString()}` : 'active';
          process.stdout.write(`${k.keyId}  ${k.name.padEnd(24)} created ${new Date(k.createdAt).toISOString()}  ${state}\n`);
        }
        return 0;
      }
      case 'revoke': {
        if (!arg) break;
        if (!(await keys.revoke(arg))) {
          process.stderr.write(`No key with keyId ${arg} (see: npm run keys -- list).\n`);
          return 1;
        }
        process.stdout.write(`Revoked ${arg}.\n`);
        return 0;
      }
    }
    process.stderr.write(`${usage}\n`);
    return 2;
  } finally {
    db.destroy();
    await dynamo?.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(err instanceof JavaMissing || err instanceof DataDirLocked ? `${err.message}\n` : `keys: ${err.message}\n`);
    process.exit(1);
  },
);
