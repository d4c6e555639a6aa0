import { deps } from '../adapters/deps.js';
import { ValidationError } from '../agents/errors.js';
import { updateAgent } from '../agents/lifecycle.js';
import { IF_MATCH_PATTERN, toAgent, updateAgentSchema } from '../agents/model.js';
import { httpRoute, ok } from './middleware.js';

/** If-Match carries the version from the ETag: `"3"`, `W/"3"`, `3` or a GET's `"3-<hash>"`. */
function parseIfMatch(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const m = IF_MATCH_PATTERN.exec(value);
  if (!m) throw new ValidationError('Header "If-Match" must be the agent\'s ETag, e.g. "3" (or *)');
  return m[1] === undefined ? undefined : Number(m[1]);
}

export const handler = httpRoute({ body: updateAgentSchema }, async ({ body, params, header }) => {
  const agent = await updateAgent(deps(), params.agentId!, body, parseIfMatch(header('if-match')));
  return ok(toAgent(agent, deps()), { message: 'Agent updated', headers: { ETag: `"${agent.version}"` } });
});
