/**
 * `npm run bench:reaper`: one reaper run over a fleet of 20,000 agents of which 200 are due,
 * against finding the same 200 with a Scan of the fleet. Items read are counted from the
 * DynamoDB responses (index keys + full items), on DynamoDB Local.
 */
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { runReaper } from '../functions/agents/reaper.js';
import type { StoredAgent } from '../functions/agents/model.js';
import { benchStack, putAgents } from './support.js';

const FLEET = Number(process.env.FLEET ?? 20_000);
const DUE = Number(process.env.DUE ?? 200);
const stack = await benchStack();
const d = stack.app.deps;

try {
  const now = Date.now();
  const hour = 3_600_000;
  const agents: Omit<StoredAgent, 'configVersion'>[] = Array.from({ length: FLEET }, (_, i) => {
    const due = i < DUE;
    const lastActivityAt = due ? now - 2 * hour : now - 60_000;
    return {
      agentId: crypto.randomUUID(),
      name: `fleet-${i}`,
      status: 'active',
      settings: {},
      runtime: { type: 'echo' },
      idleTimeoutMs: hour,
      leases: {},
      version: 2,
      createdAt: now - 3 * hour,
      updatedAt: lastActivityAt,
      startedAt: lastActivityAt,
      lastActivityAt,
      dueAt: lastActivityAt + hour,
    };
  });
  const t0 = performance.now();
  await putAgents(stack.app.db, { agents: d.config.agentsTable!, records: d.config.recordsTable! }, agents);
  console.log(`loaded ${FLEET} active agents (${DUE} idle past their timeout) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  // The same question answered by a Scan of the fleet.
  const t2 = performance.now();
  let scanned = 0;
  let found = 0;
  let startKey: Record<string, unknown> | undefined;
  do {
    const out = await stack.app.db.send(
      new ScanCommand({
        TableName: d.config.agentsTable!,
        FilterExpression: '#s = :active AND dueAt <= :now',
        ExpressionAttributeNames: { '#s': 'status' },
        ExpressionAttributeValues: { ':active': 'active', ':now': now },
        ExclusiveStartKey: startKey,
      }),
    );
    scanned += out.ScannedCount ?? 0;
    found += out.Count ?? 0;
    startKey = out.LastEvaluatedKey;
  } while (startKey);
  const scanMs = performance.now() - t2;

  // The reaper's question through the byStatus index alone (keys of the due agents).
  const t3 = performance.now();
  let indexKeys = 0;
  let indexKey: Record<string, unknown> | undefined;
  do {
    const page = await d.agents.queryByStatus('active', { limit: 100, dueBy: now, startKey: indexKey });
    indexKeys += page.items.length;
    indexKey = page.lastKey;
  } while (indexKey);
  const indexMs = performance.now() - t3;

  // Count what the reaper reads: index keys from Query, full items from Get/BatchGet.
  let itemsRead = 0;
  let requests = 0;
  const send = stack.app.db.send.bind(stack.app.db);
  stack.app.db.send = (async (command: { input: unknown }) => {
    const out = (await send(command as never)) as { Items?: unknown[]; Item?: unknown; Responses?: Record<string, unknown[]> };
    requests++;
    itemsRead += (out.Items?.length ?? 0) + (out.Item ? 1 : 0) + Object.values(out.Responses ?? {}).reduce((n, r) => n + r.length, 0);
    return out;
  }) as typeof stack.app.db.send;

  const t1 = performance.now();
  const run = await runReaper(d, { budgetMs: 60_000 });
  const reaperMs = performance.now() - t1;
  const reaperReads = itemsRead;
  const reaperRequests = requests;

  console.log(`\nReaper benchmark: ${FLEET} agents, ${DUE} due (DynamoDB Local)\n`);
  console.log(`whole reaper run (find, read, ${run.stopped} stops): ${reaperMs.toFixed(0).padStart(6)} ms, ${reaperReads} items read in ${reaperRequests} requests`);
  console.log(`  summary: ${JSON.stringify(run)}`);
  console.log(`find them by index query (keys only):   ${indexMs.toFixed(0).padStart(6)} ms, ${indexKeys} items read`);
  console.log(`find them by a Scan of the fleet:       ${scanMs.toFixed(0).padStart(6)} ms, ${scanned} items read, ${found} found`);
} finally {
  await stack.close();
}
