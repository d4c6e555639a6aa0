// Classic zod (for .describe() and toJSONSchema) over the handlers' zod/mini schemas: this module
// builds the documentation locally and is in no function's bundle.
import { CORRELATION_ID } from '../adapters/observability.js';
import * as z from 'zod';
import {
  AGENT_STATUSES,
  IF_MATCH_PATTERN,
  type Agent,
  type MessageRecord,
  type StopRecord,
  createAgentSchema,
  listQuerySchema,
  messageIdSchema,
  pageQuerySchema,
  runtimeSchema,
  sendMessageSchema,
  stopAgentSchema,
  updateAgentSchema,
} from '../agents/model.js';
import { fleetStopSchema, idempotencyKeySchema, operationIdSchema, toFleetView } from '../agents/fleet-model.js';
import { routes, type Route } from './routes.js';

/**
 * The OpenAPI 3.1 document, generated from the same zod schemas the handlers validate with and
 * the same route table the server and CDK use, so it cannot drift (`npm run docs` writes it to
 * docs/openapi.json; a test fails when the committed file differs).
 */

/** The named schemas: one entry each under components.schemas, referenced everywhere else. */
const named = z.registry<{ id: string }>();

const outcome = z
  .enum(['drained', 'timed_out', 'forced'])
  .describe(
    'drained: the stop cut nothing; every message in flight when it began ended on its own before the deadline, completed or failed ' +
      '(a runtime error, or a worker that stopped responding: see failed). timed_out: the timeout cut messages short (interrupted). ' +
      'forced: a force stop, which cuts whatever is in flight.',
  );
const reason = z.enum(['api', 'idle', 'fleet']);
const operationId = z.string().optional().describe('The fleet stop this stop was part of (reason fleet)');

const agentSchema = z
  .object({
    agentId: z.guid(),
    name: z.string(),
    description: z.string().optional(),
    status: z.enum(AGENT_STATUSES),
    settings: z.record(z.string(), z.unknown()),
    runtime: runtimeSchema.check(
      z.meta({
        examples: [
          { type: 'http', url: 'https://agents.example.com/hooks/agent', timeoutMs: 60000 },
          { type: 'llm', baseUrl: 'https://api.openai.com/v1', model: 'gpt-4o-mini', system: 'You are terse.', apiKey: { env: 'LLM_API_KEY' }, memoryTurns: 20 },
          { type: 'echo', delayMs: 3000 },
          { type: 'a2a', url: 'https://agents.example.com/travel', auth: { token: { env: 'A2A_TOKEN_TRAVEL' } } },
        ],
      }),
    ),
    agentCard: z
      .object({
        name: z.string(),
        version: z.string(),
        description: z.string().optional(),
        skills: z.array(z.object({ id: z.string(), name: z.string(), description: z.string().optional() })),
        endpoint: z.string().describe('The JSON-RPC endpoint the card names, where messages go'),
        protocolVersion: z.string(),
      })
      .optional()
      .describe("An a2a agent's Agent Card as read when its runtime was set (create or PATCH); start reads it again and refuses a card gone or unusable"),
    idleTimeoutMs: z.number().int().nullable(),
    inFlight: z.number().int().describe('Messages in flight: the number of unexpired leases'),
    version: z.number().int().describe('Optimistic-lock counter: If-Match on PATCH compares it (the ETag of a GET is `"<version>-<hash>"`)'),
    createdAt: z.number().int(),
    updatedAt: z.number().int(),
    startedAt: z.number().int().optional(),
    stoppedAt: z.number().int().optional(),
    lastActivityAt: z.number().int().optional(),
    stop: z
      .object({
        stopId: z.string(),
        requestedAt: z.number().int(),
        deadline: z.number().int(),
        graceful: z.boolean(),
        timeoutMs: z.number().int(),
        reason,
        operationId,
        correlationId: z.string().optional().describe('The X-Request-Id of the request that began it: its workflow, its events and their log lines carry it'),
        failure: z.object({ error: z.string(), cause: z.string(), at: z.number().int() }).optional(),
      })
      .optional()
      .describe('The stop in progress, while status is stopping'),
    lastStop: z
      .object({ stopId: z.string(), outcome, reason, operationId, requestedAt: z.number().int(), stoppedAt: z.number().int(), interrupted: z.number().int() })
      .optional(),
  })
  .register(named, { id: 'Agent' });

