import { deps } from '../adapters/deps.js';
import { countAgents } from '../agents/lifecycle.js';
import { httpRoute, ok } from './middleware.js';

export const handler = httpRoute({}, async () => ok(await countAgents(deps())));
