/**
 * `npm run bench:load`: messages per second and latency through the local API (echo runtime, no
 * delay), next to the raw conditional-update rate of the same DynamoDB Local measured in the same
 * run; then the same load with starts and stops mixed in. Loopback only, bounded in time.
 * DynamoDB Local's JVM is warmed first (both kinds of load, 25 s, unmeasured: it keeps speeding
 * up for that long), and the raw rate is measured before and after the message run (their mean is
 * the yardstick), with the same number of connections. The DynamoDB calls per message are counted at the one client the stack uses.
 * Last, for scale, the ceiling: the same load with the store reduced to two lease writes per message.
 */
import { patchAgentsStore, patchRecordsStore } from '../test/support/patch.js';
import autocannon from 'autocannon';
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { AgentState } from '../functions/agents/model.js';
import { benchStack, countCalls, goal, percentile, rawConditionalWrite } from './support.js';

const SECONDS = Number(process.env.LOAD_SECONDS ?? 10);
const CONNECTIONS = Number(process.env.LOAD_CONNECTIONS ?? 16);
const AGENTS = 32;

const stack = await benchStack({ config: { maxInFlight: 98 } });
const { api, app } = stack;
const d = app.deps;

try {
  const agents: string[] = [];
  for (let i = 0; i < AGENTS; i++) {
    const id = (await api('POST', '/agents', { name: `load-${i}` })).body.data.agentId as string;
    await api('POST', `/agents/${id}/start`);
    agents.push(id);
  }

  // 1. The raw rate of conditional updates on the same DynamoDB Local (same concurrency).
  const rawRun = async (seconds: number) => {
    let raw = 0;
    const rawUntil = Date.now() + seconds * 1000;
    await Promise.all(
      Array.from({ length: CONNECTIONS }, async (_, w) => {
        for (let i = 0; Date.now() < rawUntil; i++) {
          await rawConditionalWrite(app.db, d.config.agentsTable!, agents[(w + i) % AGENTS]!);
          raw++;
        }
      }),
    );
    return raw / seconds;
  };

  const load = async (title: string, seconds = SECONDS, quiet = false) => {
    let n = 0;
    const result = await autocannon({
      url: app.url,
      connections: CONNECTIONS,
      duration: seconds,
      requests: [
        {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          setupRequest: (req) => ({ ...req, path: `/agents/${agents[n++ % AGENTS]}/messages`, body: JSON.stringify({ text: `hello ${n}` }) }),
        },
      ],
    });
    const codes = Object.fromEntries(Object.entries(result.statusCodeStats ?? {}).map(([code, s]) => [code, (s as { count: number }).count]));
    if (quiet) return result;
    console.log(
      `${title.padEnd(34)} ${result.requests.average.toFixed(0).padStart(6)} req/s  p50 ${String(result.latency.p50).padStart(4)} ms  p99 ${String(result.latency.p99).padStart(4)} ms  ` +
        `statuses ${JSON.stringify(codes)}  errors ${result.errors} timeouts ${result.timeouts}`,
    );
    return result;
  };

  console.log(`\nLoad benchmark: ${CONNECTIONS} connections, ${SECONDS} s per run, ${AGENTS} agents, echo runtime, loopback\n`);
  // Warm-up, unmeasured: the JVM runs several times slower cold, which would flatter whichever ran second.
  await rawRun(15);
  await load('warm-up', 10, true);
  const calls = countCalls(app.db);
  const rawBefore = await rawRun(SECONDS / 2);
  calls.reset();
  const messages = await load('POST /messages');
  const perMessage = calls.counts();
  const rawAfter = await rawRun(SECONDS / 2);
  const rawRate = (rawBefore + rawAfter) / 2;
  const sent = messages.requests.total;
  console.log(`${'raw DynamoDB conditional updates'.padEnd(34)} ${rawRate.toFixed(0).padStart(6)} ops/s (before ${rawBefore.toFixed(0)}, after ${rawAfter.toFixed(0)})`);
  console.log(
    `${'DynamoDB calls per message'.padEnd(34)} ${((perMessage.reads + perMessage.writes) / sent).toFixed(2)} ` +
      `(${(perMessage.reads / sent).toFixed(2)} reads, ${(perMessage.writes / sent).toFixed(2)} writes of which ${(perMessage.transactions / sent).toFixed(2)} transactions)`,
  );
  console.log(goal('messages/s / raw conditional updates/s', messages.requests.average / rawRate, 0.5, 'x', 2, true));

  // 2. The same load while a quarter of the agents are stopped and started again and again.
  let cycling = true;
  let cycles = 0;
  const forceStops: number[] = [];
  let forceFailures = 0;
  const churn = Promise.all(
    agents.slice(0, AGENTS / 4).map(async (id, i) => {
      while (cycling) {
        const t = performance.now();
        const stop = await api('POST', `/agents/${id}/stop`, i % 2 ? { graceful: false } : { timeout: 2000 });
        if (i % 2) {
          forceStops.push(performance.now() - t);
          if (stop.status !== 200) forceFailures++;
        }
        if (stop.status >= 500) throw new Error(`stop answered ${stop.status}`);
        const start = await api('POST', `/agents/${id}/start`);
        if (start.status >= 500) throw new Error(`start answered ${start.status}`);
        cycles++;
      }
    }),
  );
  const mixed = await load('POST /messages + stop/start churn');
  cycling = false;
  await churn;
  console.log(`${'stop/start cycles during that run'.padEnd(34)} ${cycles} (409s above are messages to agents being stopped)`);
  console.log(goal(`force stop under load, p50 (n=${forceStops.length})`, percentile(forceStops, 50), 1000, 'ms'));
  console.log(goal('force stops not answered 200', forceFailures, 0, '', 0));
  const fiveHundreds = Object.keys(mixed.statusCodeStats ?? {}).filter((c) => Number(c) >= 500);
  if (fiveHundreds.length) throw new Error(`5xx under load: ${fiveHundreds.join(', ')}`);

  // 3. The ceiling, for scale (not the product): the same API and load with the store reduced to
  // the two single-item lease writes a message cannot do without (admit, release), no record, no
  // read, no transaction. No design that keeps a durable record per message beats this here.
  const leaseWrite = async (agentId: string, update: string, condition: string, messageId: string, values: Record<string, unknown>) =>
    (
      await app.db.send(
        new UpdateCommand({
          TableName: d.config.agentsTable!,
          Key: { agentId },
          UpdateExpression: update,
          ConditionExpression: condition,
          ExpressionAttributeNames: { '#status': 'status', '#leases': 'leases', '#m': messageId, ...(update.startsWith('REMOVE') && { '#token': 'token' }) },
          ExpressionAttributeValues: { ':active': 'active', ...values },
          ReturnValues: 'ALL_NEW',
        }),
      )
    ).Attributes as AgentState;
  // In every function of the stack (each has its own store, under its own grants).
  const undo = [
    patchRecordsStore(app, 'createMessageRecord', () => async () => undefined),
    patchAgentsStore(app, 'admitLease', () => ({ agentId, messageId, lease }) =>
      leaseWrite(agentId, 'SET #leases.#m = :lease', '#status = :active AND attribute_not_exists(#leases.#m)', messageId, { ':lease': lease }),
    ),
    patchRecordsStore(app, 'recordOutcome', () => async () => true),
    patchAgentsStore(app, 'releaseLease', () => ({ agentId, messageId, token }) =>
      leaseWrite(agentId, 'REMOVE #leases.#m', '#status = :active AND #leases.#m.#token = :token', messageId, { ':token': token }),
    ),
  ];
  const rawBeforeCeiling = await rawRun(SECONDS / 2);
  const ceiling = await load('ceiling: 2 lease writes/message');
  const rawAfterCeiling = await rawRun(SECONDS / 2);
  undo.forEach((u) => u());
  console.log(
    `${'ceiling / raw conditional updates/s'.padEnd(34)} ${(ceiling.requests.average / ((rawBeforeCeiling + rawAfterCeiling) / 2)).toFixed(2)} x ` +
      `(the goal of 0.5 x is at or above what two single writes per message reach through this API here)`,
  );
} finally {
  // autocannon abandons its last requests at the deadline; let the server finish them first.
  await new Promise((r) => setTimeout(r, 1500));
  await stack.close();
}