const messageSchema = z
  .object({
    agentId: z.guid(),
    messageId: z.string(),
    status: z.enum(['processing', 'completed', 'failed', 'interrupted']),
    text: z.string(),
    metadata: z.record(z.string(), z.unknown()).optional(),
    reply: z.string().optional(),
    error: z.string().optional(),
    stopId: z.string().optional().describe('The stop that interrupted it'),
    task: z
      .object({
        id: z.string().describe("The a2a agent's task id"),
        state: z.string().describe('The task state as last seen, in the protocol\'s words: working, completed, input-required (the reply is the agent\'s question; the next message continues the task), failed...'),
        cancel: z.string().optional().describe('Set when a stop cut it: canceled (the agent confirmed), not honoured (the agent did not cancel within the bound; its late result is discarded), gone, or the final state it had reached'),
      })
      .optional()
      .describe("An a2a agent's task for this message"),
    createdAt: z.number().int(),
    completedAt: z.number().int().optional(),
  })
  .register(named, { id: 'Message' });

const stopRecordSchema = z
  .object({
    agentId: z.guid(),
    stopId: z.string(),
    outcome,
    reason,
    operationId,
    graceful: z.boolean(),
    timeoutMs: z.number().int(),
    requestedAt: z.number().int(),
    deadline: z.number().int(),
    stoppedAt: z.number().int(),
    durationMs: z.number().int(),
    drained: z.number().int(),
    drainedMessageIds: z.array(z.string()).optional().describe('The messages in flight when the stop began that finished (completed or failed) before it ended'),
    interrupted: z.number().int(),
    interruptedMessageIds: z.array(z.string()),
    failed: z.number().int().optional().describe('Messages in flight whose worker stopped responding (their leases expired): recorded failed, not cut by this stop'),
    failedMessageIds: z.array(z.string()).optional(),
    stateSaved: z.boolean().optional().describe("The agent's runtime saved its state at this stop (an llm agent's conversation; an http agent's worker answered stop). A force stop tells the runtime after its commit: false"),
    closeError: z.string().optional().describe('Why the runtime could not be told to stop: it was tried until the deadline plus the close grace, and the stop ended without it'),
  })
  .register(named, { id: 'StopRecord' });

const count = (what: string) => z.number().int().describe(what);
const fleetStopViewSchema = z
  .object({
    operationId: z.string(),
    status: z.enum(['running', 'completed', 'failed']),
    done: z.boolean().describe('True once the operation ended (completed or failed): no count changes after'),
    graceful: z.boolean(),
    timeout: z.number().int(),
    concurrency: z.number().int(),
    selector: z.object({ status: z.enum(['active', 'stopping']).optional(), agentIds: z.array(z.guid()).optional() }),
    counts: z.object({
      selected: count('Agents the selector matched'),
      inProgress: count('Selected agents whose stop has not ended yet'),
      stopped: count('Agents stopped: drained + timed_out + forced'),
      drained: count('Stops that cut nothing: every message in flight ended on its own (completed or failed) before the deadline'),
      timed_out: count('Stops whose timeout cut messages short'),
      forced: count('Force stops'),
      failed: count('Agents whose stop failed (see failures)'),
      skipped: count('Agents not running when the operation reached them, or deleted'),
    }),
    failures: z.array(z.object({ agentId: z.guid(), error: z.string() })).describe('The first 100 failures, with reasons'),
    failure: z.object({ error: z.string(), cause: z.string() }).optional().describe('Why the operation itself failed (status failed)'),
    createdAt: z.number().int(),
    updatedAt: z.number().int(),
    completedAt: z.number().int().optional(),
  })
  .register(named, { id: 'FleetStop' });

// The documented shapes must accept what the handlers return (checked at compile time).
const _agentShape: z.input<typeof agentSchema> = {} as Agent;
const _messageShape: z.input<typeof messageSchema> = {} as MessageRecord;
const _stopShape: z.input<typeof stopRecordSchema> = {} as StopRecord;
const _fleetShape: z.input<typeof fleetStopViewSchema> = {} as ReturnType<typeof toFleetView>;
void [_agentShape, _messageShape, _stopShape, _fleetShape];

