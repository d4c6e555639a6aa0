import { Tracer } from '@aws-lambda-powertools/tracer';
import { captureLambdaHandler } from '@aws-lambda-powertools/tracer/middleware';
import { AgentConditionFailed, type AgentRuntime, type AgentStore, type ConfigStore, type FleetStore, type RecordStore, type RuntimeRegistry } from '../agents/ports.js';
import { describeError } from '../http/errors.js';
import { TransactionConflict } from './dynamodb/client.js';
import type { RecordsStore } from './dynamodb/records-store.js';
import type { RuntimeState } from './dynamodb/runtime-state.js';

/**
 * X-Ray traces (Powertools Tracer). In Lambda, with active tracing on, each invocation has its
 * handler's subsegment (`## index.handler`, annotated with the cold start, the service and the
 * correlation id), a subsegment per AWS SDK call (DynamoDB, Step Functions, EventBridge, SQS,
 * Secrets Manager), one per outbound HTTP call (a runtime's worker, model or A2A server), and one
 * per store operation and runtime call (`### AgentStore.admitLease`, `### runtime.process`,
 * annotated with the agent), around the SDK and HTTP calls it makes. Outside Lambda (the local
 * stack, tests) the Tracer is off and none of this runs: the ports are used as they are.
 *
 * Responses are not recorded (a message's reply is the user's content), nor are requests: a
 * subsegment holds names, ids, status codes and timings only.
 */
export const tracer = new Tracer({ serviceName: 'agents' });

/** The handler's subsegment, for every function's middy chain (first, so it spans the others). */
export const traceInvocation = () => captureLambdaHandler(tracer, { captureResponse: false });

/** Annotates the invocation's subsegment (searchable in X-Ray: `annotation.correlationId = "..."`). */
export function annotateInvocation(key: string, value: string): void {
  if (tracer.isTracingEnabled()) tracer.putAnnotation(key, value);
}

/** An AWS SDK v3 client whose calls are subsegments. */
export const tracedClient = <C>(client: C): C => tracer.captureAWSv3Client(client);

/**
 * Expected outcomes are errors in the trace (X-Ray's 4xx), with their code: a condition that did
 * not hold (the agent was not in the state a write required), a transaction that met another
 * one, anything the API answers 4xx (its one status table). Anything else (a store or a runtime
 * that failed, a 5xx) is a fault.
 */
function expectedCode(err: unknown): string | undefined {
  if (err instanceof AgentConditionFailed) return 'CONDITION_FAILED';
  if (err instanceof TransactionConflict) return 'TRANSACTION_CONFLICT';
  const known = describeError(err);
  return known && known.status < 500 ? known.code : undefined;
}

/** The X-Ray SDK's subsegment, as the Tracer's provider hands it out. */
type Subsegment = NonNullable<Parameters<Parameters<Tracer['provider']['captureAsyncFunc']>[1]>[0]>;

/** `fn` in a new subsegment of the current one, closed when it settles; just `fn` when tracing is off. */
function inSubsegment<T>(name: string, fn: (subsegment: Subsegment | undefined) => Promise<T>): Promise<T> {
  if (!tracer.isTracingEnabled()) return fn(undefined);
  return tracer.provider.captureAsyncFunc(name, async (subsegment) => {
    try {
      return await fn(subsegment);
    } finally {
      subsegment?.close();
    }
  }) as Promise<T>;
}

/** Runs `fn` in a subsegment named `### name`, annotated. */
export function traced<T>(name: string, annotations: Record<string, string | undefined>, fn: () => Promise<T>): Promise<T> {
  return inSubsegment(`### ${name}`, async (subsegment) => {
    for (const [key, value] of Object.entries(annotations)) if (value !== undefined) subsegment?.addAnnotation(key, value);
    try {
      return await fn();
    } catch (err) {
      const code = expectedCode(err);
      if (code === undefined) subsegment?.addError(err as Error);
      else {
        subsegment?.addErrorFlag();
        subsegment?.addAnnotation('errorCode', code);
      }
      throw err;
    }
  });
}

/**
 * An outbound HTTP call of a runtime (its worker, its model, its A2A server) as X-Ray's remote
 * subsegment: named by the host, with the method, the URL without its query (which may carry a
 * credential) and the status; a 4xx is an error, a 429 a throttle, a 5xx or no answer a fault.
 * The runtimes call through node:http(s) with their own address check, which the Tracer's
 * instrumentation of `fetch` does not see: this is that instrumentation for them.
 */
