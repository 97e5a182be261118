import type { Redis } from 'ioredis';
import { adjustTat, admitted, gcra, SLACK_MS, type GcraLimit, type GcraOutcome } from './gcra';

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
  /**
   * Charges every limit or none: atomic across all of them. With an `id` (unique to the request),
   * an admitted take is remembered for as long as its charge can still be given back, so that
   * `release(id)` can give exactly it back, and the same take sent again is answered as made
   * rather than charged twice. A take whose id was released already charges nothing and rejects.
   */
  take(charges: readonly CounterCharge[], id?: string): Promise<GcraOutcome[]>;
  /**
   * Adds (or refunds, when negative) units without a check: the correction after real usage. A
   * charge whose cost is not a finite number is ignored (see `correctable`).
   */
  adjust(charges: readonly CounterCharge[]): Promise<void>;
  /**
   * `adjust` once for take `id`: sent again (a retry after a reply that was lost), it changes
   * nothing. The same `charges` (keys, in order) as the take.
   */
  settle(id: string, charges: readonly CounterCharge[]): Promise<void>;
  /**
   * Gives back what take `id` charged, if it was applied, as far as it is still ahead of now, and
   * makes take `id` arriving afterwards charge nothing: for a take whose answer never came (a
   * timeout), which may or may not have run. Once only, whatever calls it again; nothing once the
   * take was settled. The same `charges` (keys, in order) as the take.
   */
  release(id: string, charges: readonly CounterCharge[]): Promise<void>;
  close(): Promise<void>;
}

/** A take that was released before it reached the store: it charged nothing, and has no answer. */
export class TakeReleasedError extends Error {
  constructor(readonly id: string) {
    super(`rate-limit take ${id} was released before it ran: nothing was charged`);
    this.name = 'TakeReleasedError';
  }
}

/**
 * How long a take's record outlives its charge (the time its TAT is ahead of now; past that a
 * release has nothing left to give back): the same take resent after a reconnection, or its
 * release sent again after a timeout, still finds it.
 */
export const TAKE_GRACE_MS = 10_000;
/** How long a settled take is remembered: past the settle's retries (0.25, 1 and 4 s, each after a timeout of up to 1 s). */
export const SETTLED_KEEP_MS = 60_000;
/**
 * How long a released take is remembered: a take held up in a paused or overloaded Redis that
 * long after its release would charge again. Released takes are rare (a take that failed), so
 * long is cheap.
 */
export const RELEASED_KEEP_MS = 5 * 60_000;

/**
 * The corrections a store applies: a cost that is not a finite number (a usage count gone wrong
 * upstream) is dropped, leaving the limit as it was charged at admission. Applied, NaN would make
 * the TAT NaN, which admits everything from then on, and Infinity would refuse everything.
 */
function correctable(charges: readonly CounterCharge[]): CounterCharge[] {
  return charges.filter((c) => Number.isFinite(c.cost));
}

/** What an id's record holds: the take's charges (cost and the TAT it left), or that it was settled or released. */
type TakeRecord = { state: 'taken'; charged: Array<{ cost: number; tat: number }>; until: number } | { state: 'settled' | 'released'; until: number };

export class MemoryCounterStore implements CounterStore {
  private readonly tats = new Map<string, number>();
  private readonly records = new Map<string, TakeRecord>();
  private sweepTatsAt = SWEEP_FROM;
  private sweepRecordsAt = SWEEP_FROM;

  constructor(private readonly clock: () => number = Date.now) {}

  async take(charges: readonly CounterCharge[], id?: string): Promise<GcraOutcome[]> {
    const now = this.clock();
    const record = id === undefined ? undefined : this.record(id, now);
    if (id !== undefined && record) {
      if (record.state !== 'taken') throw new TakeReleasedError(id);
      // The same take again: answered as made, not charged twice.
      return charges.map((c, i) => admitted(record.charged[i]?.tat ?? now, now, c));
    }
    const outcomes = charges.map((c) => gcra(this.tats.get(c.key) ?? 0, now, c.cost, c));
    if (outcomes.every((o) => o.allowed)) {
      charges.forEach((c, i) => this.tats.set(c.key, (outcomes[i] as GcraOutcome).nextTat));
      if (id !== undefined) {
        const ahead = Math.max(0, ...outcomes.map((o) => o.nextTat - now));
        this.records.set(id, { state: 'taken', charged: charges.map((c, i) => ({ cost: c.cost, tat: (outcomes[i] as GcraOutcome).nextTat })), until: now + ahead + TAKE_GRACE_MS });
      }
    }
    this.sweep(now);
    return outcomes;
  }