const stoppedSchema = z.object({ agentId: z.guid(), status: z.literal('inactive'), stoppedAt: z.number().int() }).register(named, { id: 'AgentStopped' });
const stoppingSchema = z
  .object({ agentId: z.guid(), status: z.literal('stopping'), stopId: z.string(), deadline: z.number().int() })
  .register(named, { id: 'AgentStopping' });
const errorSchema = z
  .object({
    success: z.literal(false),
    error: z.string().describe('A sentence a person can act on'),
    code: z.string().describe('Machine-readable error code'),
    data: z.unknown().optional(),
  })
  .register(named, { id: 'Error' });

const success = (data: z.ZodType, extra: Record<string, z.ZodType> = {}) =>
  z.object({ success: z.literal(true), message: z.string().optional(), data, ...extra });

const REF = '#/components/schemas/';
const common_ = {
  target: 'draft-2020-12',
  unrepresentable: 'any',
  // A one-variant union (the runtime union has only `echo` today) is documented as that variant.
  override: ({ jsonSchema: js }: { jsonSchema: Record<string, unknown> }) => {
    if (Array.isArray(js.oneOf) && js.oneOf.length === 1) {
      Object.assign(js, js.oneOf[0]);
      delete js.oneOf;
    }
  },
} as const;

/** JSON Schema 2020-12 (OpenAPI 3.1's dialect) of a zod schema; named schemas become $refs to components. */
function jsonSchema(schema: z.core.$ZodType, io: 'input' | 'output' = 'output'): Record<string, unknown> {
  const id = named.get(schema)?.id;
  if (id) return { $ref: `${REF}${id}` };
  const out = z.toJSONSchema(schema, { ...common_, io, metadata: named }) as Record<string, unknown>;
  delete out.$defs;
  delete out.$schema;
  return JSON.parse(JSON.stringify(out).replaceAll('#/$defs/', REF)) as Record<string, unknown>;
}

function componentSchemas(): Record<string, unknown> {
  const { schemas } = z.toJSONSchema(named, { ...common_, uri: (id) => `${REF}${id}` }) as { schemas: Record<string, Record<string, unknown>> };
  for (const schema of Object.values(schemas)) {
    delete schema.$schema;
    delete schema.$id;
    delete schema.id;
  }
  return schemas;
}

const AGENT_ID = 'f3b9c4a2-6d1e-4f7a-9b8c-2e5d7a1c0b94';
const STOP_ID = '01JQ8Z6B5N4M3K2J1H0G9F8E7D';
const OPERATION_ID = '01JQ8Z7C0D1E2F3G4H5J6K7M8N';
const FLEET_EXAMPLE = {
  operationId: OPERATION_ID,
  status: 'running',
  done: false,
  graceful: true,
  timeout: 30000,
  concurrency: 10,
  selector: { status: 'active' },
  counts: { selected: 300, inProgress: 12, stopped: 288, drained: 288, timed_out: 0, forced: 0, failed: 0, skipped: 0 },
  failures: [],
  createdAt: 1709683200000,
  updatedAt: 1709683203000,
};

type Documented = { description: string; example?: unknown; schema?: z.ZodType; headers?: Record<string, string> };
interface RouteDoc {
  summary: string;
  description?: string;
  responses: Record<number, Documented>;
}

const err = (description: string, code: string, sentence: string): Documented => ({
  description,
  schema: errorSchema,
  example: { success: false, error: sentence, code },
});
const common = {
  400: err('Bad input: malformed JSON, a wrong type, an unknown field, or an agentId that is not a UUID', 'VALIDATION_ERROR', 'Field "timeout" must be an integer'),
  401: err('No valid API key (sent with WWW-Authenticate: Bearer)', 'UNAUTHORIZED', 'A valid API key is required: send it as "Authorization: Bearer <key>"'),
  404: err('No such agent', 'AGENT_NOT_FOUND', 'Agent not found'),
  413: err('Request body over 128 KiB', 'PAYLOAD_TOO_LARGE', 'Request body is too large: the limit is 131072 bytes'),
  415: err('Body is not application/json', 'UNSUPPORTED_MEDIA_TYPE', 'Content-Type "text/plain" is not supported: send the body as application/json'),
  503: {
    ...err('The database did not answer in time or is down (Retry-After); nothing was decided, retry', 'UNAVAILABLE', 'Service temporarily unavailable: the database did not answer in time; retry in a moment'),
    headers: { 'Retry-After': 'seconds to wait before retrying' },
  },
};

