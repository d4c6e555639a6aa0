/**
 * Domain errors: each names what went wrong with a machine-readable `code` and a sentence a
 * person can act on. Which HTTP status a code becomes is the HTTP layer's business
 * (`STATUS_BY_CODE` in functions/http/errors.ts), not the domain's.
 */
export type ErrorCode =
  | 'VALIDATION_ERROR'
  | 'AGENT_NOT_FOUND'
  | 'MESSAGE_NOT_FOUND'
  | 'STOP_TIMED_OUT'
  | 'AGENT_NOT_RUNNING'
  | 'AGENT_STOPPING'
  | 'AGENT_ALREADY_RUNNING'
  | 'AGENT_EXISTS'
  | 'AGENT_NOT_INACTIVE'
  | 'RUNTIME_NOT_ALLOWED'
  | 'MESSAGE_IN_PROGRESS'
  | 'MESSAGE_INTERRUPTED'
  | 'MESSAGE_FAILED'
  | 'VERSION_MISMATCH'
  | 'TOO_MANY_IN_FLIGHT'
  | 'AGENT_BUSY'
  | 'STOP_FAILED'
  | 'RUNTIME_FAILED'
  | 'ASYNC_REQUIRED'
  | 'OPERATION_NOT_FOUND'
  | 'IDEMPOTENCY_KEY_REUSED'
  | 'UNAVAILABLE';

export abstract class DomainError extends Error {
  abstract readonly code: ErrorCode;
  /** Data returned beside the error (the 408 of a timed-out stop says the agent is inactive). */
  data?: unknown;
  /** When a retry may succeed (in-flight cap, contention). */
  retryAfterSeconds?: number;
}

export class ValidationError extends DomainError {
  readonly code = 'VALIDATION_ERROR';
}

export class AgentNotFound extends DomainError {
  readonly code = 'AGENT_NOT_FOUND';
  constructor() {
    super('Agent not found');
  }
}

export class MessageNotFound extends DomainError {
  readonly code = 'MESSAGE_NOT_FOUND';
  constructor() {
    super('Message not found');
  }
}

export class StopTimedOut extends DomainError {
  readonly code = 'STOP_TIMED_OUT';
  constructor(data: unknown) {
    super('Graceful shutdown timed out');
    this.data = data;
  }
}

export class AgentConflict extends DomainError {
  constructor(
    readonly code: Extract<
      ErrorCode,
      'AGENT_NOT_RUNNING' | 'AGENT_STOPPING' | 'AGENT_ALREADY_RUNNING' | 'AGENT_EXISTS' | 'AGENT_NOT_INACTIVE' | 'RUNTIME_NOT_ALLOWED' | 'MESSAGE_IN_PROGRESS' | 'MESSAGE_INTERRUPTED' | 'MESSAGE_FAILED'
    >,
    message: string,
  ) {
    super(message);
  }
}

export const agentNotRunning = () => new AgentConflict('AGENT_NOT_RUNNING', 'Agent is not running');
export const agentStopping = () => new AgentConflict('AGENT_STOPPING', 'Agent is stopping');
export const agentAlreadyRunning = () => new AgentConflict('AGENT_ALREADY_RUNNING', 'Agent is already running');

export class PreconditionFailed extends DomainError {
  readonly code = 'VERSION_MISMATCH';
  constructor(current: number) {
    super(`Agent has changed: If-Match names an old version, the current version is ${current}; get the agent and retry`);
  }
}

export class TooManyInFlight extends DomainError {
  readonly code = 'TOO_MANY_IN_FLIGHT';
  constructor(max: number, retryAfterSeconds: number) {
    super(`Agent already has ${max} messages in flight; retry after ${retryAfterSeconds} s`);
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/**
 * The one error for retries that ran out: a write kept losing conditions or transaction
 * conflicts on a hot agent. Nothing was half-done; the same request retried will succeed.
 */
export class AgentBusy extends DomainError {
  readonly code = 'AGENT_BUSY';
  constructor() {
    super('Agent is busy with concurrent requests; retry after 1 s');
    this.retryAfterSeconds = 1;
  }
}

export class StopFailed extends DomainError {
  readonly code = 'STOP_FAILED';
  constructor(data?: unknown) {
    super('Failed to stop agent runtime');
    this.data = data;
  }
}

/** The runtime behind an agent failed to process a message (the message is recorded `failed`). */
export class RuntimeFailed extends DomainError {
  readonly code = 'RUNTIME_FAILED';
}

/** The agent's work cannot fit a synchronous request; it must run on the worker. */
export class AsyncRequired extends DomainError {
  readonly code = 'ASYNC_REQUIRED';
}

/**
 * This service cannot take the request now (a message could not be handed to the worker, or the
 * process is shutting down); nothing was half-done and a retry may succeed.
 */
export class Unavailable extends DomainError {
  readonly code = 'UNAVAILABLE';
  constructor(message: string) {
    super(message);
    this.retryAfterSeconds = 1;
  }
}

export class OperationNotFound extends DomainError {
  readonly code = 'OPERATION_NOT_FOUND';
  constructor() {
    super('Fleet stop operation not found (operations are kept for the records\' retention period)');
  }
}

/** The same Idempotency-Key came with another request: a key names one request only. */
export class IdempotencyKeyReused extends DomainError {
  readonly code = 'IDEMPOTENCY_KEY_REUSED';
  constructor(operationId: string) {
    super(`This Idempotency-Key already started fleet stop ${operationId} with a different request; send a new key for a new request`);
  }
}
