import type { Dispatcher } from 'undici';
import { GatewayError } from '@openrouter/errors';
import type { Secret } from './credential-file';
import type { UpstreamAuth } from './upstream-auth';

/** A token is replaced this long before it expires, so no call carries one that lapses in flight. */
const REFRESH_MARGIN_MS = 5 * 60_000;
/** After an early refresh failed, how long the token in hand is used before the next try. */
const REFRESH_RETRY_MS = 10_000;
/** A token this close to its expiry is not handed out while a refresh runs: a call made with it could outlive it. */
const IN_HAND_MARGIN_MS = 30_000;
/** After a fresh token was refused too, how long refusals are passed on without fetching another (see `invalidate`). */
const REFUSED_AGAIN_MS = 60_000;

/** An access token as a token endpoint grants it. */
export interface GrantedToken {
  accessToken: string;
  expiresInSeconds: number;
}

export interface TokenHttpRequest {
  method: 'GET' | 'POST';
  url: URL;
  headers: Record<string, string>;
  body?: string;
  timeoutMs: number;
}

/** One exchange with a token endpoint: undici in the adapter, a hand-written fake in specs. */
export interface TokenHttp {
  request(request: TokenHttpRequest): Promise<{ status: number; body: string }>;
}

/** Where a provider's bearer tokens come from. */
export interface AccessTokenSource {
  /** A token to call with now: the cached one, or a fresh one. */
  token(signal: AbortSignal): Promise<string>;
  /**
   * The provider refused `token`: it is dropped. True when the next `token()` may give another.
   * `again`: `token` was the fresh one fetched for a refusal, refused in turn.
   */
  invalidate(token: string, again?: boolean): boolean | Promise<boolean>;
  /**
   * The provider answered 403 to `token`: true when a fresh token may cure it, the credentials it
   * was made from having been replaced since (a rotated key file). Unset: a 403 is passed on.
   */
  forbidden?(token: string): Promise<boolean>;
}

/**
 * The credential as `Authorization: Bearer`, refreshed once when the provider answers 401. A 403 is
 * about what the token may do, which a fresh one of the same identity would not change: it is
 * passed on, unless the source's credentials were replaced since (`forbidden`).
 */
export function bearerAuth(source: AccessTokenSource): UpstreamAuth {
  return {
    headers: async (signal) => ({ authorization: `Bearer ${await source.token(signal)}` }),
    refused: (headers, again, status) => {
      const token = (headers['authorization'] ?? '').replace(/^Bearer /, '');
      if (status === undefined || status === 401) return source.invalidate(token, again);
      return status === 403 && again !== true && source.forbidden !== undefined ? source.forbidden(token) : false;
    },
  };
}

/** A token given in the configuration: used as it is, never refreshed. */
export function staticTokenSource(accessToken: string): AccessTokenSource {
  const token = Promise.resolve(accessToken);
  return { token: () => token, invalidate: () => false };
}

/**
 * A token something else keeps in a file (a sidecar that refreshes it): the file's current
 * content, read again at once when the provider refuses the token.
 */
export function secretTokenSource(secret: Secret): AccessTokenSource {
  return {
    token: () => Promise.resolve(secret.value()),
    async invalidate(token, again) {
      if (again === true) return false;
      await secret.reread();
      return secret.value() !== token;
    },
  };
}

export interface CachedTokenOptions {
  /** Names the provider in errors. */
  provider: string;
  /** Milliseconds since the epoch; a spec moves it by hand. */
  now?: () => number;
}

/**
 * Tokens from `grant`, cached until 5 minutes before they expire (halfway, for a token that lives
 * less than 10 minutes). Calls that find no usable token share one fetch; a failed fetch is not
 * cached, so the next call tries again.
 */
export class CachedTokenSource implements AccessTokenSource {
  private cached: { token: string; refreshAt: number; expiresAt: number } | undefined;
  /** Until when refusals are passed on without a fresh token (see `invalidate`). */
  private steadyUntil: number | undefined;
  private pending: Promise<string> | undefined;
  private readonly now: () => number;

  constructor(
    private readonly grant: () => Promise<GrantedToken>,
    private readonly options: CachedTokenOptions,
  ) {
    this.now = options.now ?? Date.now;
  }

  token(signal: AbortSignal): Promise<string> {
    const held = this.cached;
    const now = this.now();
    if (held !== undefined && now < held.refreshAt) return Promise.resolve(held.token);
    if (signal.aborted) return Promise.reject(cancelled(this.options.provider));
    const pending = this.refresh();
    // Refreshing early: the token in hand serves meanwhile, so no call waits on the token endpoint.
    if (held !== undefined && now < held.expiresAt - IN_HAND_MARGIN_MS) return Promise.resolve(held.token);
    return untilAborted(pending, signal, this.options.provider);
  }

  /** The fetch under way, or a new one: one at a time, shared by every caller. */
  private refresh(): Promise<string> {
    if (this.pending === undefined) {
      const pending = this.fetch();
      this.pending = pending;
      // Cleared however it ends (also when the grant throws at once), and never an unhandled rejection.
      const clear = (): void => {
        if (this.pending === pending) this.pending = undefined;
      };
      pending.then(clear, clear);
    }
    return this.pending;
  }

  invalidate(token: string, again = false): boolean {
    const now = this.now();
    if (again) {
      // A fresh token refused as well: the provider refuses what the credentials may do (a role not
      // granted), not a revoked token, and another fresh one would not cure it. For a minute the
      // token is kept and refusals are passed on, so a steady 401 costs one token fetch a minute,
      // not two a call (which the token endpoint would soon throttle).
      this.steadyUntil = now + REFUSED_AGAIN_MS;
      return false;
    }
    if (this.steadyUntil !== undefined && now < this.steadyUntil) return false;
    if (this.cached?.token === token) this.cached = undefined;
    return true;
  }

  private async fetch(): Promise<string> {
    let granted: GrantedToken;
    try {
      granted = await this.grant();
    } catch (error) {
      // An early refresh that failed: the token in hand is still good until it expires; try again a little later.
      const held = this.cached;
      if (held !== undefined && this.now() < held.expiresAt) {
        held.refreshAt = Math.min(held.expiresAt, this.now() + REFRESH_RETRY_MS);
        return held.token;
      }
      throw error;
    }
    const now = this.now();
    const lifetimeMs = granted.expiresInSeconds * 1000;
    this.cached = { token: granted.accessToken, refreshAt: now + lifetimeMs - Math.min(REFRESH_MARGIN_MS, lifetimeMs / 2), expiresAt: now + lifetimeMs };
    return granted.accessToken;
  }
}

const cancelled = (provider: string): GatewayError => new GatewayError('cancelled', 'The request was cancelled.', { provider });

/** The shared fetch, or a cancellation as soon as this call's signal fires; the fetch runs on for the others. */
function untilAborted(shared: Promise<string>, signal: AbortSignal, provider: string): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const onAbort = (): void => reject(cancelled(provider));
    signal.addEventListener('abort', onAbort, { once: true });
    shared.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** Token requests over an undici agent; the body is read whole (token answers are small). */
export function undiciTokenHttp(agent: Dispatcher): TokenHttp {
  return {
    async request(request) {
      const response = await agent.request({
        origin: request.url.origin,
        path: request.url.pathname + request.url.search,
        method: request.method,
        headers: { accept: 'application/json', ...request.headers },
        body: request.body,
        headersTimeout: request.timeoutMs,
        bodyTimeout: request.timeoutMs,
      });
      return { status: response.statusCode, body: await response.body.text() };
    },
  };
}