/**
 * What the service answers for a request no operation matches: declared once here (and checked
 * against the server by the drift test), since no operation of the document can return them.
 */
export const fallbackResponses = {
  400: err('Bytes that are not HTTP/1.1, refused by the server before any route runs (locally; API Gateway answers these itself when deployed)', 'BAD_REQUEST', 'Request is not valid HTTP/1.1 and was not read; check its request line and headers'),
  401: { ...common[401], description: 'No valid API key: checked before the route, so an unknown path reveals nothing' },
  404: err('No route for this method and path', 'ROUTE_NOT_FOUND', 'No route for GET /agent; see the README for the API'),
  405: {
    ...err('The path exists but not with this method (Allow lists the methods it has)', 'METHOD_NOT_ALLOWED', 'PUT is not allowed on /agents; use POST, GET'),
    headers: { Allow: 'the methods the path allows' },
  },
  408: err('The request was not received in time (before any route runs)', 'REQUEST_TIMEOUT', 'The request was not received in time; send it again'),
  414: err('The request target is too long (before any route runs)', 'URI_TOO_LONG', 'Request target is too long; send large input in the body'),
  431: err('The request line and headers are over the limit (before any route runs)', 'HEADERS_TOO_LARGE', 'Request headers are too large: the request line and headers together may be at most 16384 bytes'),
};

