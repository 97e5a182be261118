import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { LedgerLine } from './budget-ledger';
import { RedisBudgetLedger } from './redis-budget-ledger';

const DAY = 86_400_000;

/** The redis-server the integration project's global setup started. */
function redisUrl(): string {
  const url = process.env['OPENROUTER_TEST_REDIS_URL'];
  if (!url) throw new Error("OPENROUTER_TEST_REDIS_URL is not set: run this suite through jest's integration project");
  return url;
}

/** Polls `condition` every 20 ms until it holds; fails after `timeoutMs`. */
async function until(condition: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((done) => setTimeout(done, 20));
  }
}

function line(account: string, limitMicros: number): LedgerLine {
  return { account, limitMicros, hard: true, keepMs: DAY };
}

describe('the Redis budget ledger (redis-server)', () => {
  let control: Redis;
  let prefix: string;
  const ledgers: RedisBudgetLedger[] = [];
  /** A ledger on a connection of its own, as another ingress replica has. */
  const replica = (): RedisBudgetLedger => {
    const ledger = new RedisBudgetLedger(new Redis(redisUrl()), prefix);
    ledgers.push(ledger);
    return ledger;
  };
  /** Redis's own time, in ms: the clock reservations expire by. */
  const redisNow = async (): Promise<number> => {
    const [seconds, micros] = await control.time();
    return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
  };

  beforeEach(() => {
    control = new Redis(redisUrl());
    prefix = `budget-ledger-${randomBytes(4).toString('hex')}:`;
  });
  afterEach(async () => {
    await Promise.all(ledgers.splice(0).map((l) => l.close()));
    control.disconnect();
  });

  it('keeps a renewed reservation past its first expiry, and never renews a settled one', async () => {
    const [holder, other] = [replica(), replica()];
    const budget = line('renew:d', 1_000);
    // Held 2 s at first: long enough for the renewal to reach it on a slow machine.
    expect(await holder.reserve({ id: 'long', lines: [budget], worstMicros: 1_000, floorMicros: 1_000, ttlMs: 2_000 })).toEqual({ ok: true, amountMicros: 1_000 });
    expect(await holder.renew('long', 60_000)).toBe(true);
    // Read after the reserve ran: its first expiry lies before this plus 2 s.
    const renewedAt = await redisNow();
    await until(async () => (await redisNow()) > renewedAt + 2_000, 'the first expiry to pass');
    expect(await other.sweep()).toBe(0);
    expect((await other.reserve({ id: 'late', lines: [budget], worstMicros: 10, floorMicros: 10, ttlMs: 60_000 })).ok).toBe(false);
    // Settled, it is no longer held: a renewal after it changes nothing and adds no expiry back.
    await holder.settle('long', [budget], 300);
    expect(await holder.renew('long', 60_000)).toBe(false);
    expect(await control.zscore(`${prefix}{budgets}:expiry`, 'long')).toBeNull();
    expect((await other.read([budget.account]))[0]).toEqual({ spentMicros: 300, reservedMicros: 0 });
  });

  it('never revives a reservation whose time has passed: a renewal after its expiry is refused', async () => {
    const [holder, other] = [replica(), replica()];
    const budget = line('late-renewal:d', 1_000);
    expect((await holder.reserve({ id: 'stalled', lines: [budget], worstMicros: 1_000, floorMicros: 1_000, ttlMs: 200 })).ok).toBe(true);
    const reservedAt = await redisNow();
    await until(async () => (await redisNow()) > reservedAt + 400, 'the reservation to expire');
    expect(await holder.renew('stalled', 60_000)).toBe(false);
    expect((await other.read([budget.account]))[0]).toEqual({ spentMicros: 0, reservedMicros: 0 });
    expect((await other.reserve({ id: 'next', lines: [budget], worstMicros: 1_000, floorMicros: 1_000, ttlMs: 60_000 })).ok).toBe(true);
  });

  it('applies a reserve and a settle once when the client sends them again (ioredis resends what was in flight when its connection dropped)', async () => {
    const [holder, other] = [replica(), replica()];
    const budget = line('replayed:d', 1_000);
    const request = { id: 'replayed', lines: [budget], worstMicros: 400, floorMicros: 400, ttlMs: 60_000 };
    expect(await holder.reserve(request)).toEqual({ ok: true, amountMicros: 400 });
    // The first run's reply was lost: the same reservation arrives again and is answered as made.
    expect(await holder.reserve(request)).toEqual({ ok: true, amountMicros: 400 });
    expect((await other.read([budget.account]))[0]).toEqual({ spentMicros: 0, reservedMicros: 400 });
    expect(await holder.settle('replayed', [budget], 250)).toEqual([250]);
    expect(await holder.settle('replayed', [budget], 250)).toEqual([250]);
    // Nor does a reserve resent after its settle hold anything again.
    expect((await holder.reserve(request)).ok).toBe(true);
    expect((await other.read([budget.account]))[0]).toEqual({ spentMicros: 250, reservedMicros: 0 });
    expect(await control.zscore(`${prefix}{budgets}:expiry`, 'replayed')).toBeNull();
    // A settle that finds no reservation (it expired, or Redis lost it) still counts the spend,
    // once however often it is sent.
    expect(await holder.settle('never-held', [budget], 100)).toEqual([350]);
    expect(await holder.settle('never-held', [budget], 100)).toEqual([350]);
    // A give-back (settle at 0) that overtook its reserve: the late reserve holds nothing.
    expect(await holder.settle('overtaken', [budget], 0)).toEqual([350]);
    expect(await holder.reserve({ ...request, id: 'overtaken' })).toMatchObject({ ok: true });
    expect((await other.read([budget.account]))[0]).toEqual({ spentMicros: 350, reservedMicros: 0 });
  });

  it('counts a settle resent after its reservation expired once', async () => {
    const ledger = replica();
    const budget = line('expired:d', 1_000);
    expect(await ledger.reserve({ id: 'short', lines: [budget], worstMicros: 300, floorMicros: 300, ttlMs: 50 })).toEqual({ ok: true, amountMicros: 300 });
    // Past its expiry, swept by the next call: its room is given back.
    await until(async () => (await ledger.sweep()) > 0 || (await ledger.read([budget.account]))[0]?.reservedMicros === 0, 'the reservation to expire');
    expect((await ledger.read([budget.account]))[0]).toEqual({ spentMicros: 0, reservedMicros: 0 });
    expect(await ledger.settle('short', [budget], 200)).toEqual([200]);
    expect(await ledger.settle('short', [budget], 200)).toEqual([200]);
  });

  it('lowers spend by no more than the allowance, however many runs and replicas ask', async () => {
    const [a, b] = [replica(), replica()];
    const budget = line('lower:2025-06', 10_000_000);
    await a.settle('spent', [budget], 1_200_000);
    expect(await a.lowerWithin(budget, 200_000, 40)).toEqual({ spentMicros: 1_199_960, loweredMicros: 40 });
    expect(await b.lowerWithin(budget, 200_000, 40)).toEqual({ spentMicros: 1_199_960, loweredMicros: 0 });
    // Ten more stored requests: ten more micro-units, once.
    expect(await b.lowerWithin(budget, 200_000, 50)).toEqual({ spentMicros: 1_199_950, loweredMicros: 10 });
    expect(await a.lowerWithin(budget, 5, 60)).toEqual({ spentMicros: 1_199_945, loweredMicros: 5 });
    expect(await a.lowerWithin(budget, 200_000, 60)).toEqual({ spentMicros: 1_199_940, loweredMicros: 5 });
  });
});
