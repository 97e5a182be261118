import { createHash } from 'node:crypto';

/** How long a cached prefix lives: Anthropic's default five minutes, or an hour (`ttl: "1h"`). */
export type CacheTtl = '5m' | '1h';

const TTL_MS: Readonly<Record<CacheTtl, number>> = { '5m': 5 * 60_000, '1h': 60 * 60_000 };

/**
 * The prompt prefixes a simulated provider has cached, as Anthropic's prompt caching keeps them:
 * a prefix written once is read by later requests that begin with it until its time is up, and
 * each read starts that time again.
 */
export class PromptCache {
  private readonly expiries = new Map<string, number>();

  constructor(private readonly now: () => number = Date.now) {}

  /** `read` when `prefix` is cached (its time starts again), else `write` (it is cached from now). */
  use(prefix: string, ttl: CacheTtl): 'read' | 'write' {
    const key = createHash('sha256').update(prefix).digest('hex');
    const now = this.now();
    const expiry = this.expiries.get(key);
    const hit = expiry !== undefined && expiry > now;
    this.expiries.set(key, Math.max(expiry ?? 0, now + TTL_MS[ttl]));
    return hit ? 'read' : 'write';
  }

  clear(): void {
    this.expiries.clear();
  }
}