const docs: Record<string, RouteDoc> = {
  'create-agent': {
    summary: 'Create an agent (inactive)',
    description:
      'The answer carries the agent\'s `signingSecret`, shown this once: the `http` runtime signs every request to the agent\'s worker with it ' +
      '(docs/RUNTIMES.md: Bring your own agent). `POST /agents/{agentId}/signing-secret` replaces it.',
    responses: {
      201: {
        description: 'Created; `signingSecret` is shown only here',
        schema: success(agentSchema.extend({ signingSecret: z.string().describe('whsec_...: store it in the agent\'s worker; never shown again') })),
        headers: { Location: '/agents/{agentId}', ETag: 'the version' },
      },
      400: common[400],
      409: err('An agent with that agentId exists', 'AGENT_EXISTS', `An agent with agentId ${AGENT_ID} already exists`),
    },
  },
  'list-agents': {
    summary: 'List agents, optionally by status',
    description:
      'Up to `limit` agents (default and maximum 100). The list ends when `nextCursor` is null: until then, pass it back as `cursor` for the next page ' +
      '(a page may hold fewer than `limit` agents and still not be the last).',
    responses: { 200: { description: 'A page of agents; nextCursor is null on the last page', schema: success(z.array(agentSchema), { nextCursor: z.string().nullable() }) }, 400: common[400] },
  },
  'count-agents': {
    summary: 'How many agents are in each status',
    description:
      'Counted in the status index (about 1 read unit per 120 agents). The index is eventually consistent and the three counts are read side by side, ' +
      'so an agent changing status as they are read may be missing from them or in two; they settle within a second. For a fleet view that polls, send If-None-Match.',
    responses: {
      200: {
        description: 'The counts',
        schema: success(z.object({ active: z.number().int(), stopping: z.number().int(), inactive: z.number().int(), total: z.number().int() })),
        example: { success: true, data: { active: 140, stopping: 10, inactive: 52, total: 202 } },
      },
    },
  },
  'stop-fleet': {
    summary: 'Stop many agents in one call: every agent in a status, a list of agents, or both',
    description:
      'Starts one fleet stop operation and answers 202 with it and its `Location`. Each selected agent is stopped with the one-agent stop (`graceful`, `timeout` as there), ' +
      '`concurrency` at a time, by a workflow that survives the caller and the server going away. Agents are selected when the operation reaches them. ' +
      'With `Idempotency-Key`, a repeat of the request returns the same operation (and starts nothing); the same key with another body is refused (422). ' +
      'A `Fleet Stop Completed` event is published when it ends.',
    responses: {
      202: {
        description: 'Started (or, with an Idempotency-Key already used for this request, the operation it started, with Idempotent-Replayed: true)',
        schema: success(fleetStopViewSchema),
        headers: { Location: '/fleet-stops/{operationId}', 'Idempotent-Replayed': 'true when this answers a repeated Idempotency-Key' },
        example: { success: true, message: 'Fleet stop started', data: { ...FLEET_EXAMPLE, counts: { selected: 0, inProgress: 0, stopped: 0, drained: 0, timed_out: 0, forced: 0, failed: 0, skipped: 0 } } },
      },
      200: { description: 'A repeated Idempotency-Key whose operation already ended', schema: success(fleetStopViewSchema) },
      400: err('Bad input: no selector, a bad status or agentId, concurrency out of range, a malformed Idempotency-Key', 'VALIDATION_ERROR', 'Request body must select agents: give "status" ("active" or "stopping"), "agentIds", or both'),
      422: err('The Idempotency-Key was used for a different request', 'IDEMPOTENCY_KEY_REUSED', `This Idempotency-Key already started fleet stop ${OPERATION_ID} with a different request; send a new key for a new request`),
      503: err('The operation could not be started (nothing was stopped), or the store is down; retry (Retry-After)', 'UNAVAILABLE', 'The fleet stop could not be started (its workflow did not start); nothing was stopped, retry the request'),
    },
  },
  'get-fleet-stop': {
    summary: "A fleet stop's progress: counts by outcome, failures with reasons, done",
    responses: {
      200: { description: 'The operation', schema: success(fleetStopViewSchema), example: { success: true, data: FLEET_EXAMPLE } },
      400: err('The operationId is malformed', 'VALIDATION_ERROR', 'Path parameter "operationId" must be an operation id as returned by POST /agents/stop, got "x"'),
      404: err('No such operation (or it expired with the records retention)', 'OPERATION_NOT_FOUND', "Fleet stop operation not found (operations are kept for the records' retention period)"),
    },
  },
  'get-agent': { summary: 'Get an agent', responses: { 200: { description: 'The agent', schema: success(agentSchema), headers: { ETag: 'the representation: `"<version>-<hash>"` (If-Match on PATCH compares the version; If-None-Match the whole tag)' } }, 400: common[400], 404: common[404] } },
  'update-agent': {
    summary: 'Update an agent',
    description: 'runtime and settings can change only while the agent is inactive. If-Match pins the version.',
    responses: {
      200: { description: 'Updated', schema: success(agentSchema), headers: { ETag: 'the new version' } },
      400: common[400],
      404: common[404],
      409: err('Runtime or settings changed while the agent runs', 'AGENT_NOT_INACTIVE', 'Agent is active: runtime and settings can only be changed while it is inactive; stop it first'),
      412: err('If-Match names an old version', 'VERSION_MISMATCH', 'Agent has changed: If-Match names an old version, the current version is 3; get the agent and retry'),
    },
  },
  'delete-agent': {
    summary: 'Delete an inactive agent and its records',
    responses: { 200: { description: 'Deleted', schema: success(z.object({ agentId: z.guid() })) }, 400: common[400], 404: common[404], 409: err('The agent is running', 'AGENT_NOT_INACTIVE', 'Agent is active: stop it before deleting it') },
  },
  'start-agent': {
    summary: 'Start an agent (inactive -> active)',
    responses: {
      200: { description: 'Started', schema: success(agentSchema) },
      400: common[400],
      404: common[404],
      409: err(
        'Already running or stopping, or its runtime is not allowed now (an llm key no longer bound to its base URL: RUNTIME_NOT_ALLOWED)',
        'AGENT_ALREADY_RUNNING',
        'Agent is already running',
      ),
    },
  },
  'stop-agent': {
    summary: 'Stop an agent, gracefully (drain in-flight messages up to the timeout) or at once',
    description:
      'A graceful stop refuses new messages, waits for those in progress (up to `timeout` ms), saves state, tells the runtime to close its connections and marks the agent inactive. ' +
      'The request waits for the outcome up to the stop window (25 s); `Prefer: wait=N` shortens the wait, `Prefer: respond-async` skips it. A second graceful stop joins the running one.',
    responses: {
      200: {
        description: 'Stopped (drained, or forced)',
        schema: success(stoppedSchema),
        example: { success: true, message: 'Agent stopped successfully', data: { agentId: AGENT_ID, status: 'inactive', stoppedAt: 1709683200000 } },
      },
      202: {
        description: 'Still draining when the wait ended; poll the agent',
        schema: success(stoppingSchema),
        headers: { Location: '/agents/{agentId}' },
        example: { success: true, message: 'Agent is stopping', data: { agentId: AGENT_ID, status: 'stopping', stopId: STOP_ID, deadline: 1709683230000 } },
      },
      400: common[400],
      404: common[404],
      408: {
        description: 'The timeout cut in-flight messages short; the agent IS inactive (see data)',
        schema: errorSchema,
        example: { success: false, error: 'Graceful shutdown timed out', code: 'STOP_TIMED_OUT', data: { agentId: AGENT_ID, status: 'inactive', stoppedAt: 1709683230000, stopId: STOP_ID, interrupted: 1 } },
      },
      409: err('The agent is not running', 'AGENT_NOT_RUNNING', 'Agent is not running'),
      429: err('A force stop kept meeting concurrent transitions of the agent (Retry-After)', 'AGENT_BUSY', 'Agent is busy with concurrent requests; retry after 1 s'),
      500: err('The drain workflow could not start or failed past its retries; a force stop recovers', 'STOP_FAILED', 'Failed to stop agent runtime'),
    },
  },
  'send-message': {
    summary: "Send a message: admit it, run it through the agent's runtime, return the reply",
    description:
      'Without `Prefer`, the message runs inside this request (work that fits the API window, up to 25 s). ' +
      'With `Prefer: respond-async` it is handed to the worker (up to 15 minutes of work) and answered 202 at once with `Location`; ' +
      'with `Prefer: wait=N` the request waits up to N seconds for the outcome and answers 202 if the message still runs. ' +
      '`Message Completed`, `Message Failed` and `Message Interrupted` events are published on the lifecycle bus.',
    responses: {
      200: { description: 'Processed (or already processed: same messageId)', schema: success(messageSchema) },
      202: {
        description: 'Accepted: running on the worker; get it at Location (an asynchronous retry of the same messageId answers the same)',
        schema: success(messageSchema),
        headers: { Location: '/agents/{agentId}/messages/{messageId}' },
        example: { success: true, message: 'Message accepted', data: { agentId: AGENT_ID, messageId: '01J2ZK4WQ8N3X5V7B9C1D3F5G7', status: 'processing', text: 'hello', createdAt: 1709683200000 } },
      },
      400: err('Invalid body, or work too long for a synchronous request (send it with Prefer: respond-async)', 'ASYNC_REQUIRED', "This agent's work takes 60000 ms, longer than a synchronous request can wait (25000 ms); send it with the header \"Prefer: respond-async\" and get the message later"),
      404: common[404],
      409: err('Not running, stopping, or the message was interrupted by a stop', 'AGENT_NOT_RUNNING', 'Agent is not running'),
      429: err('Too many messages in flight, or the agent is busy with concurrent requests (Retry-After)', 'TOO_MANY_IN_FLIGHT', 'Agent already has 50 messages in flight; retry after 1 s'),
      502: err("The agent's runtime failed; the message is recorded failed", 'RUNTIME_FAILED', 'Agent runtime failed to process message m-1: timeout'),
      503: err('The store cannot be reached, or the message could not be handed to the worker (it is recorded failed); retry (Retry-After)', 'UNAVAILABLE', 'Message m-1 could not be handed to a worker and was recorded as failed; send it again with a new messageId'),
    },
  },
  'rotate-signing-secret': {
    summary: "Replace the agent's signing secret (shown once); the old one stops working at once",
    responses: {
      200: {
        description: 'The new secret',
        schema: success(z.object({ agentId: z.guid(), signingSecret: z.string() })),
        example: { success: true, message: 'Signing secret rotated: store it now, it is not shown again', data: { agentId: AGENT_ID, signingSecret: 'whsec_Qk3...' } },
      },
      400: common[400],
      404: common[404],
    },
  },
  'list-messages': { summary: "An agent's message history", responses: { 200: { description: 'A page of messages', schema: success(z.array(messageSchema), { nextCursor: z.string().nullable().describe('null on the last page') }) }, 400: common[400], 404: common[404] } },
  'get-message': { summary: 'One message with its status', responses: { 200: { description: 'The message', schema: success(messageSchema) }, 400: common[400], 404: err('No such agent or message', 'AGENT_NOT_FOUND', 'Message not found') } },
  health: {
    summary: 'Health check: the API answers (no key needed, no data)',
    description: 'For load balancers and uptime checks. It reads nothing, so it says the API answers, not that the store does.',
    responses: {
      200: { description: 'The API answers', schema: success(z.object({ status: z.literal('ok') })), example: { success: true, data: { status: 'ok' } } },
      431: fallbackResponses[431],
    },
  },
  'list-stops': { summary: "An agent's stop history, newest first", responses: { 200: { description: 'A page of stop records', schema: success(z.array(stopRecordSchema), { nextCursor: z.string().nullable().describe('null on the last page') }) }, 400: common[400], 404: common[404] } },
};