  async adjust(charges: readonly CounterCharge[]): Promise<void> {
    const now = this.clock();
    for (const c of correctable(charges)) this.tats.set(c.key, adjustTat(this.tats.get(c.key) ?? 0, now, c.cost, c, c.until));
  }

  async settle(id: string, charges: readonly CounterCharge[]): Promise<void> {
    const now = this.clock();
    const record = this.record(id, now);
    if (record && record.state !== 'taken') return;
    await this.adjust(charges);
    this.records.set(id, { state: 'settled', until: now + SETTLED_KEEP_MS });
  }

  async release(id: string, charges: readonly CounterCharge[]): Promise<void> {
    const now = this.clock();
    const record = this.record(id, now);
    if (record && record.state !== 'taken') return;
    if (record) await this.adjust(charges.map((c, i) => ({ ...c, cost: -(record.charged[i]?.cost ?? 0), until: record.charged[i]?.tat ?? 0 })));
    this.records.set(id, { state: 'released', until: now + RELEASED_KEEP_MS });
  }

  async close(): Promise<void> {
    this.tats.clear();
    this.records.clear();
  }

  private record(id: string, now: number): TakeRecord | undefined {
    const record = this.records.get(id);
    return record && record.until > now ? record : undefined;
  }

  /**
   * Drops state that has fully refilled, and records past their time, so memory follows active keys
   * only. A map is swept when it has grown to twice its size after the last sweep (at least
   * SWEEP_FROM entries): a full pass over it is then paid for by as many insertions, never by every
   * take (at 2,000 requests a second the records alone are over 100,000, most still current).
   */
  private sweep(now: number): void {
    if (this.tats.size >= this.sweepTatsAt) {
      for (const [key, tat] of this.tats) if (tat <= now) this.tats.delete(key);
      this.sweepTatsAt = Math.max(SWEEP_FROM, 2 * this.tats.size);
    }
    if (this.records.size >= this.sweepRecordsAt) {
      for (const [id, record] of this.records) if (record.until <= now) this.records.delete(id);
      this.sweepRecordsAt = Math.max(SWEEP_FROM, 2 * this.records.size);
    }
  }
}

/** The size from which the memory store sweeps a map. */
const SWEEP_FROM = 10_000;

/**
 * GCRA over every charged limit in one Lua script, so concurrent requests on any replica see a
 * consistent state and a request is charged to all its limits or to none. Time is Redis's.
 *
 * KEYS: the counters, then (when ARGV[2] is '1') the take's record. ARGV: mode (`take`, `adjust`,
 * `settle`, `release`), whether the last key is a record, then (limit, window, cost, until) per
 * counter. The record of an admitted take is `cost tat` per counter, one a line, kept while its
 * charge is ahead of now and TAKE_GRACE_MS more; a settled or released take's is the word. A take
 * returns five numbers per counter, or nothing when its id was released (or settled) already.
 */
