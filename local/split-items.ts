/**
 * `npm run split-items`: splits agents stored as one item (state and configuration together)
 * into their hot and cold items, in the tables AGENTS_TABLE and RECORDS_TABLE (a deployed
 * stack's, with the AWS credentials and region of the shell; or DYNAMODB_ENDPOINT's). Safe to run
 * again and beside live traffic: each agent is one transaction conditioned on its being unsplit.
 * `npm start` does this by itself at start.
 */
import { createDocumentClient } from '../functions/adapters/dynamodb/client.js';
import { splitCombinedItems } from '../functions/adapters/dynamodb/split-items.js';

const agents = process.env.AGENTS_TABLE;
const records = process.env.RECORDS_TABLE;
if (!agents || !records) {
  process.stderr.write('Set AGENTS_TABLE and RECORDS_TABLE to the stack\'s table names (the stack\'s outputs), then run npm run split-items again.\n');
  process.exit(3);
}
const db = createDocumentClient(process.env.DYNAMODB_ENDPOINT);
try {
  const split = await splitCombinedItems(db, { agents, records });
  process.stdout.write(`${split} agent${split === 1 ? '' : 's'} split into a state and a configuration item.\n`);
} finally {
  db.destroy();
}
