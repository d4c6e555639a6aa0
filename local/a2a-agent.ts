import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import express from 'express';
import { A2A_PROTOCOL_VERSION, AGENT_CARD_PATH, type AgentCard, type Message, type Part, Role, TaskState } from '@a2a-js/sdk';
import { AgentEvent, type AgentExecutor, DefaultRequestHandler, type ExecutionEventBus, InMemoryTaskStore, type RequestContext } from '@a2a-js/sdk/server';
import { agentCardHandler, jsonRpcHandler, UserBuilder } from '@a2a-js/sdk/server/express';

/**
 * An A2A 1.0 agent on loopback, the SDK's own server (DefaultRequestHandler, InMemoryTaskStore,
 * the express JSON-RPC handler), doing what a message's text says:
 * - `slow:<ms>`: works that long, then completes; honours a cancel within 20 ms;
 * - `stubborn:<ms>`: works that long and ignores a cancel;
 * - `ask:<question>`: waits on the user (INPUT_REQUIRED) with the question; the next message
 *   on that task completes it with "thanks for <text>";
 * - `fail:<reason>`: fails with the reason; `fail-at-length:<n>`: with a reason of n characters;
 * - `leak`: fails with a message that quotes the credential headers of the call (an endpoint
 *   that echoes its request in its errors; `quoting` does the same in a JSON-RPC error or an
 *   HTTP 401 body for every call);
 * - anything else: completes at once with an artifact "echo: <text>".
 * It records what it was sent: the contexts, the cancels, the headers of each call.
 */
export class A2AStandIn {
  readonly contexts: string[] = [];
  readonly cancels: string[] = [];
  readonly headers: Record<string, string | string[] | undefined>[] = [];
  readonly executed: { taskId: string; text: string; continued: boolean }[] = [];
  /** Answers every call with an error quoting its credential headers: a JSON-RPC error, or an HTTP 401. */
  quoting: 'rpc' | 'http' | undefined;
  /** Replaces the card served (or serves a status), to see what the service makes of it. */
  card: ((card: AgentCard) => unknown) | { status: number } | undefined;
  private server!: Server;
  private readonly cancelled = new Set<string>();
  url = '';

  async start(port = 0): Promise<this> {
    const app = express();
    app.use((req, _res, next) => {
      if (req.method === 'POST') this.headers.push({ ...req.headers });
      next();
    });
    app.post('/', express.json(), (req, res, next) => {
      if (!this.quoting) return next();
      const quoted = `refused, you sent ${this.credentials()}`;
      if (this.quoting === 'http') return void res.status(401).type('text/plain').send(quoted);
      res.json({ jsonrpc: '2.0', id: (req.body as { id?: unknown }).id ?? null, error: { code: -32603, message: quoted } });
    });
    await new Promise<void>((resolve, reject) => {
      this.server = app.listen(port, '127.0.0.1', (err) => (err ? reject(err) : resolve()));
    });
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    const handler = new DefaultRequestHandler(this.agentCard(), new InMemoryTaskStore(), this.executor());
    app.get(`/${AGENT_CARD_PATH}`, async (_req, res, next) => {
      const card = this.card;
      if (!card) return next();
      if ('status' in card) return void res.status(card.status).json({ error: 'no card here' });
      res.json(card(await handler.getAgentCard()));
    });
    app.use(`/${AGENT_CARD_PATH}`, agentCardHandler({ agentCardProvider: handler }));
    app.use(jsonRpcHandler({ requestHandler: handler, userBuilder: UserBuilder.noAuthentication }));
    return this;
  }

