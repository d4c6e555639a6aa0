import { deps } from '../adapters/deps.js';
import { createAgent } from '../agents/lifecycle.js';
import { createAgentSchema, toAgent } from '../agents/model.js';
import { httpRoute, ok } from './middleware.js';

export const handler = httpRoute({ body: createAgentSchema }, async ({ body }) => {
  const agent = await createAgent(deps(), body);
  // The signing secret is shown here, once (and on rotation): never by GET, a log line or an event.
  return ok({ ...toAgent(agent, deps()), signingSecret: agent.signingSecret }, {
    statusCode: 201,
    message: 'Agent created',
    headers: { Location: `/agents/${agent.agentId}`, ETag: `"${agent.version}"` },
  });
});