const bodies: Partial<Record<string, z.core.$ZodType>> = {
  'create-agent': createAgentSchema,
  'update-agent': updateAgentSchema,
  'stop-agent': stopAgentSchema,
  'stop-fleet': fleetStopSchema,
  'send-message': sendMessageSchema,
};
/** What a body's refinement requires that its JSON Schema cannot say by itself. */
const bodyRules: Partial<Record<string, Record<string, unknown>>> = {
  'stop-fleet': { allOf: [{ anyOf: [{ required: ['status'] }, { required: ['agentIds'] }] }] },
};
const queries: Partial<Record<string, z.core.$ZodType>> = {
  'list-agents': listQuerySchema,
  'list-messages': pageQuerySchema,
  'list-stops': pageQuerySchema,
};
const requestExamples: Partial<Record<string, unknown>> = {
  'create-agent': { name: 'demo', runtime: { type: 'http', url: 'https://agents.example.com/hooks/agent', timeoutMs: 60000 } },
  'stop-agent': { graceful: true, timeout: 10000 },
  'stop-fleet': { status: 'active', graceful: true, timeout: 30000, concurrency: 10 },
  'send-message': { text: 'hello' },
  'update-agent': { name: 'renamed' },
};

const camel = (handler: string) => handler.replace(/-(\w)/g, (_, c: string) => c.toUpperCase());

