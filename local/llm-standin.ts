import { intEnv } from '../functions/agents/config.js';
import { OpenAiStandIn } from './openai-standin.js';

/**
 * `npm run llm:standin`: an OpenAI-compatible chat-completions endpoint on loopback that answers
 * every message with "reply N to: <text>", for trying llm agents under `npm start` with no model
 * and no key. LLM_STANDIN_PORT picks its port (4010).
 */
const port = intEnv(process.env, 'LLM_STANDIN_PORT', 4010, 1, 65_535);
const standIn = await new OpenAiStandIn().start(port).catch((err: NodeJS.ErrnoException) => {
  process.stderr.write(err.code === 'EADDRINUSE' ? `Port ${port} is in use: set LLM_STANDIN_PORT to another port.\n` : `Could not start: ${err.message}\n`);
  process.exit(1);
});
process.stdout.write(
  `OpenAI-compatible stand-in on ${standIn.url} (keyless). An agent on it:\n` +
    `  {"name":"thinker","runtime":{"type":"llm","baseUrl":"${standIn.url}","model":"stand-in"}}\n`,
);
const stop = () => void standIn.stop().then(() => process.exit(0));
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
