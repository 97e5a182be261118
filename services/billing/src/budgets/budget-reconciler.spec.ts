import { budgetSchema } from '@openrouter/config';
import { accountAt, MemoryBudgetLedger } from '@openrouter/budgets';
import { createLogger } from '@openrouter/observability';
import { BudgetReconciler, type SpendSource } from './budget-reconciler';

const NOW = Date.parse('2025-06-14T12:00:00Z');

describe('BudgetReconciler', () => {
  const budget = budgetSchema.parse({ id: 'b', scope: { org: 'acme', project: 'p' }, period: 'monthly', amount: '10' });
  const line = accountAt(budget, NOW).line;

  function setup(stored: string, pending = 0, requests = 1_000_000) {
    const ledger = new MemoryBudgetLedger(() => NOW);
    const calls: unknown[] = [];
    const state = { pending, stored };
    const store: SpendSource = {
      spend: async (fromMs, toMs, filters) => {
        calls.push({ fromMs, toMs, filters });
        return [{ currency: 'USD', cost: state.stored, requests }];
      },
    };
    const reconciler = new BudgetReconciler([budget], ledger, store, async () => state.pending, createLogger('test', 'silent'), { clock: () => NOW });
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
});
