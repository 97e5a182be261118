import type { Redis } from 'ioredis';
import type { AccountState, BudgetLedger, LedgerLine, Lowered, ReserveOutcome, ReserveRequest } from './budget-ledger';

/**
 * Returns every reservation whose expiry (its score in the expiry set) has passed: each holds
 * its amount on a list of `reserved` counters, kept in its record as `amount\nkey\nkey…`.
 * Shared by every script, so a crashed process's reservations come back with the next call.
 */
const SWEEP = `
local function unreserve(record)
  local amount = nil
  for part in string.gmatch(record, '[^\\n]+') do
    if amount == nil then
      amount = tonumber(part)
    else
      local left = redis.call('DECRBY', part, amount)
      if left < 0 then redis.call('INCRBY', part, -left) end
    end
  end
end
local function sweep(expiry, recordPrefix, now)
  local due = redis.call('ZRANGEBYSCORE', expiry, '-inf', now, 'LIMIT', 0, 200)
  for _, id in ipairs(due) do
    local record = redis.call('GET', recordPrefix .. id)
    if record then
      unreserve(record)
      redis.call('DEL', recordPrefix .. id)
    end
    redis.call('ZREM', expiry, id)
  end
  return #due
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`;

/**
 * What a settled reservation's record becomes, for {@link SETTLED_KEEP_MS}: the client resends the
 * commands that were in flight when its connection dropped (their replies lost, not their effect),
 * so a settle or a reserve may arrive twice, and must change nothing the second time.
 */
const SETTLED = 'settled';

/** How long a settled reservation's record is kept, so that a settle or reserve resent after a reconnection finds it. */
const SETTLED_KEEP_MS = 5 * 60_000;

/**
 * KEYS: expiry set, reservation record, then (spent, reserved) per line.
 * ARGV: record prefix, reservation id, ttl ms, worst, floor, then (limit, hard, keep ms) per line.
 * Returns {1, amount} or {0, line, spent, reserved}. A reservation already made (the same one sent
 * again) is answered as made, and not held twice: its second hold would never be returned.
 */
const RESERVE = `${SWEEP}
sweep(KEYS[1], ARGV[1], now)
local held = redis.call('GET', KEYS[2])
if held then return {1, tonumber(string.match(held, '^%d+')) or 0} end
local lines = (#KEYS - 2) / 2
local amount = tonumber(ARGV[4])
local floor = tonumber(ARGV[5])
for i = 1, lines do
  if ARGV[5 + (i - 1) * 3 + 2] == '1' then
    local limit = tonumber(ARGV[5 + (i - 1) * 3 + 1])
    local spent = tonumber(redis.call('GET', KEYS[2 + (i - 1) * 2 + 1]) or '0')
    local reserved = tonumber(redis.call('GET', KEYS[2 + (i - 1) * 2 + 2]) or '0')
    local left = limit - spent - reserved
    if left <= 0 or left < floor then return {0, i, spent, reserved} end
    if left < amount then amount = left end
  end
end
local text = string.format('%d', amount)
local record = text
for i = 1, lines do
  local reserved = KEYS[2 + (i - 1) * 2 + 2]
  local keep = ARGV[5 + (i - 1) * 3 + 3]
  redis.call('INCRBY', reserved, text)
  redis.call('PEXPIRE', reserved, keep)
  record = record .. '\\n' .. reserved
end
redis.call('SET', KEYS[2], record)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2])
return {1, amount}
`;

/**
 * KEYS: expiry set, reservation record, then spent per line.
 * ARGV: record prefix, reservation id, actual, settled record's keep ms, then keep ms per line.
 * Returns each line's spend. A reservation settled already (the same settle sent again) is not
 * counted again; one no longer held for another reason (expired, or lost by Redis) is, and is
 * marked settled too, so that the same settle sent again is not counted twice, and a reserve that
 * arrives after it (sent before, delayed) holds nothing.
 */
const SETTLE = `${SWEEP}
sweep(KEYS[1], ARGV[1], now)
local record = redis.call('GET', KEYS[2])
local again = record == '${SETTLED}'
if record and not again then unreserve(record) end
if not again then redis.call('SET', KEYS[2], '${SETTLED}', 'PX', ARGV[4]) end
redis.call('ZREM', KEYS[1], ARGV[2])
local out = {}
for i = 3, #KEYS do
  if ARGV[3] ~= '0' and not again then
    out[#out + 1] = redis.call('INCRBY', KEYS[i], ARGV[3])
    redis.call('PEXPIRE', KEYS[i], ARGV[5 + (i - 3)])
  else
    out[#out + 1] = tonumber(redis.call('GET', KEYS[i]) or '0')
  end
end
return out
`;

