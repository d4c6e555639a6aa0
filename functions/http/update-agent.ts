import { deps } from '../adapters/deps.js';
import { ValidationError } from '../agents/errors.js';
import { updateAgent } from '../agents/lifecycle.js';
import { toAgent, updateAgentSchema } from '../agents/model.js';
import { httpRoute, ok } from './middleware.js';

/** If-Match carries the version from the ETag: `"3"`, `W/"3"` or `3`. */
function parseIfMatch(value: string | undefined): number | undefined {
  if (value === undefined || value.trim() === '*') return undefined;
  const m = /^\s*(?:W\/)?"?(\d{1,15})"?\s*$/.exec(value);
  if (!m) throw new ValidationError('Header "If-Match" must be the agent\'s ETag, e.g. "3"');
  return Number(m[1]);
}

export const handler = httpRoute({ body: updateAgentSchema }, async ({ body, params, header }) => {
  const agent = await updateAgent(deps(), params.agentId!, body, parseIfMatch(header('if-match')));
  return ok(toAgent(agent), { message: 'Agent updated', headers: { ETag: `"${agent.version}"` } });
});