const TAKE = `
local SLACK_MS = ${SLACK_MS}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local mode = ARGV[1]
local n = #KEYS
local record = nil
local held = false
if ARGV[2] == '1' then
  record = KEYS[n]
  n = n - 1
  held = redis.call('GET', record)
end
local done = held == 'settled' or held == 'released'
local function param(i, at) return tonumber(ARGV[2 + (i - 1) * 4 + at]) end
local function charged()
  local list = {}
  for cost, tat in string.gmatch(held, '(%S+) (%S+)') do list[#list + 1] = {tonumber(cost), tonumber(tat)} end
  return list
end
local out = {}
local next = {}
if mode == 'take' then
  -- Released (or settled): its caller gave up on it, and it charges nothing.
  if done then return {} end
  if held then
    -- The same take sent again (a reconnection resends what had no answer): answered as made.
    local list = charged()
    for i = 1, n do
      local limit, window = param(i, 1), param(i, 2)
      local interval = window / limit
      local slack = math.min(SLACK_MS, interval / 100)
      local tatNext = (list[i] or {0, now})[2]
      out[#out + 1] = 1
      out[#out + 1] = math.floor((now + window + slack - tatNext) / interval)
      out[#out + 1] = math.max(0, math.ceil(tatNext - now - slack))
      out[#out + 1] = 0
      out[#out + 1] = math.floor(tatNext)
    end
    return out
  end
  local allowed = 1
  for i = 1, n do
    local limit, window, cost = param(i, 1), param(i, 2), param(i, 3)
    local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
    local interval = window / limit
    -- See SLACK_MS: times this close count as equal.
    local slack = math.min(SLACK_MS, interval / 100)
    local start = math.max(tat, now)
    local tatNext = start + cost * interval
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
  if allowed == 0 then return out end
  local lines = {}
  local ahead = 0
  for i = 1, n do
    -- Every digit of the double: rounded to whole microseconds, a burst's TATs drifted a hair per request.
    redis.call('SET', KEYS[i], string.format('%.17g', next[i]), 'PX', math.ceil(next[i] - now) + 1000)
    lines[i] = string.format('%.17g %.17g', param(i, 3), next[i])
    ahead = math.max(ahead, next[i] - now)
  end
  if record then redis.call('SET', record, table.concat(lines, '\\n'), 'PX', math.ceil(ahead) + ${TAKE_GRACE_MS}) end
  return out
end
-- A correction: settle and release once per take, adjust as often as it is sent.
if done then return out end
local changes = {}
if mode == 'release' then
  -- What the take charged, back as far as it is still ahead of now (nothing when it never ran).
  if held then
    local list = charged()
    for i = 1, n do
      if list[i] then changes[i] = {-list[i][1], list[i][2]} end
    end
  end
  redis.call('SET', record, 'released', 'PX', ${RELEASED_KEEP_MS})
else
  for i = 1, n do changes[i] = {param(i, 3), param(i, 4)} end
  if record then redis.call('SET', record, 'settled', 'PX', ${SETTLED_KEEP_MS}) end
end
for i = 1, n do
  local change = changes[i]
  if change then
    local interval = param(i, 2) / param(i, 1)
    local cost, untilTat = change[1], change[2]
    local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
    if cost < 0 and untilTat > 0 then
      -- A refund gives back only the refunded charge's units still ahead of now (see adjustTat).
      cost = math.max(cost, -math.max(0, (untilTat - now) / interval))
    end
    local tatNext = math.max(now, math.max(tat, now) + cost * interval)
    redis.call('SET', KEYS[i], string.format('%.17g', tatNext), 'PX', math.ceil(tatNext - now) + 1000)
  end
end
return out
`;

type Mode = 'take' | 'adjust' | 'settle' | 'release';

export class RedisCounterStore implements CounterStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {
    redis.defineCommand('orGcra', { lua: TAKE });
  }

  async take(charges: readonly CounterCharge[], id?: string): Promise<GcraOutcome[]> {
    if (charges.length === 0) return [];
    const flat = (await this.run('take', charges, id)) as number[];
    if (flat.length === 0 && id !== undefined) throw new TakeReleasedError(id);
    return charges.map((_, i) => {
      const [allowed, remaining, resetMs, retryAfterMs, nextTat] = flat.slice(i * 5, i * 5 + 5) as [number, number, number, number, number];
      return { allowed: allowed === 1, remaining, resetMs, retryAfterMs, nextTat };
    });
  }

  async adjust(charges: readonly CounterCharge[]): Promise<void> {
    const corrections = correctable(charges);
    if (corrections.length > 0) await this.run('adjust', corrections);
  }

  async settle(id: string, charges: readonly CounterCharge[]): Promise<void> {
    // A settle that corrects nothing is still recorded: the same settle sent again changes nothing either.
    await this.run('settle', correctable(charges), id);
  }

  async release(id: string, charges: readonly CounterCharge[]): Promise<void> {
    await this.run('release', charges, id);
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }

  private run(mode: Mode, charges: readonly CounterCharge[], id?: string): Promise<unknown> {
    // One script takes every limit of a request: the `{rl}` hash tag keeps them, and the take's
    // record, in one slot of a Redis Cluster.
    const keys = charges.map((c) => `${this.prefix}{rl}:${c.key}`);
    if (id !== undefined) keys.push(`${this.prefix}{rl}:take:${id}`);
    const args = [mode, id === undefined ? '0' : '1', ...charges.flatMap((c) => [String(c.limit), String(c.windowMs), String(c.cost), String(c.until ?? 0)])];
    const command = (this.redis as unknown as Record<string, (n: number, ...a: string[]) => Promise<unknown>>)['orGcra'] as (n: number, ...a: string[]) => Promise<unknown>;
    return command.call(this.redis, keys.length, ...keys, ...args);
  }
}
