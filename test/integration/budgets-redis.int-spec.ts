import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { MemoryBudgetLedger, RedisBudgetLedger, type BudgetLedger, type LedgerLine } from '@openrouter/budgets';
import { sharedRedisUrl } from '../support/infra/shared-infra';
import { waitFor } from '../support/infra/wait-for';

const DAY = 86_400_000;

function line(account: string, limitMicros: number, hard = true): LedgerLine {
  return { account, limitMicros, hard, keepMs: DAY };
}

/** A seeded generator, so a failing run can be repeated. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1_664_525 + 1_013_904_223) >>> 0;
    return s / 2 ** 32;
  };
}

interface Subject {
  ledgers: BudgetLedger[];
  close(): Promise<void>;
}

const subjects: Array<[string, () => Subject]> = [
  [
    'Redis (two connections, as two ingress replicas)',
    () => {
      const prefix = `budgets-${randomBytes(4).toString('hex')}:`;
      const ledgers = [new RedisBudgetLedger(new Redis(sharedRedisUrl()), prefix), new RedisBudgetLedger(new Redis(sharedRedisUrl()), prefix)];
      return { ledgers, close: async () => void (await Promise.all(ledgers.map((l) => l.close()))) };
    },
  ],
  [
    'memory',
    () => {
      const ledger = new MemoryBudgetLedger();
      return { ledgers: [ledger], close: () => ledger.close() };
    },
  ],
];

describe.each(subjects)('budget ledger on %s', (_name, make) => {
  let subject: Subject;
  const ledger = (i: number): BudgetLedger => subject.ledgers[i % subject.ledgers.length] as BudgetLedger;

  beforeEach(() => {
    subject = make();
  });
  afterEach(async () => subject.close());

  it('never lets 200 concurrent requests spend more than a hard budget that allows about 50', async () => {
    const worst = 20_000; // 0.02 in micro-units
    const budget = line('org:2025-06', 1_000_000); // 1.00: room for 50 worst cases
    const project = line('project:2025-06', 100_000_000, false);
    const next = random(42);
    // Each request reserves its worst case, then costs a random part of it (some fail and cost nothing).
    const actual = Array.from({ length: 200 }, () => (next() < 0.1 ? 0 : Math.ceil(worst * (0.3 + 0.7 * next()))));
    const results = await Promise.all(
      actual.map(async (cost, i) => {
        const id = `r${i}`;
        const outcome = await ledger(i).reserve({ id, lines: [budget, project], worstMicros: worst, floorMicros: worst, ttlMs: 60_000 });
        if (!outcome.ok) return 0;
        await ledger(i + 1).settle(id, [budget, project], cost);
        return cost;
      }),
    );
    const accepted = results.filter((_, i) => results[i] !== 0 || actual[i] === 0);
    const spent = results.reduce((a, b) => a + b, 0);
    const [org, proj] = await ledger(0).read([budget.account, project.account]);
    expect(spent).toBeLessThanOrEqual(budget.limitMicros);
    expect(org).toEqual({ spentMicros: spent, reservedMicros: 0 });
    // The soft project budget counts the same spend, and a refused request was charged to neither.
    expect(proj).toEqual({ spentMicros: spent, reservedMicros: 0 });
    // Settling below the worst case frees room, so more than 50 get in, but never past the budget.
    expect(accepted.length).toBeGreaterThanOrEqual(50);
    expect(accepted.length).toBeLessThan(200);
    const refused = await ledger(0).reserve({ id: 'late', lines: [budget], worstMicros: budget.limitMicros - spent + 1, floorMicros: budget.limitMicros - spent + 1, ttlMs: 60_000 });
    expect(refused.ok).toBe(false);
  });

  it('admits exactly as many concurrent worst cases as fit when nothing settles', async () => {
    const budget = line('tight:2025-06', 1_000_000);
    const outcomes = await Promise.all(Array.from({ length: 200 }, (_, i) => ledger(i).reserve({ id: `h${i}`, lines: [budget], worstMicros: 20_000, floorMicros: 20_000, ttlMs: 60_000 })));
    expect(outcomes.filter((o) => o.ok)).toHaveLength(50);
    expect((await ledger(0).read([budget.account]))[0]).toEqual({ spentMicros: 0, reservedMicros: 1_000_000 });
  });

  it('reserves on every budget or on none', async () => {
    const roomy = line('roomy:d', 10_000_000);
    const full = line('full:d', 100);
    const outcome = await ledger(0).reserve({ id: 'x', lines: [roomy, full], worstMicros: 500, floorMicros: 500, ttlMs: 60_000 });
    expect(outcome).toEqual({ ok: false, line: 1, spentMicros: 0, reservedMicros: 0 });
    expect((await ledger(0).read([roomy.account]))[0]).toEqual({ spentMicros: 0, reservedMicros: 0 });
  });

  it('settles with the real cost and releases a failed request', async () => {
    const budget = line('settle:d', 1_000);
    expect(await ledger(0).reserve({ id: 'a', lines: [budget], worstMicros: 600, floorMicros: 600, ttlMs: 60_000 })).toEqual({ ok: true, amountMicros: 600 });
    expect((await ledger(1).reserve({ id: 'b', lines: [budget], worstMicros: 600, floorMicros: 600, ttlMs: 60_000 })).ok).toBe(false);
    expect(await ledger(1).settle('a', [budget], 250)).toEqual([250]);
    expect(await ledger(0).reserve({ id: 'c', lines: [budget], worstMicros: 600, floorMicros: 600, ttlMs: 60_000 })).toEqual({ ok: true, amountMicros: 600 });
    expect(await ledger(0).settle('c', [budget], 0)).toEqual([250]);
    expect((await ledger(0).read([budget.account]))[0]).toEqual({ spentMicros: 250, reservedMicros: 0 });
    // Settling twice counts once.
    await ledger(0).settle('c', [budget], 0);
    expect((await ledger(0).read([budget.account]))[0]).toEqual({ spentMicros: 250, reservedMicros: 0 });
  });

  it('reserves what is left, down to the floor, for a stream', async () => {
    const budget = line('partial:d', 1_000);
    await ledger(0).settle('spent', [budget], 700);
    expect(await ledger(0).reserve({ id: 's', lines: [budget], worstMicros: 900, floorMicros: 100, ttlMs: 60_000 })).toEqual({ ok: true, amountMicros: 300 });
    expect((await ledger(0).reserve({ id: 't', lines: [budget], worstMicros: 900, floorMicros: 1, ttlMs: 60_000 })).ok).toBe(false);
  });

  it('returns the reservations of a process that died once they expire', async () => {
    const budget = line('crash:d', 1_000);
    // The "crashed" process reserved everything and never settled; held 2 s, so it still holds at the
    // next reserve on a slow machine.
    expect((await ledger(0).reserve({ id: 'dead', lines: [budget], worstMicros: 1_000, floorMicros: 1_000, ttlMs: 2_000 })).ok).toBe(true);
    expect((await ledger(1).reserve({ id: 'live', lines: [budget], worstMicros: 10, floorMicros: 10, ttlMs: 60_000 })).ok).toBe(false);
    await waitFor(async () => (await ledger(1).reserve({ id: 'live', lines: [budget], worstMicros: 10, floorMicros: 10, ttlMs: 60_000 })).ok, { timeoutMs: 15_000, intervalMs: 50, what: 'the expired reservation to be returned' });
    expect((await ledger(0).read([budget.account]))[0]).toEqual({ spentMicros: 0, reservedMicros: 10 });
    // A late settle of the expired reservation still counts its spend, and returns nothing twice.
    await ledger(0).settle('dead', [budget], 400);
    expect((await ledger(0).read([budget.account]))[0]).toEqual({ spentMicros: 400, reservedMicros: 10 });
  });

  it('marks a threshold once per period', async () => {
    expect(await ledger(0).markOnce('b:2025-06:80', DAY)).toBe(true);
    expect(await ledger(1).markOnce('b:2025-06:80', DAY)).toBe(false);
    await ledger(1).unmark('b:2025-06:80');
    expect(await ledger(0).markOnce('b:2025-06:80', DAY)).toBe(true);
  });

  it('corrects drift by a signed delta', async () => {
    const budget = line('drift:d', 1_000);
    await ledger(0).settle('x', [budget], 300);
    expect(await ledger(0).adjust(budget, -100)).toBe(200);
    expect(await ledger(1).adjust(budget, 50)).toBe(250);
  });
});
