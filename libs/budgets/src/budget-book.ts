import type { BudgetConfig } from '@openrouter/config';
import { periodAt, type PeriodWindow } from './budget-period';
import type { LedgerLine } from './budget-ledger';
import { toMicros } from './micro-units';

/** Who a request belongs to, as far as budgets care. */
export interface BudgetTenant {
  orgId: string;
  teamId: string;
  projectId: string;
  keyId: string;
}

/** A budget's account for the period that contains a given instant. */
export interface BudgetAccount {
  budget: BudgetConfig;
  window: PeriodWindow;
  line: LedgerLine;
}

/** Counters are kept this long after their period ends, so reconciliation can still correct them. */
export const KEEP_AFTER_PERIOD_MS = 35 * 24 * 3_600_000;

/** The configured budgets, and which of them apply to a tenant. */
export class BudgetBook {
  constructor(readonly budgets: readonly BudgetConfig[]) {}

  get empty(): boolean {
    return this.budgets.length === 0;
  }

  /** Budgets whose every scope field matches the tenant. */
  applicable(tenant: BudgetTenant): BudgetConfig[] {
    return this.budgets.filter(
      (b) =>
        b.scope.org === tenant.orgId &&
        (b.scope.team === undefined || b.scope.team === tenant.teamId) &&
        (b.scope.project === undefined || b.scope.project === tenant.projectId) &&
        (b.scope.key === undefined || b.scope.key === tenant.keyId),
    );
  }

  /** The accounts of `budgets` for the periods containing `atMs`. */
  accountsAt(budgets: readonly BudgetConfig[], atMs: number): BudgetAccount[] {
    return budgets.map((budget) => accountAt(budget, atMs));
  }
}

const LIMIT_MICROS = new WeakMap<BudgetConfig, number>();

/** A budget's amount in micro-units, converted once per budget (every reservation needs it). */
function limitMicrosOf(budget: BudgetConfig): number {
  let micros = LIMIT_MICROS.get(budget);
  if (micros === undefined) {
    micros = toMicros(budget.amount);
    LIMIT_MICROS.set(budget, micros);
  }
  return micros;
}

export function accountAt(budget: BudgetConfig, atMs: number): BudgetAccount {
  const window = periodAt(budget.period, budget.timezone, atMs);
  return {
    budget,
    window,
    line: {
      account: `${budget.id}:${window.key}`,
      limitMicros: limitMicrosOf(budget),
      hard: budget.enforcement === 'hard',
      keepMs: Math.max(1, window.endMs - atMs) + KEEP_AFTER_PERIOD_MS,
    },
  };
}
