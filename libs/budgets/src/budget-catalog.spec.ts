import { budgetSchema } from '@openrouter/config';
import { accountAt } from './budget-book';
import { BudgetCatalog } from './budget-catalog';
import { MemoryBudgetStore, type BudgetStore, type StoredBudget } from './budget-store';
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

  it('reloads within its check interval a change whose announcement never came, by the store version', async () => {
    const store = new MemoryBudgetStore();
    const catalog = new BudgetCatalog(configured, store, undefined, { checkEveryMs: 10 });
    try {
      await catalog.start();
      // Written and never announced (the publish was lost, or the subscriber is half-open).
      await store.update('unheard', () => stored({ id: 'unheard', scope: { org: 'acme' } }));
      const deadline = Date.now() + 2_000;
      while (!catalog.entry('unheard') && Date.now() < deadline) await new Promise((done) => setTimeout(done, 10));
      expect(catalog.entry('unheard')?.source).toBe('api');
    } finally {
      await catalog.close();
    }
  });

  it('is loaded only once the store has answered, and loads at the next check when it could not at start', async () => {
    const inner = new MemoryBudgetStore();
    await inner.update('api-one', () => stored({ id: 'api-one', scope: { org: 'acme' } }));
    let reachable = false;
    const away = <T>(answer: () => Promise<T>): Promise<T> => (reachable ? answer() : Promise.reject(new Error('connect ECONNREFUSED')));
    const store: BudgetStore = {
      ready: async () => reachable,
      list: () => away(() => inner.list()),
      update: (id, change, audit) => away(() => inner.update(id, change, audit)),
      version: () => away(() => inner.version()),
      publish: () => away(() => inner.publish()),
      onChange: (listener) => inner.onChange(listener),
      close: () => inner.close(),
    };
    const catalog = new BudgetCatalog(configured, store, undefined, { checkEveryMs: 10 });
    try {
      expect(await catalog.start(0)).toBe(false);
      expect(catalog.loaded).toBe(false);
      // The configured budgets apply meanwhile; the created ones are unknown.
      expect(catalog.budgets().map((b) => b.id)).toEqual(['acme-monthly']);
      reachable = true;
      const deadline = Date.now() + 2_000;
      while (!catalog.loaded && Date.now() < deadline) await new Promise((done) => setTimeout(done, 10));
      expect(catalog.loaded).toBe(true);
      expect(catalog.budgets().map((b) => b.id)).toEqual(['acme-monthly', 'api-one']);
    } finally {
      await catalog.close();
    }
    expect(BudgetCatalog.of(configured).loaded).toBe(true);
  });

  it('gives a created budget its creation, which names its ledger account; a configured one keeps its plain id', async () => {
    const store = new MemoryBudgetStore();
    await store.update('fresh', () => ({ ...stored({ id: 'fresh', scope: { org: 'acme' } }), creationId: 'c0ffee' }));
    await store.update('legacy', () => stored({ id: 'legacy', scope: { org: 'acme' } }));
    const catalog = new BudgetCatalog(configured, store);
    await catalog.start();
    const now = Date.parse('2025-06-14T13:00:00Z');
    const accounts = catalog.book.accountsAt(catalog.budgets(), now).map((a) => [a.budget.id, a.line.account, a.budget.creation]);
    expect(accounts).toEqual([
      ['acme-monthly', 'acme-monthly:2025-06', undefined],
      ['fresh', 'fresh~c0ffee:2025-06-14', { atMs: Date.parse('2025-06-14T12:00:00.000Z'), id: 'c0ffee' }],
      // Stored before creations had ids: its spend stays where it is.
      ['legacy', 'legacy:2025-06-14', { atMs: Date.parse('2025-06-14T12:00:00.000Z') }],
    ]);
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
