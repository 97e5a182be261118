import { BudgetCatalog, MemoryBudgetStore } from '@openrouter/budgets';
import { budgetSchema } from '@openrouter/config';
import { budgetPeriodEndOf } from './budget-period-end';

describe('the end of a configured budget\'s period, by its key', () => {
  const budget = (id: string, period: string, timezone: string) => budgetSchema.parse({ id, scope: { org: 'acme' }, period, timezone, amount: '10' });
  const endOf = budgetPeriodEndOf([budget('daily', 'daily', 'UTC'), budget('monthly-tokyo', 'monthly', 'Asia/Tokyo')]);

  it('is the end of the period holding the instant, in the budget\'s zone', () => {
    expect(endOf('daily', '2025-06-14', Date.UTC(2025, 5, 14, 13))).toBe(Date.UTC(2025, 5, 15));
    // June in Tokyo ends at 15:00 UTC on 30 June.
    expect(endOf('monthly-tokyo', '2025-06', Date.UTC(2025, 5, 14))).toBe(Date.UTC(2025, 5, 30, 15));
  });

  it('is unknown for a key that is not that period\'s, or a budget no longer configured', () => {
    expect(endOf('daily', '2025-06-13', Date.UTC(2025, 5, 14, 13))).toBeUndefined();
    expect(endOf('gone', '2025-06-14', Date.UTC(2025, 5, 14, 13))).toBeUndefined();
  });
});

describe('the end of a budget created through the admin API', () => {
  it('is known from the catalog, as a configured budget\'s is', async () => {
    const store = new MemoryBudgetStore();
    const budget = budgetSchema.parse({ id: 'api-weekly', scope: { org: 'acme' }, period: 'weekly', timezone: 'Europe/Berlin', amount: '10' });
    await store.update(budget.id, () => ({ ...budget, createdAt: '2025-06-01T00:00:00Z', updatedAt: '2025-06-01T00:00:00Z' }));
    const catalog = new BudgetCatalog([], store);
    await catalog.start();
    // The week from Monday 9 June ends at midnight on the 16th in Berlin (22:00 UTC on the 15th).
    expect(budgetPeriodEndOf(catalog)('api-weekly', '2025-06-09', Date.UTC(2025, 5, 14))).toBe(Date.UTC(2025, 5, 15, 22));
  });
});
