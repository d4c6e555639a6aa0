import { deps } from '../adapters/deps.js';
import { ValidationError } from '../agents/errors.js';
import { fleetStopSchema, idempotencyKeySchema, toFleetView } from '../agents/fleet-model.js';
import { startFleetStop } from '../agents/fleet.js';
import { httpRoute, ok } from './middleware.js';

/** POST /agents/stop: one fleet stop operation, run by its workflow; 202 with where to follow it. */
export const handler = httpRoute({ body: fleetStopSchema }, async ({ body, header }) => {
  const rawKey = header('idempotency-key');
  let key: string | undefined;
  if (rawKey !== undefined) {
    const parsed = idempotencyKeySchema.safeParse(rawKey);
    if (!parsed.success) throw new ValidationError(`Header "Idempotency-Key" ${parsed.error.issues[0]!.message}`);
    key = parsed.data;
  }
  const { op, created } = await startFleetStop(deps(), body, key);
  const done = op.status !== 'running';
  return ok(toFleetView(op), {
    statusCode: done ? 200 : 202,
    message: created ? 'Fleet stop started' : 'Fleet stop already requested with this Idempotency-Key',
    headers: { Location: `/fleet-stops/${op.operationId}`, ...(!created && { 'Idempotent-Replayed': 'true' }) },
  });
});
