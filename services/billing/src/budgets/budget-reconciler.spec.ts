import { budgetSchema } from '@openrouter/config';
import type { budgetv1 } from '@openrouter/contracts';
import { accountAt, BudgetCatalog, InProcessBudgetBus, MemoryBudgetLedger, MemoryBudgetStore, ThresholdAlerts } from '@openrouter/budgets';
import { createLogger } from '@openrouter/observability';
import type { Lease, LeaseHold } from '@openrouter/service-runtime';
import { BudgetReconciler, type SpendSource } from './budget-reconciler';

const NOW = Date.parse('2025-06-14T12:00:00Z');
const logger = createLogger('test', 'silent');

describe('BudgetReconciler', () => {
  const budget = budgetSchema.parse({ id: 'b', scope: { org: 'acme', project: 'p' }, period: 'monthly', amount: '10' });
  const line = accountAt(budget, NOW).line;

  function setup(stored: string, pending = 0, requests = 1_000_000) {
    const ledger = new MemoryBudgetLedger(() => NOW);
    const calls: unknown[] = [];
    const state = { pending, stored, requests };
    const current = accountAt(budget, NOW).window;
    const store: SpendSource = {
      spend: async (fromMs, toMs, filters) => {
        calls.push({ fromMs, toMs, filters });
        // Only the current period has stored spend.
        return fromMs === current.startMs ? [{ currency: 'USD', cost: state.stored, requests: state.requests }] : [];
      },
    };
    const reconciler = new BudgetReconciler([budget], ledger, store, async () => state.pending, logger, { clock: () => NOW });
    return { ledger, reconciler, calls, state };
  }

  it('raises a ledger that counts less than was stored at once, over the budget period and scope', async () => {
    const { ledger, reconciler, calls } = setup('1.5');
    await ledger.settle('r', [line], 1_000_000);
    const [result] = await reconciler.reconcile();
    expect(result).toMatchObject({ ledgerMicros: 1_000_000, storedMicros: 1_500_000, correctionMicros: 500_000 });
    expect((await ledger.read([line.account]))[0]?.spentMicros).toBe(1_500_000);
    expect(calls[0]).toEqual({ fromMs: Date.parse('2025-06-01T00:00:00Z'), toMs: Date.parse('2025-07-01T00:00:00Z'), filters: [['org', 'acme'], ['project', 'p']] });
  });

  it('corrects nothing once its lease has passed to another replica during the run, and stops there', async () => {
    const more = ['o', 't'].map((id) => budgetSchema.parse({ id, scope: { org: 'acme' }, period: 'monthly', amount: '10' }));
    const ledger = new MemoryBudgetLedger(() => NOW);
    const store: SpendSource = { spend: async () => [{ currency: 'USD', cost: '1.5', requests: 10 }] };
    // Held at the first correction; by the second the lease had lapsed and another replica had it.
    const holds: LeaseHold[] = ['renewed', 'held-by-other'];
    const asked: LeaseHold[] = [];
    const lease: Lease = {
      hold: async () => true,
      holdState: async () => {
        const state = holds.shift() ?? 'held-by-other';
        asked.push(state);
        return state;
      },
      release: async () => undefined,
    };
    const reconciler = new BudgetReconciler([budget, ...more], ledger, store, async () => 0, logger, { clock: () => NOW, lease });
    const results = await reconciler.reconcileIfLeased();
    expect(results?.map((r) => [r.budget, r.correctionMicros, r.leaseLost])).toEqual([
      ['b', 1_500_000, undefined],
      ['o', 0, true],
    ]);
    expect(asked).toEqual(['renewed', 'held-by-other']);
    const spent = async (): Promise<number[]> => (await ledger.read(['b', 'o', 't'].map((id) => accountAt({ ...budget, id }, NOW).line.account))).map((s) => s?.spentMicros ?? 0);
    expect(await spent()).toEqual([1_500_000, 0, 0]);
    // Held throughout: the rest is corrected, and what was corrected is not corrected again.
    holds.push('renewed', 'renewed');
    expect((await reconciler.reconcileIfLeased())?.map((r) => r.correctionMicros)).toEqual([0, 1_500_000, 1_500_000]);
    expect(await spent()).toEqual([1_500_000, 1_500_000, 1_500_000]);
  });

  it('reconciles the budgets of its catalog as they stand at each run: one created through the admin API after it started, not one deleted', async () => {
    const store = new MemoryBudgetStore();
    const catalog = new BudgetCatalog([], store);
    await catalog.start();
    const ledger = new MemoryBudgetLedger(() => NOW);
    const spendOf: SpendSource = { spend: async (_from, _to, filters) => (filters[0]?.[1] === 'acme' ? [{ currency: 'USD', cost: '2', requests: 10 }] : []) };
    const reconciler = new BudgetReconciler(catalog, ledger, spendOf, async () => 0, logger, { clock: () => NOW });
    expect(await reconciler.reconcile()).toEqual([]);
    const at = new Date(NOW).toISOString();
    // Written by an ingress replica; this billing replica was not told (its announcement was lost).
    await store.update('api-daily', () => ({ ...budgetSchema.parse({ id: 'api-daily', scope: { org: 'acme' }, period: 'daily', amount: '5' }), createdAt: at, updatedAt: at }));
    const [result] = await reconciler.reconcile();
    expect(result).toMatchObject({ budget: 'api-daily', account: 'api-daily:2025-06-14', ledgerMicros: 0, storedMicros: 2_000_000, correctionMicros: 2_000_000 });
    await store.update('api-daily', () => undefined);
    expect(await reconciler.reconcile()).toEqual([]);
    await reconciler.close();
  });

  it("counts a budget created through the admin API mid-period from its creation, as its ledger does, and not the periods before it", async () => {
    const store = new MemoryBudgetStore();
    const catalog = new BudgetCatalog([], store);
    await catalog.start();
    const ledger = new MemoryBudgetLedger(() => NOW);
    const asked: Array<{ fromMs: number; toMs: number }> = [];
    // Spend of the whole day before the creation, and a little after it.
    const spendOf: SpendSource = { spend: async (fromMs, toMs) => (asked.push({ fromMs, toMs }), [{ currency: 'USD', cost: fromMs < NOW - 3_600_000 ? '4' : '0.5', requests: 10 }]) };
    const reconciler = new BudgetReconciler(catalog, ledger, spendOf, async () => 0, logger, { clock: () => NOW });
    const createdAt = new Date(NOW - 3_600_000).toISOString();
    await store.update('fresh-daily', () => ({ ...budgetSchema.parse({ id: 'fresh-daily', scope: { org: 'acme' }, period: 'daily', amount: '1' }), createdAt, updatedAt: createdAt, creationId: 'c1' }));
    const results = await reconciler.reconcile();
    // Today's period from 11:00, when it was created; yesterday's (a first run looks back a day) not at all.
    expect(asked).toEqual([{ fromMs: NOW - 3_600_000, toMs: Date.parse('2025-06-15T00:00:00Z') }]);
    expect(results).toEqual([expect.objectContaining({ budget: 'fresh-daily', account: 'fresh-daily~c1:2025-06-14', storedMicros: 500_000, correctionMicros: 500_000 })]);
    await reconciler.close();
  });

  it('runs periodically with a catalog that holds no budget yet, since one may be created at any time', async () => {
    jest.useFakeTimers({ now: NOW });
    try {
      const store = new MemoryBudgetStore();
      const catalog = new BudgetCatalog([], store);
      const asked: string[] = [];
      const spendOf: SpendSource = { spend: async (_from, _to, filters) => (asked.push(String(filters[0]?.[1])), []) };
      const reconciler = new BudgetReconciler(catalog, new MemoryBudgetLedger(() => NOW), spendOf, async () => 0, logger, { clock: () => NOW });
      reconciler.start(60_000);
      const at = new Date(NOW).toISOString();
      await store.update('later', () => ({ ...budgetSchema.parse({ id: 'later', scope: { org: 'acme' }, period: 'monthly', amount: '5' }), createdAt: at, updatedAt: at }));
      await jest.advanceTimersByTimeAsync(60_000);
      expect(asked).toContain('acme');
      await reconciler.close();
    } finally {
      jest.useRealTimers();
    }
  });

  it('lowers a surplus only when the bus is quiet and the surplus was seen twice', async () => {
    const { ledger, reconciler, state } = setup('1', 3);
    await ledger.settle('r', [line], 1_200_000);
    expect((await reconciler.reconcile())[0]?.correctionMicros).toBe(0);
    expect((await reconciler.reconcile())[0]?.correctionMicros).toBe(0); // events still pending
    state.pending = 0;
    expect((await reconciler.reconcile())[0]?.correctionMicros).toBe(-200_000);
    expect((await ledger.read([line.account]))[0]?.spentMicros).toBe(1_000_000);
  });

  it('lowers a surplus by no more than the rounding of the stored requests: the rest is spend still on its way', async () => {
    // 40 stored requests, each settle rounded up by under a micro-unit: at most 40 micro-units.
    const { ledger, reconciler } = setup('1', 0, 40);
    // 0.2 more in the ledger: events held in an ingress's outbox, which billing cannot see.
    await ledger.settle('r', [line], 1_200_000);
    expect((await reconciler.reconcile())[0]?.correctionMicros).toBe(0);
    expect((await reconciler.reconcile())[0]?.correctionMicros).toBe(-40);
    expect((await ledger.read([line.account]))[0]?.spentMicros).toBe(1_199_960);
  });

  it('forgets a surplus that a run did not see: a new one must be seen twice again', async () => {
    const { ledger, reconciler, state } = setup('1', 0);
    await ledger.settle('r', [line], 1_000_005);
    expect((await reconciler.reconcile())[0]?.correctionMicros).toBe(0); // 5 seen once
    state.stored = '1.000005'; // the events on their way landed: nothing to lower
    expect((await reconciler.reconcile())[0]?.correctionMicros).toBe(0);
    await ledger.settle('s', [line], 3); // spend whose events are held in an ingress's outbox
    expect((await reconciler.reconcile())[0]?.correctionMicros).toBe(0); // 3 seen once: kept
    expect((await ledger.read([line.account]))[0]?.spentMicros).toBe(1_000_008);
  });

  it('takes the rounding allowance once per period, however long a surplus lasts and whichever replica reconciles', async () => {
    // The review's case: 40 stored requests and 0.2 more in the ledger (spend in an ingress's
    // outbox) lowered the ledger by 40 every second run, without end.
    const { ledger, reconciler, state } = setup('1', 0, 40);
    await ledger.settle('r', [line], 1_200_000);
    const corrections: number[] = [];
    for (let run = 0; run < 10; run++) corrections.push((await reconciler.reconcile())[0]?.correctionMicros ?? NaN);
    expect(corrections).toEqual([0, -40, 0, 0, 0, 0, 0, 0, 0, 0]);
    // Ten more requests stored: ten more micro-units of rounding, taken once (the surplus was seen all along).
    state.requests = 50;
    for (let run = 0; run < 4; run++) corrections.push((await reconciler.reconcile())[0]?.correctionMicros ?? NaN);
    expect(corrections.slice(10)).toEqual([-10, 0, 0, 0]);
    // Another billing replica taking over the lease knows what was taken: the ledger records it.
    const successor = new BudgetReconciler([budget], ledger, { spend: async (fromMs) => (fromMs === accountAt(budget, NOW).window.startMs ? [{ currency: 'USD', cost: '1', requests: 50 }] : []) }, async () => 0, logger, { clock: () => NOW });
    expect((await successor.reconcile())[0]?.correctionMicros).toBe(0);
    expect((await successor.reconcile())[0]?.correctionMicros).toBe(0);
    expect((await ledger.read([line.account]))[0]?.spentMicros).toBe(1_199_950);
  });

  it('publishes a crossing of a period that ended since the previous run, whose publish had failed', async () => {
    const daily = budgetSchema.parse({ id: 'd', scope: { org: 'acme' }, period: 'daily', amount: '1', alertThresholds: [50, 100] });
    const clock = { now: Date.parse('2025-06-14T23:58:00Z') };
    const ledger = new MemoryBudgetLedger(() => clock.now);
    const bus = new InProcessBudgetBus(logger);
    const received: budgetv1.BudgetEvent[] = [];
    bus.subscribe((e) => received.push(e));
    let kafkaDown = true;
    const alerts = new ThresholdAlerts(ledger, { publish: async (e) => (kafkaDown ? Promise.reject(new Error('Kafka send timed out')) : bus.publish(e)), close: async () => undefined }, logger, () => clock.now);
    const asked: string[] = [];
    const store: SpendSource = {
      spend: async (fromMs) => {
        asked.push(new Date(fromMs).toISOString().slice(0, 10));
        return [];
      },
    };
    const reconciler = new BudgetReconciler([daily], ledger, store, async () => 0, logger, { clock: () => clock.now, alerts });
    // A settle at 23:57 crossed 50 %, and could not publish it; neither can the run at 23:58.
    await ledger.settle('r', [accountAt(daily, clock.now).line], 600_000);
    expect((await reconciler.reconcile()).map((r) => r.thresholdsPublished)).toEqual([0, 0]);
    kafkaDown = false;
    clock.now = Date.parse('2025-06-15T00:03:00Z');
    const run = await reconciler.reconcile();
    expect(run.map((r) => [r.account, r.thresholdsPublished])).toEqual([
      ['d:2025-06-15', 0],
      ['d:2025-06-14', 1],
    ]);
    expect(received.map((e) => e.eventId)).toEqual(['d/2025-06-14/50']);
    // The ended period is not read again by the runs after.
    clock.now += 60_000;
    await reconciler.reconcile();
    expect(asked).toEqual(['2025-06-14', '2025-06-13', '2025-06-15', '2025-06-14', '2025-06-15']);
  });
});
