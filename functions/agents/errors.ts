/**
 * Domain errors. Each carries the HTTP status and the sentence the API answers with, so the
 * mapping from domain outcome to response lives here and in `functions/http/middleware.ts` only.
 */
export abstract class DomainError extends Error {
  abstract readonly statusCode: number;
  abstract readonly code: string;
  /** Extra response headers (Retry-After, Allow, WWW-Authenticate). */
  headers: Record<string, string> = {};
  /** Data returned beside the error (the 408 of a timed-out stop says the agent is inactive). */
  data?: unknown;
}

export class ValidationError extends DomainError {
  readonly statusCode = 400;
  readonly code = 'VALIDATION_ERROR';
}

export class Unauthorized extends DomainError {
  readonly statusCode = 401;
  readonly code = 'UNAUTHORIZED';
  constructor() {
    super('A valid API key is required: send it as "Authorization: Bearer <key>"');
    this.headers = { 'WWW-Authenticate': 'Bearer' };
  }
}

export class AgentNotFound extends DomainError {
  readonly statusCode = 404;
  readonly code = 'AGENT_NOT_FOUND';
  constructor() {
    super('Agent not found');
  }
}

export class MessageNotFound extends DomainError {
  readonly statusCode = 404;
  readonly code = 'MESSAGE_NOT_FOUND';
  constructor() {
    super('Message not found');
  }
}

export class RouteNotFound extends DomainError {
  readonly statusCode = 404;
  readonly code = 'ROUTE_NOT_FOUND';
  constructor(method: string, path: string) {
    super(`No route for ${method} ${path}; see the README for the API`);
  }
}

export class MethodNotAllowed extends DomainError {
  readonly statusCode = 405;
  readonly code = 'METHOD_NOT_ALLOWED';
  constructor(method: string, path: string, allowed: string[]) {
    super(`${method} is not allowed on ${path}; use ${allowed.join(', ')}`);
    this.headers = { Allow: allowed.join(', ') };
  }
}

export class StopTimedOut extends DomainError {
  readonly statusCode = 408;
  readonly code = 'STOP_TIMED_OUT';
  constructor(data: unknown) {
    super('Graceful shutdown timed out');
    this.data = data;
  }
}

export class AgentConflict extends DomainError {
  readonly statusCode = 409;
  constructor(
    readonly code: 'AGENT_NOT_RUNNING' | 'AGENT_STOPPING' | 'AGENT_ALREADY_RUNNING' | 'AGENT_EXISTS' | 'AGENT_NOT_INACTIVE' | 'MESSAGE_IN_PROGRESS' | 'MESSAGE_INTERRUPTED' | 'MESSAGE_FAILED',
    message: string,
  ) {
    super(message);
  }
}

export const agentNotRunning = () => new AgentConflict('AGENT_NOT_RUNNING', 'Agent is not running');
export const agentStopping = () => new AgentConflict('AGENT_STOPPING', 'Agent is stopping');
export const agentAlreadyRunning = () => new AgentConflict('AGENT_ALREADY_RUNNING', 'Agent is already running');

export class PreconditionFailed extends DomainError {
  readonly statusCode = 412;
  readonly code = 'VERSION_MISMATCH';
  constructor(current: number) {
    super(`Agent has changed: If-Match names an old version, the current version is ${current}; get the agent and retry`);
  }
}

export class PayloadTooLarge extends DomainError {
  readonly statusCode = 413;
  readonly code = 'PAYLOAD_TOO_LARGE';
  constructor(limit: number) {
    super(`Request body is too large: the limit is ${limit} bytes`);
  }
}

export class UnsupportedMediaType extends DomainError {
  readonly statusCode = 415;
  readonly code = 'UNSUPPORTED_MEDIA_TYPE';
  constructor(contentType: string) {
    super(`Content-Type ${JSON.stringify(contentType)} is not supported: send the body as application/json`);
  }
}

export class TooManyInFlight extends DomainError {
  readonly statusCode = 429;
  readonly code = 'TOO_MANY_IN_FLIGHT';
  constructor(max: number, retryAfterSeconds: number) {
    super(`Agent already has ${max} messages in flight; retry after ${retryAfterSeconds} s`);
    this.headers = { 'Retry-After': String(retryAfterSeconds) };
  }
}

/** Admission kept losing transaction conflicts on a hot agent: a retry will succeed. */
export class AgentBusy extends DomainError {
  readonly statusCode = 429;
  readonly code = 'AGENT_BUSY';
  constructor() {
    super('Agent is busy with concurrent requests; retry after 1 s');
    this.headers = { 'Retry-After': '1' };
  }
}

export class StopFailed extends DomainError {
  readonly statusCode = 500;
  readonly code = 'STOP_FAILED';
  constructor(data?: unknown) {
    super('Failed to stop agent runtime');
    this.data = data;
  }
}

/** The runtime behind an agent failed to process a message (the message is recorded `failed`). */
export class RuntimeFailed extends DomainError {
  readonly statusCode = 502;
  readonly code = 'RUNTIME_FAILED';
}
