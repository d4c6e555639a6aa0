import { afterAll, expect, it } from 'vitest';
import { EmfMetrics, METRICS_NAMESPACE } from '../../functions/adapters/metrics.js';
import { createAgent, eventually, gatedTestApp } from '../support/stack.js';
import { captureOutput } from '../support/output.js';

/**
 * The functions' metrics as CloudWatch receives them: embedded metric format lines on stdout
 * (Powertools Metrics), one per data point, with the names and dimensions the dashboard and the
 * alarms read.
 */
const { gated, app } = gatedTestApp({ metrics: new EmfMetrics() });
const out = captureOutput();
afterAll(() => out.restore());

interface Emf {
  _aws: { CloudWatchMetrics: { Namespace: string; Dimensions: string[][]; Metrics: { Name: string; Unit: string }[] }[] };
  [key: string]: unknown;
}
const points = () =>
  out
    .text()
    .split('\n')
    .filter((l) => l.startsWith('{"_aws":'))
    .map((l) => JSON.parse(l) as Emf);
/** The points of one metric whose values include `where`. */
const pointsOf = (name: string, where: Record<string, string>) =>
  points().filter((p) => p._aws.CloudWatchMetrics[0]!.Metrics.some((m) => m.Name === name) && Object.entries(where).every(([k, v]) => p[k] === v));

const running = async (agentId: string) => {
  const sent = await app().api('POST', `/agents/${agentId}/messages`, { text: 'work' }, { prefer: 'respond-async' });
  expect(sent.status).toBe(202);
  return (await gated.waitForHeld(1, agentId))[0]!;
};

it('a drained stop: stops by outcome (and reason), its drain duration, the message completed', async () => {
  const agentId = await createAgent(app().api, { settings: { gated: true } }, true);
  const messageId = await running(agentId);
  const stop = await app().api('POST', `/agents/${agentId}/stop`, { graceful: true, timeout: 20_000 }, { prefer: 'respond-async' });
  expect(stop.status).toBe(202);
  await new Promise((resolve) => setTimeout(resolve, 300));
  gated.release(messageId);
  await eventually(async () => pointsOf('StopsEnded', { outcome: 'drained' }).length > 0);

  const [ended] = pointsOf('StopsEnded', { outcome: 'drained' });
  expect(ended).toMatchObject({ service: 'agents', outcome: 'drained', reason: 'api', StopsEnded: 1 });
  expect(ended!._aws.CloudWatchMetrics[0]).toMatchObject({
    Namespace: METRICS_NAMESPACE,
    Dimensions: [['service', 'outcome'], ['service', 'outcome', 'reason']],
    Metrics: [{ Name: 'StopsEnded', Unit: 'Count' }],
  });
  const [drain] = pointsOf('DrainDuration', { outcome: 'drained' });
  expect(drain!._aws.CloudWatchMetrics[0]).toMatchObject({ Dimensions: [['service', 'outcome']], Metrics: [{ Name: 'DrainDuration', Unit: 'Milliseconds' }] });
  // It drained after the message was released, some 300 ms into the stop.
  expect(drain!.DrainDuration).toBeGreaterThanOrEqual(300);
  expect(drain!.DrainDuration).toBeLessThan(20_000);
  expect(pointsOf('MessagesEnded', { outcome: 'completed' })).toHaveLength(1);
  expect(pointsOf('RuntimeLatency', { runtime: 'echo' })).toHaveLength(1);
});

it('a force stop over running work: the message interrupted, the stop forced, and a refused admission', async () => {
  const agentId = await createAgent(app().api, { settings: { gated: true } }, true);
  await running(agentId);
  expect((await app().api('POST', `/agents/${agentId}/stop`, { graceful: false })).status).toBe(200);
  const refused = await app().api('POST', `/agents/${agentId}/messages`, { text: 'too late' });
  expect(refused.status).toBe(409);

  const [interrupted] = pointsOf('MessagesEnded', { outcome: 'interrupted' });
  expect(interrupted).toMatchObject({ service: 'agents', outcome: 'interrupted', MessagesEnded: 1 });
  expect(interrupted!._aws.CloudWatchMetrics[0]!.Dimensions).toEqual([['service', 'outcome']]);
  expect(pointsOf('StopsEnded', { outcome: 'forced', reason: 'api' })).toHaveLength(1);
  expect(pointsOf('AdmissionsRefused', { reason: refused.body.code })).toHaveLength(1);
});
