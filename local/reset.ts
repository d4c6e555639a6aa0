import { existsSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline/promises';
import { dataDirOwner } from './dynamodb.js';

/**
 * `npm run reset`: deletes the local server's data folder (AGENTS_DATA_DIR, `.data`): every agent,
 * record and API key. The next `npm start` begins empty, with auth off until a key is created.
 * This is the only way auth goes back off locally: revoking keys never opens the API. Refused
 * while an `npm start` runs on the folder; asks first unless given `--yes`.
 */
const dataDir = resolve(process.env.AGENTS_DATA_DIR ?? '.data');
const say = (line: string) => process.stdout.write(`${line}\n`);

const owner = dataDirOwner(join(dataDir, 'dynamodb'));
if (owner) {
  process.stderr.write(`An \`npm start\` is running on ${dataDir} (process ${owner.pid}): stop it first, then run npm run reset again.\n`);
  process.exit(1);
}
if (!existsSync(dataDir)) {
  say(`Nothing to reset: ${dataDir} does not exist.`);
  process.exit(0);
}
if (!process.argv.includes('--yes')) {
  if (!process.stdin.isTTY) {
    process.stderr.write(`This deletes ${dataDir} (every local agent, record and API key): run npm run reset -- --yes to confirm.\n`);
    process.exit(1);
  }
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  const answer = await rl.question(`Delete ${dataDir}: every local agent, record and API key? Type yes: `);
  rl.close();
  if (answer.trim() !== 'yes') {
    say('Nothing deleted.');
    process.exit(1);
  }
}
rmSync(dataDir, { recursive: true, force: true });
say(`Deleted ${dataDir}. The next npm start begins empty, with auth off until a key is created.`);
