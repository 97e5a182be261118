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

/**
 * A budget created through the admin API: when (epoch ms), and — since this was stored with it —
 * the random id of that creation, which names its ledger account.
 */
export interface BudgetCreation {
  atMs: number;
  id?: string | undefined;
}

/**
 * A budget in force: a configured one, or one created through the admin API, which also carries
 * its creation. The configuration never sets `creation` (its schema has no such field).
 */
export type Budget = BudgetConfig & { creation?: BudgetCreation | undefined };

/** A budget's account for the period that contains a given instant. */
export interface BudgetAccount {
  budget: Budget;
  window: PeriodWindow;
  line: LedgerLine;
}

/** Counters are kept this long after their period ends, so reconciliation can still correct them. */
export const KEEP_AFTER_PERIOD_MS = 35 * 24 * 3_600_000;

/** The configured budgets, and which of them apply to a tenant. */
export class BudgetBook {
  constructor(readonly budgets: readonly Budget[]) {}

  get empty(): boolean {
    return this.budgets.length === 0;
  }

  /** Budgets whose every scope field matches the tenant. */
  applicable(tenant: BudgetTenant): Budget[] {
    return this.budgets.filter(
      (b) =>
        b.scope.org === tenant.orgId &&
        (b.scope.team === undefined || b.scope.team === tenant.teamId) &&
        (b.scope.project === undefined || b.scope.project === tenant.projectId) &&
        (b.scope.key === undefined || b.scope.key === tenant.keyId),
    );
  }

  /** The accounts of `budgets` for the periods containing `atMs`. */
  accountsAt(budgets: readonly Budget[], atMs: number): BudgetAccount[] {
    return budgets.map((budget) => accountAt(budget, atMs));
  }
}

const LIMIT_MICROS = new WeakMap<Budget, number>();

/** A budget's amount in micro-units, converted once per budget (every reservation needs it). */
function limitMicrosOf(budget: Budget): number {
  let micros = LIMIT_MICROS.get(budget);
  if (micros === undefined) {
    micros = toMicros(budget.amount);
    LIMIT_MICROS.set(budget, micros);
  }
  return micros;
}

/**
 * What a budget's spend is counted under, before the period key: a configured budget's id (its
 * running spend in Redis is kept across upgrades); for a budget created through the admin API, the
 * id and its creation's id (`team-daily~3f9c…`), so a budget deleted and created again — by its org
 * or by another — starts from nothing rather than continuing the deleted one's spend. `~` is in no
 * budget id. A budget stored before creations had ids keeps its plain id, and its spend.
 */
export function ledgerNameOf(budget: Budget): string {
  const creation = budget.creation?.id;
  return creation ? `${budget.id}~${creation}` : budget.id;
}

export function accountAt(budget: Budget, atMs: number): BudgetAccount {
  const window = periodAt(budget.period, budget.timezone, atMs);
  return {
    budget,
    window,
    line: {
      account: `${ledgerNameOf(budget)}:${window.key}`,
      limitMicros: limitMicrosOf(budget),
      hard: budget.enforcement === 'hard',
      keepMs: Math.max(1, window.endMs - atMs) + KEEP_AFTER_PERIOD_MS,
    },
  };
}
