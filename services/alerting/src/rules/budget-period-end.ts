import { BudgetCatalog, budgetCatalogFor, periodAt } from '@openrouter/budgets';
import type { BudgetConfig, GatewayConfig } from '@openrouter/config';
import type { Logger } from '@openrouter/observability';

/**
 * The end of a budget's period, by the period's key, as the budgets compute it: a configured
 * budget, or (given the catalog) one created through the admin API.
 */
export function budgetPeriodEndOf(budgets: readonly BudgetConfig[] | BudgetCatalog): (budgetId: string, periodKey: string, atMs: number) => number | undefined {
  const catalog = budgets instanceof BudgetCatalog ? budgets : BudgetCatalog.of(budgets);
  return (budgetId, periodKey, atMs) => {
    const budget = catalog.entry(budgetId)?.budget;
    if (!budget) return undefined;
    const window = periodAt(budget.period, budget.timezone, atMs);
    return window.key === periodKey ? window.endMs : undefined;
  };
}

/**
 * The budgets alerting knows, loaded before it takes back its firing alerts: the configured ones
 * and, with `access.redis.url`, those created through the admin API (waited for up to 2 s; a budget
 * it cannot see only holds its restored alert for the rule's `holdMs` instead of to its period's
 * end). Closed with the service (`cleanups`).
 */
export async function startBudgetCatalog(config: Pick<GatewayConfig, 'access' | 'budgets'>, logger: Logger, cleanups: Array<() => Promise<void> | void>): Promise<BudgetCatalog> {
  const catalog = budgetCatalogFor(config, logger);
  cleanups.push(() => catalog.close());
  await catalog.start(2_000);
  return catalog;
}
