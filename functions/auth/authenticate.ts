import { createHash } from 'node:crypto';
import { createDocumentClient } from '../adapters/dynamodb/client.js';
import { logger, wireAtColdStart } from '../adapters/logger.js';
import { intEnv, requiredEnv } from '../agents/config.js';
import { keyWithAuthOff, unauthorized } from '../http/errors.js';
import { ApiKeysStore, bearerKey, type ApiKeyInfo } from './api-keys.js';

export interface AuthenticatorOptions {
  /** `always`: every request needs a key. `auto` (local): from the first key ever created on. */
  require: 'always' | 'auto';
  /** How long a verified key is trusted without asking the store again: a revoked key works up to this long. */
  cacheMs: number;
  /** Told once, when `auto` turns auth on. */
  onTurnedOn?: () => void;
  /** While `auto` auth is off, how often the key table is re-checked for a first key (default 2 s). */
  recheckMs?: number;
}

/** Verified keys remembered at most, per container (the cache is dropped whole when full). */
const MAX_CACHED_KEYS = 1000;
/** While `auto` auth is off, how often the key table is re-checked for a first key. */
const AUTO_RECHECK_MS = 2000;

/**
 * Bearer API keys, checked inside every function (deployed and locally alike), so a refusal is a
 * 401 in the API's envelope, never API Gateway's own body. A verified key is remembered for
 * `cacheMs` by the hash of the key (never the key), so most requests cost no read; a store that
 * cannot be read is a 503, never a request let in. In `auto` mode auth turns on with the first
 * key ever created and never turns off: revoking the last key locks the API, it does not open it.
 */
export class KeyAuthenticator {
  private readonly verified = new Map<string, { info: ApiKeyInfo; until: number }>();
  private on: boolean;
  private checkedAt = 0;

  constructor(
    readonly keys: ApiKeysStore,
    private readonly opts: AuthenticatorOptions,
  ) {
    this.on = opts.require === 'always';
  }

  /** Whether requests need a key now. */
  required(): boolean {
    return this.on;
  }

  /** The same, checking the key table for a first key when the last check is old (`auto`). */
  requiredNow(): Promise<boolean> {
    return this.turnedOn();
  }

  /** The caller's key (undefined while `auto` auth is off); a 401 HttpError when there is no valid key. */
  async authenticate(authorization: string | undefined): Promise<ApiKeyInfo | undefined> {
    if (!(await this.turnedOn())) {
      // No key exists, so no key sent can be valid: say so rather than let it pass unchecked.
      if (authorization !== undefined) throw keyWithAuthOff();
      return undefined;
    }
    const key = bearerKey(authorization);
    if (!key) throw unauthorized();
    const id = createHash('sha256').update(key).digest('base64url');
    const now = Date.now();
    const hit = this.verified.get(id);
    if (hit && hit.until > now) return hit.info;
    const info = await this.keys.verify(key);
    if (!info) {
      this.verified.delete(id);
      logger.info('request refused: no valid API key');
      throw unauthorized();
    }
    if (this.opts.cacheMs > 0) {
      if (this.verified.size >= MAX_CACHED_KEYS) this.verified.clear();
      this.verified.set(id, { info, until: now + this.opts.cacheMs });
    }
    logger.info('API key verified', { keyName: info.name, keyId: info.keyId });
    return info;
  }

  private async turnedOn(): Promise<boolean> {
    if (this.on || Date.now() - this.checkedAt <= (this.opts.recheckMs ?? AUTO_RECHECK_MS)) return this.on;
    this.on = await this.keys.anyEverCreated();
    this.checkedAt = Date.now();
    if (this.on) this.opts.onTurnedOn?.();
    return this.on;
  }

  /** Read the key table once at start (`auto`), so the first request already knows. */
  async init(): Promise<this> {
    await this.turnedOn();
    return this;
  }
}

let current: KeyAuthenticator | undefined;

/**
 * The authenticator of this process: in Lambda, every request needs a key checked against
 * API_KEYS_TABLE (a function without it fails its cold start: auth never fails open), trusted for
 * AUTH_CACHE_SECONDS; the local stack sets its own with useAuthenticator.
 */
export function authenticator(env = process.env): KeyAuthenticator {
  current ??= new KeyAuthenticator(new ApiKeysStore(createDocumentClient(env.DYNAMODB_ENDPOINT), requiredEnv(env, 'API_KEYS_TABLE')), {
    require: 'always',
    cacheMs: intEnv(env, 'AUTH_CACHE_SECONDS', 30, 0, 3600) * 1000,
  });
  return current;
}

export function useAuthenticator(next: KeyAuthenticator | undefined): void {
  current = next;
}

// Every route's middleware loads this module: a function without its key table never serves a request.
wireAtColdStart('authenticate requests', () => authenticator());