/** Every answer of a handler carries the request's correlation id. */
const REQUEST_ID_HEADER = { 'X-Request-Id': 'the correlation id of this request (the one given, else API Gateway\'s request id): its log lines, workflow and events carry it' };

const responseObject = (r: Documented) => ({
  description: r.description,
  headers: Object.fromEntries(Object.entries({ ...r.headers, ...REQUEST_ID_HEADER }).map(([h, d]) => [h, { description: d, schema: { type: 'string' } }])),
  content: { 'application/json': { schema: jsonSchema(r.schema ?? errorSchema), ...(r.example !== undefined && { example: r.example }) } },
});

function operation(route: Route): Record<string, unknown> {
  const doc = docs[route.handler];
  if (!doc) throw new Error(`No documentation for route ${route.method} ${route.path}`);
  const body = bodies[route.handler];
  const parameters: Record<string, unknown>[] = [];
  if (route.path.includes('{agentId}')) parameters.push({ name: 'agentId', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } });
  if (route.path.includes('{messageId}')) parameters.push({ name: 'messageId', in: 'path', required: true, schema: jsonSchema(messageIdSchema) });
  if (route.path.includes('{operationId}')) parameters.push({ name: 'operationId', in: 'path', required: true, schema: jsonSchema(operationIdSchema) });
  if (route.handler === 'stop-fleet') {
    parameters.push({ name: 'Idempotency-Key', in: 'header', required: false, description: 'Makes the request safe to repeat: the same key returns the same operation (1 to 255 printable characters, a UUID say)', schema: jsonSchema(idempotencyKeySchema) });
  }
  const query = queries[route.handler];
  if (query) {
    const shape = jsonSchema(query, 'input') as { properties: Record<string, Record<string, unknown>> };
    for (const [name, schema] of Object.entries(shape.properties)) parameters.push({ name, in: 'query', required: false, schema });
  }
  if (route.handler === 'update-agent') {
    parameters.push({ name: 'If-Match', in: 'header', required: false, description: 'The ETag this update is based on, e.g. "3" or a GET\'s "3-<hash>" (or `*`: any version); 412 if the agent\'s version changed since', schema: { type: 'string', pattern: IF_MATCH_PATTERN.source } });
  }
  if (route.method === 'GET' && !route.public) {
    parameters.push({ name: 'If-None-Match', in: 'header', required: false, description: 'The ETag of an earlier answer: 304 with no body while the answer is unchanged (for polling)', schema: { type: 'string' } });
  }
  if (route.handler === 'stop-agent' || route.handler === 'send-message') {
    parameters.push({ name: 'Prefer', in: 'header', required: false, description: '`wait=N` waits at most N seconds for the outcome; `respond-async` answers 202 at once', schema: { type: 'string', examples: ['respond-async', 'wait=5'] } });
  }
  parameters.push({ name: 'X-Request-Id', in: 'header', required: false, description: 'A correlation id for this request (1 to 128 letters, digits or `._:-`; anything else is ignored): the logs of every function it reaches, its stop workflow and its events carry it', schema: { type: 'string', pattern: CORRELATION_ID.source } });
  const responses: Record<string, unknown> = {};
  // Every operation but a public one can meet a missing key, a store outage and a request body over
  // the limit (the size is checked before routing); an operation with a body also checks its type and shape.
  const generic = route.public ? {} : { 401: common[401], 413: common[413], 503: common[503], ...(body && { 400: common[400], 415: common[415] }) };
  for (const [status, r] of Object.entries<Documented>({ ...generic, ...doc.responses })) {
    responses[status] = responseObject(r);
  }
  if (route.method === 'GET' && !route.public) {
    const ok = responses[200] as { headers: Record<string, unknown> };
    ok.headers.ETag ??= { description: 'the representation (a hash of the body): send it back as If-None-Match', schema: { type: 'string' } };
    responses[304] = { description: 'Not modified: If-None-Match names the current ETag (no body)', headers: { ETag: ok.headers.ETag, ...responseObject({ description: '' }).headers } };
  }
  return {
    operationId: camel(route.handler),
    summary: doc.summary,
    ...(doc.description && { description: doc.description }),
    tags: [route.public ? 'Service' : route.path.includes('/messages') ? 'Messages' : /(^|\/)(fleet-)?stops?(\/|$)/.test(route.path) ? 'Stopping' : 'Agents'],
    ...(route.public && { security: [] }),
    parameters,
    ...(body && {
      requestBody: {
        required: route.handler !== 'stop-agent',
        content: { 'application/json': { schema: { ...jsonSchema(body, 'input'), ...bodyRules[route.handler] }, ...(requestExamples[route.handler] !== undefined && { example: requestExamples[route.handler] }) } },
      },
    }),
    responses,
  };
}

