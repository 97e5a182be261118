import type { Redis } from 'ioredis';
import { adjustTat, gcra, SLACK_MS, type GcraLimit, type GcraOutcome } from './gcra';

/** One limit a request is charged against. */
export interface CounterCharge extends GcraLimit {
  /** Storage key, e.g. `rl:key:abc:tokens`. */
  key: string;
  cost: number;
  /**
   * For a refund: the TAT the refunded charge was admitted with (`GcraOutcome.nextTat`). Only its
   * units still ahead of now go back; 0 (unknown) refunds the whole cost.
   */
  until?: number;
}

/** Where the rate-limit state lives: Redis (shared by replicas) or this process's memory. */
export interface CounterStore {
  /** Charges every limit or none: atomic across all of them. */
  take(charges: readonly CounterCharge[]): Promise<GcraOutcome[]>;
  /**
   * Adds (or refunds, when negative) units without a check: the correction after real usage. A
   * charge whose cost is not a finite number is ignored (see `correctable`).
   */
  adjust(charges: readonly CounterCharge[]): Promise<void>;
  close(): Promise<void>;
}

/**
 * The corrections a store applies: a cost that is not a finite number (a usage count gone wrong
 * upstream) is dropped, leaving the limit as it was charged at admission. Applied, NaN would make
 * the TAT NaN, which admits everything from then on, and Infinity would refuse everything.
 */
function correctable(charges: readonly CounterCharge[]): CounterCharge[] {
  return charges.filter((c) => Number.isFinite(c.cost));
}

export class MemoryCounterStore implements CounterStore {
  private readonly tats = new Map<string, number>();

  constructor(private readonly clock: () => number = Date.now) {}

  async take(charges: readonly CounterCharge[]): Promise<GcraOutcome[]> {
    const now = this.clock();
    const outcomes = charges.map((c) => gcra(this.tats.get(c.key) ?? 0, now, c.cost, c));
    if (outcomes.every((o) => o.allowed)) charges.forEach((c, i) => this.tats.set(c.key, (outcomes[i] as GcraOutcome).nextTat));
    this.sweep(now);
    return outcomes;
  }

  async adjust(charges: readonly CounterCharge[]): Promise<void> {
    const now = this.clock();
    for (const c of correctable(charges)) this.tats.set(c.key, adjustTat(this.tats.get(c.key) ?? 0, now, c.cost, c, c.until));
  }

  async close(): Promise<void> {
    this.tats.clear();
  }

  /** Drops state that has fully refilled, so memory follows active keys only. */
  private sweep(now: number): void {
    if (this.tats.size < 10_000) return;
    for (const [key, tat] of this.tats) if (tat <= now) this.tats.delete(key);
  }
}

/**
 * GCRA over every charged limit in one Lua script, so concurrent requests on any replica see a
 * consistent state and a request is charged to all its limits or to none. Time is Redis's.
 */
const TAKE = `
local SLACK_MS = ${SLACK_MS}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local adjust = ARGV[1] == 'adjust'
local out = {}
local next = {}
local allowed = 1
for i = 1, #KEYS do
  local limit = tonumber(ARGV[2 + (i - 1) * 4])
  local window = tonumber(ARGV[3 + (i - 1) * 4])
  local cost = tonumber(ARGV[4 + (i - 1) * 4])
  local untilTat = tonumber(ARGV[5 + (i - 1) * 4])
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
  local interval = window / limit
  -- See SLACK_MS: times this close count as equal.
  local slack = math.min(SLACK_MS, interval / 100)
  local start = math.max(tat, now)
  if adjust and cost < 0 and untilTat > 0 then
    -- A refund gives back only the refunded charge's units still ahead of now (see adjustTat).
    cost = math.max(cost, -math.max(0, (untilTat - now) / interval))
  end
  local tatNext = start + cost * interval
  if adjust then
    next[i] = math.max(now, tatNext)
  else
    local allowAt = tatNext - window
    if allowAt - now > slack then
      allowed = 0
      out[#out + 1] = 0
      out[#out + 1] = math.max(0, math.floor((now + window + slack - start) / interval))
      out[#out + 1] = math.max(0, math.ceil(start - now - slack))
      out[#out + 1] = math.ceil(allowAt - now - slack)
      out[#out + 1] = 0
    else
      next[i] = tatNext
      out[#out + 1] = 1
      out[#out + 1] = math.floor((now + window + slack - tatNext) / interval)
      out[#out + 1] = math.max(0, math.ceil(tatNext - now - slack))
      out[#out + 1] = 0
      -- The TAT this charge runs until, whole milliseconds down (a refund then gives back a hair less).
      out[#out + 1] = math.floor(tatNext)
    end
  end
end
if adjust or allowed == 1 then
  for i = 1, #KEYS do
    local ttl = math.ceil(next[i] - now) + 1000
    -- Every digit of the double: rounded to whole microseconds, a burst's TATs drifted a hair per request.
    redis.call('SET', KEYS[i], string.format('%.17g', next[i]), 'PX', ttl)
  end
end
return out
`;

export class RedisCounterStore implements CounterStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {
    redis.defineCommand('orGcra', { lua: TAKE });
  }

  async take(charges: readonly CounterCharge[]): Promise<GcraOutcome[]> {
    if (charges.length === 0) return [];
    const flat = (await this.run('take', charges)) as number[];
    return charges.map((_, i) => {
      const [allowed, remaining, resetMs, retryAfterMs, nextTat] = flat.slice(i * 5, i * 5 + 5) as [number, number, number, number, number];
      return { allowed: allowed === 1, remaining, resetMs, retryAfterMs, nextTat };
    });
  }

  async adjust(charges: readonly CounterCharge[]): Promise<void> {
    const corrections = correctable(charges);
    if (corrections.length > 0) await this.run('adjust', corrections);
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }

  private run(mode: 'take' | 'adjust', charges: readonly CounterCharge[]): Promise<unknown> {
    // One script takes every limit of a request: the `{rl}` hash tag keeps them in one slot of a Redis Cluster.
    const keys = charges.map((c) => `${this.prefix}{rl}:${c.key}`);
    const args = [mode, ...charges.flatMap((c) => [String(c.limit), String(c.windowMs), String(c.cost), String(c.until ?? 0)])];
    const command = (this.redis as unknown as Record<string, (n: number, ...a: string[]) => Promise<unknown>>)['orGcra'] as (n: number, ...a: string[]) => Promise<unknown>;
    return command.call(this.redis, keys.length, ...keys, ...args);
  }
}
