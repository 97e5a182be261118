import { periodAt } from '@openrouter/budgets';
import type { GatewayConfig } from '@openrouter/config';

/** The end of a configured budget's period, by the period's key, as the budgets compute it. */
export function budgetPeriodEndOf(budgets: GatewayConfig['budgets']['list']): (budgetId: string, periodKey: string, atMs: number) => number | undefined {
  const byId = new Map(budgets.map((b) => [b.id, b]));
  return (budgetId, periodKey, atMs) => {
    const budget = byId.get(budgetId);
    if (!budget) return undefined;
    const window = periodAt(budget.period, budget.timezone, atMs);
    return window.key === periodKey ? window.endMs : undefined;
  };
}