export function buildOpenApi(): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    paths[route.path] ??= {};
    paths[route.path]![route.method.toLowerCase()] = operation(route);
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Agents lifecycle API',
      version: '0.1.0',
      description:
        'Create, start, message and stop AI agents. Every response is JSON: `{success: true, message?, data}` or `{success: false, error, code}`. ' +
        'A request no operation matches is answered 404 `ROUTE_NOT_FOUND`, or 405 `METHOD_NOT_ALLOWED` with `Allow` when the path exists under other methods (see `x-fallback-responses`).',
      license: { name: 'UNLICENSED', identifier: 'UNLICENSED' },
    },
    servers: [{ url: 'http://localhost:3000', description: 'npm start with the default PORT (the local server lists its own origin instead)' }],
    // Deployed, every request needs a key; locally, none until the first key is created.
    security: [{ bearerKey: [] }, {}],
    tags: [
      { name: 'Agents', description: 'Create, read, update, delete and start agents' },
      { name: 'Stopping', description: 'Graceful and force stops, and their history' },
      { name: 'Messages', description: 'Send messages and read their history' },
      { name: 'Service', description: 'The service itself' },
    ],
    paths,
    'x-fallback-responses': Object.fromEntries(Object.entries(fallbackResponses).map(([status, r]) => [status, responseObject(r)])),
    components: {
      schemas: componentSchemas(),
      securitySchemes: {
        bearerKey: {
          type: 'http',
          scheme: 'bearer',
          description:
            'An API key from `npm run keys -- create --name <name>`, as `Authorization: Bearer <key>`. Deployed, every request needs one. ' +
            'Locally (`npm start`), requests need none until the first key is created (or with AGENTS_REQUIRE_AUTH=1); from then on always, even after every key is revoked.',
        },
      },
    },
  };
}