export function tracedRequest(url: URL, method: string, call: () => Promise<Response>): Promise<Response> {
  return inSubsegment(url.hostname, async (subsegment) => {
    subsegment?.addAttribute('namespace', 'remote');
    const http: { request: { url: string; method: string }; response?: { status: number } } = { request: { url: `${url.protocol}//${url.host}${url.pathname}`, method } };
    // The field X-Ray reads for a remote call (the SDK's own HTTP capture sets it the same way).
    if (subsegment) Object.assign(subsegment, { http });
    try {
      const res = await call();
      http.response = { status: res.status };
      if (res.status === 429) subsegment?.addThrottleFlag();
      if (res.status >= 500) subsegment?.addFaultFlag();
      else if (res.status >= 400) subsegment?.addErrorFlag();
      return res;
    } catch (err) {
      subsegment?.addError(err as Error);
      throw err;
    }
  });
}

/** The agent an operation is about: its first argument, or that argument's `agentId`. */
const agentOf = (args: unknown[]): string | undefined => {
  const [first] = args;
  if (typeof first === 'string') return first;
  const id = (first as { agentId?: unknown } | undefined)?.agentId;
  return typeof id === 'string' ? id : undefined;
};

/** `port` with each of `methods` run in its own subsegment (`### <label>.<method>`). */
function tracedPort<P extends object>(label: string, port: P, methods: readonly (keyof P & string)[]): P {
  if (!tracer.isTracingEnabled()) return port;
  const wrapped = Object.create(port) as P;
  for (const method of methods) {
    // Looked up at each call: a store the function was not granted throws then, as unwrapped.
    const call = (args: unknown[]) => (port[method] as (...args: unknown[]) => Promise<unknown>).apply(port, args);
    Object.defineProperty(wrapped, method, { value: (...args: unknown[]) => traced(`${label}.${method}`, { agentId: agentOf(args) }, () => call(args)) });
  }
  return wrapped;
}

/** The operations of a port: its methods that return a promise. */
type Operations<P> = { [K in keyof P]: P[K] extends (...args: never[]) => Promise<unknown> ? K : never }[keyof P] & string;

/** Every operation of `P`, named once: the compiler refuses a list that misses one or names another. */
const operations = <P>(all: Record<Operations<P>, true>) => Object.keys(all) as Operations<P>[];

const AGENT_OPERATIONS = operations<AgentStore>({
  get: true, getWhole: true, getMany: true, list: true, count: true, queryByStatus: true, create: true, update: true, delete: true, setSigningSecret: true, start: true, moveDueAt: true,
  beginStop: true, beginForcedStop: true, forceStopInProgress: true, rollbackStop: true, recordStopFailure: true,
  commitStop: true, admitLease: true, renewLease: true, releaseLease: true, reclaimLease: true,
});
const CONFIG_OPERATIONS = operations<ConfigStore>({ get: true, read: true });
/** The record store's port, and the runtimes' own state: the llm runtime's conversation, the a2a runtime's task and context. */
const RECORD_OPERATIONS = [
  ...operations<RecordStore>({
    getMessage: true, listMessages: true, getStop: true, listStops: true, createMessageRecord: true, discardMessageRecord: true, settleUnleased: true, recordOutcome: true, deleteAll: true,
  }),
  ...operations<RuntimeState>({ getConversation: true, saveConversation: true, markConversationSaved: true, recordTask: true, getA2AState: true, setA2AWaiting: true, clearA2AWaiting: true }),
];
const FLEET_OPERATIONS = operations<FleetStore>({
  create: true, remove: true, get: true, listRunning: true, saveProgress: true, end: true, addMembers: true, putMembers: true, members: true,
});

/**
 * The store operations a trace shows: every operation of the store ports (not the configuration
 * cache's `cached`, which makes no call), the runtimes' reads and writes of their own state too.
 */
export const tracedStores = <A extends AgentStore, C extends ConfigStore, R extends RecordsStore, F extends FleetStore>(stores: { agents: A; configs: C; records: R; fleet: F }) => ({
  agents: tracedPort('AgentStore', stores.agents, AGENT_OPERATIONS),
  configs: tracedPort('ConfigStore', stores.configs, CONFIG_OPERATIONS),
  records: tracedPort('RecordStore', stores.records, RECORD_OPERATIONS),
  fleet: tracedPort('FleetStore', stores.fleet, FLEET_OPERATIONS),
});

/** Each runtime's calls as subsegments (`### runtime.process`, `### runtime.close`), annotated with the runtime type and the agent. */
export function tracedRuntimes(runtimes: RuntimeRegistry): RuntimeRegistry {
  if (!tracer.isTracingEnabled()) return runtimes;
  const each = (type: string, runtime: AgentRuntime): AgentRuntime => {
    const wrapped = Object.create(runtime) as AgentRuntime;
    wrapped.process = (agent, message, signal) => traced('runtime.process', { runtime: type, agentId: agent.agentId }, () => runtime.process(agent, message, signal));
    wrapped.close = (agent, stop) => traced('runtime.close', { runtime: type, agentId: agent.agentId }, () => runtime.close(agent, stop));
    return wrapped;
  };
  return Object.fromEntries(Object.entries(runtimes).map(([type, runtime]) => [type, each(type, runtime)])) as RuntimeRegistry;
}
