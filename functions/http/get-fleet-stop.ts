import { deps } from '../adapters/deps.js';
import { toFleetView } from '../agents/fleet-model.js';
import { getFleetStop } from '../agents/fleet.js';
import { httpRoute, ok } from './middleware.js';

/** GET /fleet-stops/{operationId}: a fleet stop's progress (counts, failures, done). */
export const handler = httpRoute({}, async ({ params }) => ok(toFleetView(await getFleetStop(deps(), params.operationId!))));
