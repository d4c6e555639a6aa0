/**
 * `npm run bench:load`: messages per second and latency through the local API (echo runtime, no
 * delay), next to the raw conditional-update rate of the same DynamoDB Local measured in the same
 * run; then the same load with starts and stops mixed in. Loopback only, bounded in time.
 */
import autocannon from 'autocannon';
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { benchStack } from './support.js';

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
  let raw = 0;
  const rawUntil = Date.now() + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async (_, w) => {
      for (let i = 0; Date.now() < rawUntil; i++) {
        await app.db.send(
          new UpdateCommand({
            TableName: d.agents.tableName,
            Key: { agentId: agents[(w + i) % AGENTS] },
            UpdateExpression: 'SET benchCounter = if_not_exists(benchCounter, :zero) + :one',
            ConditionExpression: 'attribute_exists(agentId) AND #status = :active',
            ExpressionAttributeNames: { '#status': 'status' },
            ExpressionAttributeValues: { ':zero': 0, ':one': 1, ':active': 'active' },
          }),
        );
        raw++;
      }
    }),
  );
  const rawRate = raw / SECONDS;

  const load = async (title: string) => {
    let n = 0;
    const result = await autocannon({
      url: app.url,
      connections: CONNECTIONS,
      duration: SECONDS,
      requests: [
        {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          setupRequest: (req) => ({ ...req, path: `/agents/${agents[n++ % AGENTS]}/messages`, body: JSON.stringify({ text: `hello ${n}` }) }),
        },
      ],
    });
    const codes = Object.fromEntries(Object.entries(result.statusCodeStats ?? {}).map(([code, s]) => [code, (s as { count: number }).count]));
    console.log(
      `${title.padEnd(34)} ${result.requests.average.toFixed(0).padStart(6)} req/s  p50 ${String(result.latency.p50).padStart(4)} ms  p99 ${String(result.latency.p99).padStart(4)} ms  ` +
        `statuses ${JSON.stringify(codes)}  errors ${result.errors} timeouts ${result.timeouts}`,
    );
    return result;
  };

  console.log(`\nLoad benchmark: ${CONNECTIONS} connections, ${SECONDS} s per run, ${AGENTS} agents, echo runtime, loopback\n`);
  console.log(`${'raw DynamoDB conditional updates'.padEnd(34)} ${rawRate.toFixed(0).padStart(6)} ops/s`);
  const messages = await load('POST /messages');
  console.log(`${'ratio messages / raw updates'.padEnd(34)} ${(messages.requests.average / rawRate).toFixed(2)} (a message is 1 read + 2 transactions)`);

  // 2. The same load while a quarter of the agents are stopped and started again and again.
  let cycling = true;
  let cycles = 0;
  const churn = Promise.all(
    agents.slice(0, AGENTS / 4).map(async (id, i) => {
      while (cycling) {
        const stop = await api('POST', `/agents/${id}/stop`, i % 2 ? { graceful: false } : { timeout: 2000 });
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
  const fiveHundreds = Object.keys(mixed.statusCodeStats ?? {}).filter((c) => Number(c) >= 500);
  if (fiveHundreds.length) throw new Error(`5xx under load: ${fiveHundreds.join(', ')}`);
} finally {
  // autocannon abandons its last requests at the deadline; let the server finish them first.
  await new Promise((r) => setTimeout(r, 1500));
  await stack.close();
}