/**
 * KEYS: expiry set, reservation record. ARGV: record prefix, reservation id, ttl ms.
 * Returns 1 when the expiry was pushed back, 0 when the reservation is not held any more. The
 * sweep runs first, and the score is checked too (a sweep returns at most 200 at a time): a
 * reservation whose time has passed is never revived, as its room may already be reserved again.
 */
const RENEW = `${SWEEP}
sweep(KEYS[1], ARGV[1], now)
local expiry = redis.call('ZSCORE', KEYS[1], ARGV[2])
if not expiry or tonumber(expiry) <= now or redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[3]), ARGV[2])
return 1
`;

/** KEYS: expiry set. ARGV: record prefix. */
const SWEEP_ONLY = `${SWEEP}
return sweep(KEYS[1], ARGV[1], now)
`;

/** KEYS: spent. ARGV: delta, keep ms. */
const ADJUST = `
local spent = redis.call('INCRBY', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return spent
`;

/**
 * KEYS: spent, rounding allowance taken. ARGV: most to lower, the period's allowance, keep ms.
 * Returns {spent, lowered}.
 */
const LOWER_WITHIN = `
local taken = tonumber(redis.call('GET', KEYS[2]) or '0')
local lowered = math.min(tonumber(ARGV[1]), tonumber(ARGV[2]) - taken)
if lowered <= 0 then return {tonumber(redis.call('GET', KEYS[1]) or '0'), 0} end
local text = string.format('%d', lowered)
local spent = redis.call('DECRBY', KEYS[1], text)
redis.call('INCRBY', KEYS[2], text)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return {spent, lowered}
`;

/**
 * KEYS: expiry set, then (spent, reserved) per account. ARGV: record prefix. Returns spent,
 * reserved per account, reserved without the reservations whose expiry has passed (a sweep would
 * return them: up to as many as it returns at once). Reads only: sweeps nothing, writes nothing.
 */
const STANDING = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 200)) do
  local record = redis.call('GET', ARGV[1] .. id)
  if record then
    local amount = nil
    for part in string.gmatch(record, '[^\\n]+') do
      if amount == nil then amount = tonumber(part) else due[part] = (due[part] or 0) + amount end
    end
  end
