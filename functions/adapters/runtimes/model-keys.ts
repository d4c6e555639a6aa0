import { ModelKeyUnavailable, type ModelKeys } from '../../agents/ports.js';
import type { ApiKeySource } from '../../agents/model.js';
import { logger } from '../logger.js';
import { tracedClient } from '../tracing.js';

/**
 * The model keys of the `llm` runtime, each bound by the operator to the one base URL it may be
 * sent to; an API caller names a key, never where it goes.
 * - `{env: "LLM_API_KEY_<NAME>"}`: the key is that variable of the service, its base URL the
 *   variable `LLM_BASE_URL_<NAME>` (`LLM_API_KEY` pairs with `LLM_BASE_URL`).
 * - `{secretArn}` (deployed): a Secrets Manager secret named `agents-llm/...` whose value is JSON
 *   `{"apiKey": "...", "baseUrl": "..."}`.
 * An agent's `baseUrl` matches a binding when scheme, host and port are the same and its path is
 * the binding's path or below it. A key that is unset, unbound, bound elsewhere, or a secret that
 * cannot be read or parsed are all answered with the one sentence of ModelKeyUnavailable, so the
 * answer tells a caller nothing about which names the operator has set.
 */
export interface ModelKeysOptions {
  env?: NodeJS.ProcessEnv;
  /** Which credentials: the llm runtime's model keys (default) or the a2a runtime's tokens. */
  scheme?: KeyScheme;
  /** A secret's string value (Secrets Manager by default). */
  readSecret?: (secretArn: string) => Promise<string | undefined>;
  now?: () => number;
}

const SECRET_CACHE_MS = 5 * 60_000;
/**
 * Secrets Manager's answers that mean "this secret is not there for us": the key is not available.
 * Anything else (throttling, a 5xx, a timeout) is the service failing: passed on, so the caller
 * gets a 503 to retry, not a refusal that blames the agent's configuration.
 */
const NOT_AVAILABLE = new Set(['ResourceNotFoundException', 'AccessDeniedException', 'AccessDenied', 'InvalidRequestException', 'DecryptionFailure']);

interface Binding {
  apiKey: string;
  baseUrl: string;
}

/** How one kind of credential is named and bound: its variables' prefixes, its secret's JSON fields. */
export interface KeyScheme {
  keyVar: string;
  urlVar: string;
  keyField: string;
  urlField: string;
}
export const LLM_KEYS: KeyScheme = { keyVar: 'LLM_API_KEY', urlVar: 'LLM_BASE_URL', keyField: 'apiKey', urlField: 'baseUrl' };
/** The a2a runtime's tokens: `A2A_TOKEN_<NAME>` bound by `A2A_URL_<NAME>`; a secret `agents-a2a/...` of `{"token", "url"}`. */
export const A2A_TOKENS: KeyScheme = { keyVar: 'A2A_TOKEN', urlVar: 'A2A_URL', keyField: 'token', urlField: 'url' };

export class BoundModelKeys implements ModelKeys {
  private readonly secrets = new Map<string, { binding: Binding | undefined; until: number }>();

  constructor(private readonly opts: ModelKeysOptions = {}) {}

  private get scheme(): KeyScheme {
    return this.opts.scheme ?? LLM_KEYS;
  }

  async keyFor(source: ApiKeySource | undefined, baseUrl: string): Promise<string | null> {
    if (!source) return null;
    const binding = 'env' in source ? this.fromEnv(source.env) : await this.fromSecret(source.secretArn);
    if (!binding || !within(baseUrl, binding.baseUrl)) throw new ModelKeyUnavailable();
    return binding.apiKey;
  }

  private fromEnv(name: string): Binding | undefined {
    const env = this.opts.env ?? process.env;
    const apiKey = env[name];
    const baseUrl = env[this.scheme.urlVar + name.slice(this.scheme.keyVar.length)];
    return apiKey && baseUrl ? { apiKey, baseUrl } : undefined;
  }

  private async fromSecret(secretArn: string): Promise<Binding | undefined> {
    const now = (this.opts.now ?? Date.now)();
    const cached = this.secrets.get(secretArn);
    if (cached && cached.until > now) return cached.binding;
    let raw: string | undefined;
    try {
      raw = await (this.opts.readSecret ?? readSecretsManager)(secretArn);
    } catch (err) {
      if (!NOT_AVAILABLE.has((err as Error).name)) throw err;
      // The operator's to see (the caller is told only that the key is not available).
      logger.warn('model key secret could not be read', { secretArn, error: (err as Error).name });
      return undefined;
    }
    const binding = parseBinding(raw, this.scheme);
    if (!binding) logger.warn(`key secret is not JSON {"${this.scheme.keyField}": "...", "${this.scheme.urlField}": "..."}`, { secretArn });
    this.secrets.set(secretArn, { binding, until: now + SECRET_CACHE_MS });
    return binding;
  }
}

function parseBinding(raw: string | undefined, scheme: KeyScheme): Binding | undefined {
  try {
    const value = JSON.parse(raw ?? '') as Record<string, unknown> | null;
    const [apiKey, baseUrl] = [value?.[scheme.keyField], value?.[scheme.urlField]];
    if (typeof apiKey === 'string' && apiKey && typeof baseUrl === 'string' && URL.canParse(baseUrl)) {
      return { apiKey, baseUrl };
    }
  } catch {
    // Not JSON: refused below.
  }
  return undefined;
}

/** The agent's base URL is the bound one or below it: same scheme, host and port, path within the bound path. */
export function within(baseUrl: string, bound: string): boolean {
  const [url, binding] = [URL.parse(baseUrl), URL.parse(bound)];
  if (!url || !binding || url.username || url.password || url.search || url.hash) return false;
  if (url.protocol !== binding.protocol || url.host !== binding.host) return false;
  const prefix = binding.pathname.replace(/\/+$/, '');
  const path = url.pathname.replace(/\/+$/, '');
  return path === prefix || path.startsWith(`${prefix}/`);
}

async function readSecretsManager(secretArn: string): Promise<string | undefined> {
  const { SecretsManagerClient, GetSecretValueCommand } = await import('@aws-sdk/client-secrets-manager');
  return (await tracedClient(new SecretsManagerClient({})).send(new GetSecretValueCommand({ SecretId: secretArn }))).SecretString;
}
