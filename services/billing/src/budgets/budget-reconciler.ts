import type { BudgetConfig } from '@openrouter/config';
import { accountAt, BudgetCatalog, fromMicros, KEEP_AFTER_PERIOD_MS, toMicros, type Budget, type BudgetAccount, type BudgetLedger, type ThresholdAlerts } from '@openrouter/budgets';
import type { Logger, ReconciliationMetrics } from '@openrouter/observability';
import { LeasedJob, type LeasedJobOptions } from '../reconciliation/leased-job';
import type { DimensionName } from '../reports/report-dimensions';

export interface SpendSource {
  /**
   * Stored spend and request count per currency of the events matching `filters` received in
   * [fromMs, toMs), each event counted once however often it was stored: a duplicate counted here
   * raises the ledger at once and is never taken back (a surplus is lowered only by the rounding).
   */
  spend(fromMs: number, toMs: number, filters: ReadonlyArray<[DimensionName, string]>): Promise<Array<{ currency: string; cost: string; requests: number }>>;
}

export interface Reconciliation {
  budget: string;
  account: string;
  ledgerMicros: number;
  storedMicros: number;
  /** What was added to the ledger's spend (negative: taken off); 0 when nothing was corrected. */
  correctionMicros: number;
  /** Threshold crossings of the period published by this run (none had been, or their publishing failed). */
  thresholdsPublished: number;
  /** The lease passed to another replica before this account's correction: nothing was corrected, and the run stopped here. */
  leaseLost?: true;
}

/**
 * Compares each budget's spend in the ledger (Redis) with the stored usage events (ClickHouse)
 * for the current period, and corrects the ledger. The ledger counting less than was stored
 * (Redis lost data, a settle never ran) is corrected at once. The ledger counting more is
 * normal: each settle rounds its cost up to a micro-unit, and events are on their way to
 * ClickHouse — some where billing cannot see them (an ingress's outbox while Kafka is out of its
 * reach). So a surplus is only lowered by what the rounding explains — a micro-unit per stored
 * request over the whole period, however many runs lower it (the ledger records what was taken) —
 * when the usage bus has nothing pending and the same surplus was seen on the previous run:
 * lowering it further would reopen a hard budget for spend still on its way. Corrections are
 * relative (INCRBY), so requests settling meanwhile are never lost. Being relative, they must be
 * made by one billing replica at a time: the periodic run happens only while this replica holds
 * the lease. Each run also publishes the thresholds the period's spend has reached that no settle
 * managed to publish (Kafka was down, the ingress died): a hard budget's last crossing is often
 * followed by no settle at all, as the budget then refuses requests. Periods that ended since the
 * previous run (on a first run, in the last day) are checked once more, so a crossing whose
 * publishing failed in a period's last minutes is still published. A budget created through the
 * admin API counts from its creation, as its ledger account does (it starts at nothing then): the
 * period's spend before it is not its own, and its periods that ended before it are not checked.
 */
export class BudgetReconciler {
  private readonly surplus = new Map<string, number>();
  private readonly clock: () => number;
  private readonly alerts: ThresholdAlerts | undefined;
  private readonly metrics: ReconciliationMetrics | undefined;
  private readonly job: LeasedJob<Reconciliation[]>;
  /** When this replica's previous run began; undefined before its first. */
  private previousRunMs: number | undefined;
  /** The budgets in force, configured and created through the admin API; closed with the reconciler. */
  private readonly catalog: BudgetCatalog;

  constructor(
    /** A fixed list, or the catalog of every budget in force (read afresh at each run). */
    budgets: readonly BudgetConfig[] | BudgetCatalog,
    private readonly ledger: BudgetLedger,
    private readonly store: SpendSource,
    private readonly pendingEvents: () => Promise<number>,
    private readonly logger: Logger,
    options: LeasedJobOptions & {
      clock?: () => number;
      /** Threshold crossings that no settle managed to publish are published at each run. */
      alerts?: ThresholdAlerts;
    } = {},
  ) {
    this.catalog = budgets instanceof BudgetCatalog ? budgets : BudgetCatalog.of(budgets);
    this.clock = options.clock ?? Date.now;
    this.alerts = options.alerts;
    this.metrics = options.metrics;
    this.job = new LeasedJob('budget', () => this.reconcile(), (out) => out.filter((r) => r.correctionMicros !== 0).length, logger, options);
  }

  /** Runs every `intervalMs`; with a catalog, also while it holds no budget (one may be created at any time). */
  start(intervalMs: number): void {
    if (this.catalog.canChange || !this.catalog.empty) this.job.start(intervalMs);
  }

  /** One periodic run: reconciles when this replica holds the lease; undefined when another does. */
  reconcileIfLeased(): Promise<Reconciliation[] | undefined> {
    return this.job.runIfLeased();
  }