end
local out = {}
for i = 2, #KEYS, 2 do
  local reserved = tonumber(redis.call('GET', KEYS[i + 1]) or '0') - (due[KEYS[i + 1]] or 0)
  if reserved < 0 then reserved = 0 end
  out[#out + 1] = tonumber(redis.call('GET', KEYS[i]) or '0')
  out[#out + 1] = reserved
end
return out
`;

type Script = (numberOfKeys: number, ...args: string[]) => Promise<unknown>;

/**
 * Budget accounts in Redis. Every key carries the `{budgets}` hash tag so one script can touch
 * all of a request's accounts on a Redis Cluster too. Time is Redis's, so replicas agree on
 * which reservations have expired.
 */
export class RedisBudgetLedger implements BudgetLedger {
  private readonly base: string;

  constructor(
    private readonly redis: Redis,
    prefix: string,
  ) {
    this.base = `${prefix}{budgets}:`;
    redis.defineCommand('orBudgetReserve', { lua: RESERVE });
    redis.defineCommand('orBudgetSettle', { lua: SETTLE });
    redis.defineCommand('orBudgetSweep', { lua: SWEEP_ONLY });
    redis.defineCommand('orBudgetAdjust', { lua: ADJUST });
    redis.defineCommand('orBudgetRenew', { lua: RENEW });
    redis.defineCommand('orBudgetLowerWithin', { lua: LOWER_WITHIN });
    redis.defineCommand('orBudgetStanding', { lua: STANDING });
  }

  async reserve(request: ReserveRequest): Promise<ReserveOutcome> {
    const keys = [this.expiryKey(), this.recordKey(request.id), ...request.lines.flatMap((l) => [this.spentKey(l.account), this.reservedKey(l.account)])];
    const args = [
      this.recordKey(''),
      request.id,
      String(Math.max(1, Math.round(request.ttlMs))),
      integer(request.worstMicros),
      integer(request.floorMicros),
      ...request.lines.flatMap((l) => [integer(l.limitMicros), l.hard ? '1' : '0', String(Math.max(1, Math.round(l.keepMs)))]),
    ];
    const result = (await this.script('orBudgetReserve')(keys.length, ...keys, ...args)) as number[];
    if (result[0] === 1) return { ok: true, amountMicros: Number(result[1]) };
    return { ok: false, line: Number(result[1]) - 1, spentMicros: Number(result[2]), reservedMicros: Number(result[3]) };
  }

  async settle(id: string, lines: readonly LedgerLine[], actualMicros: number): Promise<number[]> {
    const keys = [this.expiryKey(), this.recordKey(id), ...lines.map((l) => this.spentKey(l.account))];
    const args = [this.recordKey(''), id, integer(actualMicros), String(SETTLED_KEEP_MS), ...lines.map((l) => String(Math.max(1, Math.round(l.keepMs))))];
    const result = (await this.script('orBudgetSettle')(keys.length, ...keys, ...args)) as number[];
    return result.map(Number);
  }

  async renew(id: string, ttlMs: number): Promise<boolean> {
    const renewed = await this.script('orBudgetRenew')(2, this.expiryKey(), this.recordKey(id), this.recordKey(''), id, String(Math.max(1, Math.round(ttlMs))));
    return Number(renewed) === 1;
  }

  async read(accounts: readonly string[]): Promise<AccountState[]> {
    if (accounts.length === 0) return [];
    const values = await this.redis.mget(...accounts.flatMap((a) => [this.spentKey(a), this.reservedKey(a)]));
    return accounts.map((_, i) => ({ spentMicros: Number(values[i * 2] ?? 0), reservedMicros: Number(values[i * 2 + 1] ?? 0) }));
  }

  async standing(accounts: readonly string[]): Promise<AccountState[]> {
    if (accounts.length === 0) return [];
    const keys = [this.expiryKey(), ...accounts.flatMap((a) => [this.spentKey(a), this.reservedKey(a)])];
    const values = (await this.script('orBudgetStanding')(keys.length, ...keys, this.recordKey(''))) as number[];
    return accounts.map((_, i) => ({ spentMicros: Number(values[i * 2] ?? 0), reservedMicros: Number(values[i * 2 + 1] ?? 0) }));
  }

  async adjust(line: LedgerLine, deltaMicros: number): Promise<number> {
    const spent = await this.script('orBudgetAdjust')(1, this.spentKey(line.account), integer(deltaMicros, true), String(Math.max(1, Math.round(line.keepMs))));
    return Number(spent);
  }

  async lowerWithin(line: LedgerLine, micros: number, allowanceMicros: number): Promise<Lowered> {
    const keys = [this.spentKey(line.account), this.roundingKey(line.account)];
    const result = (await this.script('orBudgetLowerWithin')(keys.length, ...keys, integer(micros), integer(allowanceMicros), String(Math.max(1, Math.round(line.keepMs))))) as number[];
    return { spentMicros: Number(result[0]), loweredMicros: Number(result[1]) };
  }

  async markOnce(marker: string, keepMs: number): Promise<boolean> {
    return (await this.redis.set(`${this.base}mark:${marker}`, '1', 'PX', Math.max(1, Math.round(keepMs)), 'NX')) === 'OK';
  }

  async keepMark(marker: string, keepMs: number): Promise<void> {
    await this.redis.pexpire(`${this.base}mark:${marker}`, Math.max(1, Math.round(keepMs)));
  }

  async unmark(marker: string): Promise<void> {
    await this.redis.del(`${this.base}mark:${marker}`);
  }

  async sweep(): Promise<number> {
    return Number(await this.script('orBudgetSweep')(1, this.expiryKey(), this.recordKey('')));
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }

  private script(name: string): Script {
    const command = (this.redis as unknown as Record<string, Script>)[name];
    if (!command) throw new Error(`Redis script ${name} is not defined`);
    return command.bind(this.redis);
  }

  private expiryKey(): string {
    return `${this.base}expiry`;
  }
  private recordKey(id: string): string {
    return `${this.base}res:${id}`;
  }
  private spentKey(account: string): string {
    return `${this.base}spent:${account}`;
  }
  private reservedKey(account: string): string {
    return `${this.base}reserved:${account}`;
  }
  private roundingKey(account: string): string {
    return `${this.base}rounding:${account}`;
  }
}

function integer(value: number, signed = false): string {
  if (!Number.isSafeInteger(value) || (!signed && value < 0)) throw new RangeError(`not a budget amount in micro-units: ${value}`);
  return String(value);
}
