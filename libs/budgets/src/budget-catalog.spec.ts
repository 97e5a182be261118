import { budgetSchema } from '@openrouter/config';
import { accountAt } from './budget-book';
import { BudgetCatalog } from './budget-catalog';
import { MemoryBudgetStore, type StoredBudget } from './budget-store';
import { MemoryBudgetLedger } from './memory-budget-ledger';

const tenant = { orgId: 'acme', teamId: 'platform', projectId: 'search', keyId: 'k1' };

function stored(fields: Record<string, unknown>): StoredBudget {
  return { ...budgetSchema.parse({ period: 'daily', amount: '1', ...fields }), createdAt: '2025-06-14T12:00:00.000Z', updatedAt: '2025-06-14T12:00:00.000Z' };
}

/** Lets the catalog's reload, started by a store event, run. */
const settled = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('BudgetCatalog', () => {
  const configured = [budgetSchema.parse({ id: 'acme-monthly', scope: { org: 'acme' }, period: 'monthly', amount: '100' })];

  it('holds the configured budgets first, then those created through the API by id; the configuration wins for its ids', async () => {
    const store = new MemoryBudgetStore();
    for (const b of [stored({ id: 'zeta', scope: { org: 'acme' } }), stored({ id: 'alpha', scope: { org: 'acme', project: 'search' } }), stored({ id: 'acme-monthly', scope: { org: 'other' } })]) await store.update(b.id, () => b);
    const catalog = new BudgetCatalog(configured, store);
    await catalog.start();
    expect(catalog.list().map((e) => [e.budget.id, e.source])).toEqual([
      ['acme-monthly', 'config'],
      ['alpha', 'api'],
      ['zeta', 'api'],
    ]);
    expect(catalog.entry('acme-monthly')?.budget.scope).toEqual({ org: 'acme' });
    expect(catalog.entry('alpha')).toMatchObject({ source: 'api', createdAt: '2025-06-14T12:00:00.000Z' });
    expect(catalog.entry('alpha')?.budget).not.toHaveProperty('createdAt');
    expect(catalog.book.applicable(tenant).map((b) => b.id)).toEqual(['acme-monthly', 'alpha', 'zeta']);
    expect(catalog.isConfigured('acme-monthly')).toBe(true);
    expect(catalog.isConfigured('alpha')).toBe(false);
  });

  it('applies a change announced by its store: a new book, which requests read from then on', async () => {
    const store = new MemoryBudgetStore();
    const catalog = new BudgetCatalog(configured, store);
    await catalog.start();
    const before = catalog.book;
    await store.update('new', () => stored({ id: 'new', scope: { org: 'acme', key: 'k1' } }));
    // Written, not yet announced: the catalog has not seen it.
    expect(catalog.entry('new')).toBeUndefined();
    await store.publish();
    await settled();
    expect(catalog.entry('new')?.source).toBe('api');
    expect(catalog.book).not.toBe(before);
    expect(before.applicable(tenant).map((b) => b.id)).toEqual(['acme-monthly']);
    await store.update('new', () => undefined);
    await store.publish();
    await settled();
    expect(catalog.budgets().map((b) => b.id)).toEqual(['acme-monthly']);
  });

  it('of() holds the configured budgets alone', async () => {
    const catalog = BudgetCatalog.of(configured);
    await catalog.start();
    expect(catalog.budgets()).toEqual(configured);
    expect(catalog.empty).toBe(false);
    expect(BudgetCatalog.of([]).empty).toBe(true);
  });
});

describe('MemoryBudgetLedger.standing', () => {
  it('shows spend and live reservations, leaving out expired ones, and changes nothing', async () => {
    let now = Date.parse('2025-06-14T12:00:00Z');
    const ledger = new MemoryBudgetLedger(() => now);
    const budget = budgetSchema.parse({ id: 'b', scope: { org: 'acme' }, period: 'daily', amount: '1' });
    const { line } = accountAt(budget, now);
    await ledger.reserve({ id: 'short', lines: [line], worstMicros: 300, floorMicros: 300, ttlMs: 1_000 });
    await ledger.reserve({ id: 'long', lines: [line], worstMicros: 200, floorMicros: 200, ttlMs: 60_000 });
    await ledger.settle('settled', [line], 50);
    expect(await ledger.standing([line.account, 'unknown:2025-06-14'])).toEqual([
      { spentMicros: 50, reservedMicros: 500 },
      { spentMicros: 0, reservedMicros: 0 },
    ]);
    now += 2_000;
    expect(await ledger.standing([line.account])).toEqual([{ spentMicros: 50, reservedMicros: 200 }]);
    // Nothing was swept by the read: the expired reservation is still there to return.
    expect(await ledger.sweep()).toBe(1);
    expect(await ledger.standing([line.account])).toEqual([{ spentMicros: 50, reservedMicros: 200 }]);
  });
});
