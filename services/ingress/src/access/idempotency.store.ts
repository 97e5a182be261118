import type { Redis } from 'ioredis';

/**
 * Where the first answer to a request sent with an `Idempotency-Key` is kept. Values are opaque
 * strings (what {@link IdempotentResponses} wrote); each record is first a claim, which marks the
 * request in progress until it is completed or released, then the stored answer.
 */
export interface IdempotencyStore {
  /**
   * Claims `id` with `claim` for `leaseMs` unless a record exists: resolves to undefined when this
   * call claimed it, else to the record as stored (another claim, or a completed answer).
   */
  claim(id: string, claim: string, leaseMs: number): Promise<string | undefined>;
  /** Replaces this call's own `claim` with the answer, kept `keepMs`; false when the claim is no longer there (its lease ran out). */
  complete(id: string, claim: string, answer: string, keepMs: number): Promise<boolean>;
  /** Removes this call's own `claim` (the request failed): the same key may be sent again. */
  release(id: string, claim: string): Promise<void>;
}

interface Held {
  value: string;
  expiresAt: number;
}

/** The embedded gateway's store: one process, gone when it stops (like tenants added at run time). */
export class MemoryIdempotencyStore implements IdempotencyStore {
  private readonly records = new Map<string, Held>();

  constructor(private readonly now: () => number = Date.now) {}

  async claim(id: string, claim: string, leaseMs: number): Promise<string | undefined> {
    this.prune();
    const held = this.records.get(id);
    if (held) return held.value;
    this.records.set(id, { value: claim, expiresAt: this.now() + leaseMs });
    return undefined;
  }

  async complete(id: string, claim: string, answer: string, keepMs: number): Promise<boolean> {
    this.prune();
    if (this.records.get(id)?.value !== claim) return false;
    this.records.set(id, { value: answer, expiresAt: this.now() + keepMs });
    return true;
  }

  async release(id: string, claim: string): Promise<void> {
    if (this.records.get(id)?.value === claim) this.records.delete(id);
  }

  /** Forgets expired records; the admin API writes few, so a walk per write is cheap. */
  private prune(): void {
    const now = this.now();
    for (const [id, held] of this.records) if (held.expiresAt <= now) this.records.delete(id);
  }
}

/** KEYS[1] the record; ARGV: claim, lease ms. Nil when claimed, else the record. */
const CLAIM_LUA = `local held = redis.call('GET', KEYS[1])
if held then return held end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false`;
/** KEYS[1] the record; ARGV: claim, answer, keep ms. Only the call holding the claim completes it. */
const COMPLETE_LUA = `if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1`;
/** KEYS[1] the record; ARGV: claim. */
const RELEASE_LUA = `if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1`;

/** Shared by every ingress replica: a retry that reaches another replica finds the first answer. */
export class RedisIdempotencyStore implements IdempotencyStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  private key(id: string): string {
    return `${this.prefix}idempotency:${id}`;
  }

  async claim(id: string, claim: string, leaseMs: number): Promise<string | undefined> {
    const held = (await this.redis.eval(CLAIM_LUA, 1, this.key(id), claim, String(leaseMs))) as string | null;
    return held ?? undefined;
  }

  async complete(id: string, claim: string, answer: string, keepMs: number): Promise<boolean> {
    return (await this.redis.eval(COMPLETE_LUA, 1, this.key(id), claim, answer, String(keepMs))) === 1;
  }

  async release(id: string, claim: string): Promise<void> {
    await this.redis.eval(RELEASE_LUA, 1, this.key(id), claim);
  }
}
