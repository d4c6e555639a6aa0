import { intEnv } from '../functions/agents/config.js';
import { A2AStandIn } from './a2a-agent.js';

/**
 * `npm run a2a:standin`: an A2A 1.0 agent on loopback (the SDK's own server) that does what each
 * message says (`slow:5000`, `stubborn:5000`, `ask:<question>`, `fail:<reason>`, else an echo),
 * for trying a2a agents, their drains and cancels under `npm start`. A2A_STANDIN_PORT picks its
 * port (4020).
 */
const port = intEnv(process.env, 'A2A_STANDIN_PORT', 4020, 1, 65_535);
const agent = await new A2AStandIn().start(port).catch((err: NodeJS.ErrnoException) => {
  process.stderr.write(err.code === 'EADDRINUSE' ? `Port ${port} is in use: set A2A_STANDIN_PORT to another port.\n` : `Could not start: ${err.message}\n`);
  process.exit(1);
});
process.stdout.write(
  `A2A agent on ${agent.url} (card at ${agent.url}/.well-known/agent-card.json). An agent on it:\n` +
    `  {"name":"a2a-demo","runtime":{"type":"a2a","url":"${agent.url}"}}\n` +
    'Messages: "slow:5000" works 5 s and honours a cancel, "stubborn:5000" ignores one, "ask:<question>" waits on you, "fail:<reason>" fails.\n',
);
const stop = () => void agent.close().then(() => process.exit(0));
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