  /** The credential headers of the last call, as an endpoint that quotes its request would. */
  private credentials(): string {
    const last = this.headers.at(-1) ?? {};
    return `authorization: ${String(last.authorization)}, x-api-key: ${String(last['x-api-key'])}`;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private agentCard(): AgentCard {
    return {
      name: 'A2A stand-in',
      description: 'Does what the message says',
      supportedInterfaces: [{ url: `${this.url}/`, protocolBinding: 'JSONRPC', tenant: '', protocolVersion: A2A_PROTOCOL_VERSION }],
      provider: undefined,
      version: '2.1.0',
      capabilities: { streaming: false, pushNotifications: false, extensions: [], extendedAgentCard: false },
      securitySchemes: {},
      securityRequirements: [],
      defaultInputModes: ['text'],
      defaultOutputModes: ['text'],
      skills: [{ id: 'echo', name: 'Echo', description: 'Says it back', tags: [], examples: [], inputModes: ['text'], outputModes: ['text'], securityRequirements: [] }],
      documentationUrl: '',
      signatures: [],
    } as AgentCard;
  }

  private executor(): AgentExecutor {
    const text = (value: string): Part => ({ content: { $case: 'text', value }, metadata: undefined, filename: '', mediaType: 'text/plain' });
    const message = (taskId: string, contextId: string, value: string): Message => ({
      role: Role.ROLE_AGENT,
      messageId: crypto.randomUUID(),
      parts: [text(value)],
      taskId,
      contextId,
      extensions: [],
      metadata: {},
      referenceTaskIds: [],
    });
    return {
      cancelTask: async (taskId: string) => {
        this.cancels.push(taskId);
        this.cancelled.add(taskId);
      },
      execute: async (ctx: RequestContext, bus: ExecutionEventBus) => {
        const { taskId, contextId } = ctx;
        const said = ctx.userMessage.parts.map((p) => (p.content?.$case === 'text' ? p.content.value : '')).join('');
        this.contexts.push(contextId);
        this.executed.push({ taskId, text: said, continued: ctx.task !== undefined });
        const status = (state: TaskState, value?: string) =>
          bus.publish(
            AgentEvent.statusUpdate({
              taskId,
              contextId,
              status: { state, timestamp: new Date().toISOString(), message: value === undefined ? undefined : message(taskId, contextId, value) },
              metadata: {},
            }),
          );
        bus.publish(
          AgentEvent.task(
            ctx.task ?? {
              id: taskId,
              contextId,
              status: { state: TaskState.TASK_STATE_SUBMITTED, timestamp: new Date().toISOString(), message: undefined },
              artifacts: [],
              history: [ctx.userMessage],
              metadata: {},
            },
          ),
        );
        status(TaskState.TASK_STATE_WORKING);
        const [verb, arg = ''] = said.split(/:(.*)/s);
        if (ctx.task) return status(TaskState.TASK_STATE_COMPLETED, `thanks for ${said}`);
        if (verb === 'ask') return status(TaskState.TASK_STATE_INPUT_REQUIRED, arg);
        if (verb === 'fail') return status(TaskState.TASK_STATE_FAILED, arg);
        if (verb === 'fail-at-length') return status(TaskState.TASK_STATE_FAILED, 'x'.repeat(Number(arg)));
        if (verb === 'leak') return status(TaskState.TASK_STATE_FAILED, `cannot go on with ${this.credentials()}`);
        if (verb === 'slow' || verb === 'stubborn') {
          const until = Date.now() + Number(arg);
          while (Date.now() < until) {
            if (verb === 'slow' && this.cancelled.has(taskId)) return status(TaskState.TASK_STATE_CANCELED, 'cancelled as asked');
            await new Promise((resolve) => setTimeout(resolve, 20));
          }
        }
        bus.publish(
          AgentEvent.artifactUpdate({
            taskId,
            contextId,
            artifact: { artifactId: crypto.randomUUID(), name: 'reply', description: '', parts: [text(verb === 'slow' || verb === 'stubborn' ? 'done' : `echo: ${said}`)], metadata: {}, extensions: [] },
            append: false,
            lastChunk: true,
            metadata: {},
          }),
        );
        status(TaskState.TASK_STATE_COMPLETED);
      },
    };
  }
}