  /** Every budget's current period first (in configuration order), then the periods that ended since the previous run. */
  async reconcile(): Promise<Reconciliation[]> {
    await this.ledger.sweep();
    // As they stand now, announced or not: a change this replica missed is not missed for a whole run.
    await this.catalog.reload();
    const quiet = (await this.pendingEvents()) === 0;
    const now = this.clock();
    // A budget created after `now` (the catalog was reloaded after it was read) has nothing to count yet.
    const current = this.catalog
      .budgets()
      .map((budget) => accountAt(budget, now))
      .filter((account) => countsFrom(account) <= now);
    const ended = current.flatMap((account) => endedSince(account, this.previousRunMs, now));
    const out: Reconciliation[] = [];
    for (const account of [...current, ...ended]) {
      const result = await this.reconcileAccount(account, quiet);
      out.push(result);
      // The accounts left are the new holder's.
      if (result.leaseLost) break;
    }
    // Periods that ended (and budgets no longer configured) are never read again.
    const checked = new Set(out.map((r) => r.account));
    for (const account of this.surplus.keys()) if (!checked.has(account)) this.surplus.delete(account);
    this.previousRunMs = now;
    this.metrics?.thresholdsCaughtUp(out.reduce((sum, r) => sum + r.thresholdsPublished, 0));
    return out;
  }

  private async reconcileAccount(account: BudgetAccount, quiet: boolean): Promise<Reconciliation> {
    const budget = account.budget;
    const key = account.line.account;
    const stored = (await this.store.spend(countsFrom(account), account.window.endMs, scopeFilters(budget))).find((s) => s.currency === budget.currency);
    const storedMicros = toMicros(stored?.cost ?? '0');
    const [state] = await this.ledger.read([key]);
    const ledgerMicros = state?.spentMicros ?? 0;
    let correction = 0;
    let spentMicros = ledgerMicros;
    // A surplus is lowered only when this run and the one before both saw it: any run without one forgets it.
    if (storedMicros >= ledgerMicros) this.surplus.delete(key);
    // The lease is renewed only when a run starts: a run may outlive it, and the replica that took
    // it over may have read this account too. Both would add the difference (relative
    // corrections), and a hard budget would count it twice. Checked (and renewed) right before each.
    const corrects = storedMicros > ledgerMicros || (storedMicros < ledgerMicros && quiet && this.surplus.has(key));
    if (corrects && !(await this.job.stillHeld())) {
      this.logger.warn({ budget: budget.id, period: account.window.key }, 'the budget reconciliation lease passed to another replica during the run; stopping before correcting');
      return { budget: budget.id, account: key, ledgerMicros, storedMicros, correctionMicros: 0, thresholdsPublished: 0, leaseLost: true };
    }
    if (storedMicros > ledgerMicros) {
      correction = storedMicros - ledgerMicros;
      spentMicros = await this.ledger.adjust(account.line, correction);
    } else if (storedMicros < ledgerMicros) {
      const seen = this.surplus.get(key);
      const surplus = ledgerMicros - storedMicros;
      this.surplus.set(key, surplus);
      if (quiet && seen !== undefined) {
        // The period's stored requests bound the rounding in all: what earlier runs took counts against it.
        const lowered = await this.ledger.lowerWithin(account.line, Math.min(seen, surplus), stored?.requests ?? 0);
        if (lowered.loweredMicros > 0) correction = -lowered.loweredMicros;
        spentMicros = lowered.spentMicros;
      }
    }
    if (correction !== 0) {
      this.surplus.delete(key);
      this.logger.info({ budget: budget.id, period: account.window.key, ledger: fromMicros(ledgerMicros), stored: fromMicros(storedMicros), correction: fromMicros(Math.abs(correction)), direction: correction > 0 ? 'up' : 'down' }, 'budget spend corrected');
    }
    const thresholdsPublished = this.alerts ? await this.alerts.publishCrossed([account], [spentMicros]) : 0;
    return { budget: budget.id, account: key, ledgerMicros, storedMicros, correctionMicros: correction, thresholdsPublished };
  }

  async close(): Promise<void> {
    await this.job.close();
    await this.ledger.close();
    await this.catalog.close();
  }
}

/**
 * Where a budget's account starts counting: its period's start, or — for a budget created through
 * the admin API during the period — its creation, when its ledger account started at nothing.
 */
function countsFrom(account: BudgetAccount): number {
  const created = account.budget.creation?.atMs;
  return created === undefined ? account.window.startMs : Math.max(account.window.startMs, created);
}

/** The stored events a budget counts: those of its scope. */
function scopeFilters(budget: Budget): Array<[DimensionName, string]> {
  const filters: Array<[DimensionName, string]> = [['org', budget.scope.org]];
  if (budget.scope.team) filters.push(['team', budget.scope.team]);
  if (budget.scope.project) filters.push(['project', budget.scope.project]);
  if (budget.scope.key) filters.push(['key', budget.scope.key]);
  return filters;
}

/**
 * How far back a replica's first run looks for periods that ended: it has no previous run to go
 * by, and a restart across a period's end is what it must not miss.
 */
export const FIRST_RUN_LOOKBACK_MS = 24 * 3_600_000;

/**
 * The periods of `current`'s budget that ended after `sinceMs` (newest first), or — before a
 * first run — in the last {@link FIRST_RUN_LOOKBACK_MS}. Never those whose counters have expired,
 * nor those that ended before the budget was created (it counted nothing in them).
 */
function endedSince(current: BudgetAccount, sinceMs: number | undefined, nowMs: number): BudgetAccount[] {
  const out: BudgetAccount[] = [];
  let end = current.window.startMs;
  const after = Math.max(sinceMs ?? nowMs - FIRST_RUN_LOOKBACK_MS, nowMs - KEEP_AFTER_PERIOD_MS, current.budget.creation?.atMs ?? -Infinity);
  while (end > after) {
    const account = accountAt(current.budget, end - 1);
    out.push(account);
    end = account.window.startMs;
  }
  return out;
}
