import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';

/**
 * Which replica of a service does a thing only one may do at a time: billing's periodic
 * reconciliations (relative corrections, which two replicas would each apply), alerting's
 * consuming and notifying (two would notify every alert twice).
 */
/**
 * What a hold found: `renewed` (it was this holder's), `taken` (it was free: the previous holder
 * may have lost it without knowing — expired, evicted, a failover — and may still believe it holds
 * it for a moment), `handed-over` (free because its previous holder gave it up), or `held-by-other`.
 */
export type LeaseHold = 'renewed' | 'taken' | 'handed-over' | 'held-by-other';

export interface Lease {
  /** Whether this replica holds the lease now: taken when free, renewed when already its own. */
  hold(): Promise<boolean>;
  /** `hold`, saying how it found the lease. */
  holdState?(): Promise<LeaseHold>;
  /** Gives the lease up (if held), so another replica takes over at its next attempt. */
  release(): Promise<void>;
}

/** The lease of a process that is the only one of its kind (the embedded gateway, one billing, alerting without Redis). */
export const SOLE_LEASE: Lease = { hold: async () => true, release: async () => undefined };

/** KEYS: the lease. ARGV: this holder's token, time to live (ms). 1 when held by this holder now. */
const HOLD = `
local holder = redis.call('GET', KEYS[1])
if holder == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  if redis.call('DEL', KEYS[2]) == 1 then return 3 end
  return 2
end
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
`;

/** KEYS: the lease. ARGV: this holder's token. */
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[2], '1', 'PX', ARGV[2])
  return redis.call('DEL', KEYS[1])
end
return 0
`;

const HOLDS: Record<number, LeaseHold> = { 0: 'held-by-other', 1: 'renewed', 2: 'taken', 3: 'handed-over' };

/**
 * A lease in Redis: one key holding its holder's token, with a time to live. The holder renews it
 * at each attempt, so the same replica keeps the job while it lives (its in-memory history, such
 * as the surpluses a budget reconciliation has seen, stays meaningful); when it stops renewing,
 * the key expires and the next replica to try takes it. The time to live must exceed the job's
 * interval, and one run of the job must take less than it.
 */
export class RedisLease implements Lease {
  private readonly token = randomUUID();

  constructor(
    private readonly redis: Redis,
    private readonly key: string,
    private readonly ttlMs: number,
  ) {
    if (!Number.isSafeInteger(ttlMs) || ttlMs < 1) throw new RangeError(`a lease lives at least 1 ms, not ${ttlMs}`);
  }

  async hold(): Promise<boolean> {
    return (await this.holdState()) !== 'held-by-other';
  }

  async holdState(): Promise<LeaseHold> {
    return HOLDS[Number(await this.redis.eval(HOLD, 2, this.key, this.releasedKey, this.token, String(this.ttlMs)))] ?? 'held-by-other';
  }

  /** Gives the lease up, leaving a mark (for one lease's life) that it was handed over, not lost. */
  async release(): Promise<void> {
    await this.redis.eval(RELEASE, 2, this.key, this.releasedKey, this.token, String(this.ttlMs));
  }

  private get releasedKey(): string {
    return `${this.key}:released`;
  }
}

/** A lease's time to live for a job every `intervalMs`: a missed renewal or two is not a hand-over. */
export function leaseTtlFor(intervalMs: number): number {
  return Math.max(1_000, Math.round(intervalMs * 2.5));
}
