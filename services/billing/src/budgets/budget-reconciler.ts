import type { BudgetConfig } from '@openrouter/config';
import { accountAt, fromMicros, toMicros, type BudgetLedger, type ThresholdAlerts } from '@openrouter/budgets';
import type { Logger, ReconciliationMetrics } from '@openrouter/observability';
import { SOLE_LEASE, type Lease } from '../reconciliation/lease';
import type { DimensionName } from '../reports/report-dimensions';

export interface SpendSource {
  /** Stored spend per currency of the events matching `filters` received in [fromMs, toMs). */
  spend(fromMs: number, toMs: number, filters: ReadonlyArray<[DimensionName, string]>): Promise<Array<{ currency: string; cost: string }>>;
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
}

/**
 * Compares each budget's spend in the ledger (Redis) with the stored usage events (ClickHouse)
 * for the current period, and corrects the ledger. The ledger counting less than was stored
 * (Redis lost data, a settle never ran) is corrected at once. The ledger counting more is
 * normal while events are on their way to ClickHouse, so it is only corrected when the usage
 * bus has nothing pending and the same surplus was seen on the previous run; corrections are
 * relative (INCRBY), so requests settling meanwhile are never lost. Being relative, they must be
 * made by one billing replica at a time: the periodic run happens only while this replica holds
 * the lease. Each run also publishes the thresholds the period's spend has reached that no settle
 * managed to publish (Kafka was down, the ingress died): a hard budget's last crossing is often
 * followed by no settle at all, as the budget then refuses requests.
 */
export class BudgetReconciler {
  private readonly surplus = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;

  private readonly clock: () => number;
  private readonly lease: Lease;
  private readonly alerts: ThresholdAlerts | undefined;
  private readonly metrics: ReconciliationMetrics | undefined;

  constructor(
    private readonly budgets: readonly BudgetConfig[],
    private readonly ledger: BudgetLedger,
    private readonly store: SpendSource,
    private readonly pendingEvents: () => Promise<number>,
    private readonly logger: Logger,
    options: {
      clock?: () => number;
      /** Held by the replica that reconciles (default: this process alone). */
      lease?: Lease;
      /** Threshold crossings that no settle managed to publish are published at each run. */
      alerts?: ThresholdAlerts;
      metrics?: ReconciliationMetrics;
    } = {},
  ) {
    this.clock = options.clock ?? Date.now;
    this.lease = options.lease ?? SOLE_LEASE;
    this.alerts = options.alerts;
    this.metrics = options.metrics;
  }

  start(intervalMs: number): void {
    if (intervalMs <= 0 || this.budgets.length === 0) return;
    this.timer = setInterval(() => {
      this.running ??= this.reconcileIfLeased()
        .catch((error: unknown) => this.logger.warn({ err: error }, 'budget reconciliation failed; retrying next interval'))
        .finally(() => (this.running = undefined));
    }, intervalMs);
    this.timer.unref();
  }

  /** One periodic run: reconciles when this replica holds the lease; undefined when another does. */
  async reconcileIfLeased(): Promise<Reconciliation[] | undefined> {
    try {
      if (!(await this.lease.hold())) {
        this.metrics?.notLeader('budget');
        return undefined;
      }
      const out = await this.reconcile();
      this.metrics?.ran('budget', out.filter((r) => r.correctionMicros !== 0).length);
      this.metrics?.thresholdsCaughtUp(out.reduce((sum, r) => sum + r.thresholdsPublished, 0));
      return out;
    } catch (error) {
      this.metrics?.failed('budget');
      throw error;
    }
  }

  async reconcile(): Promise<Reconciliation[]> {
    await this.ledger.sweep();
    const quiet = (await this.pendingEvents()) === 0;
    const now = this.clock();
    const out: Reconciliation[] = [];
    for (const budget of this.budgets) {
      const account = accountAt(budget, now);
      const filters: Array<[DimensionName, string]> = [['org', budget.scope.org]];
      if (budget.scope.team) filters.push(['team', budget.scope.team]);
      if (budget.scope.project) filters.push(['project', budget.scope.project]);
      if (budget.scope.key) filters.push(['key', budget.scope.key]);
      const stored = (await this.store.spend(account.window.startMs, account.window.endMs, filters)).find((s) => s.currency === budget.currency);
      const storedMicros = toMicros(stored?.cost ?? '0');
      const [state] = await this.ledger.read([account.line.account]);
      const ledgerMicros = state?.spentMicros ?? 0;
      let correction = 0;
      if (storedMicros > ledgerMicros) {
        correction = storedMicros - ledgerMicros;
      } else if (storedMicros < ledgerMicros) {
        const seen = this.surplus.get(account.line.account);
        const surplus = ledgerMicros - storedMicros;
        if (quiet && seen !== undefined) correction = -Math.min(seen, surplus);
        this.surplus.set(account.line.account, surplus);
      }
      let spentMicros = ledgerMicros;
      if (correction !== 0) {
        spentMicros = await this.ledger.adjust(account.line, correction);
        this.surplus.delete(account.line.account);
        this.logger.info({ budget: budget.id, period: account.window.key, ledger: fromMicros(ledgerMicros), stored: fromMicros(storedMicros), correction: fromMicros(Math.abs(correction)), direction: correction > 0 ? 'up' : 'down' }, 'budget spend corrected');
      }
      const thresholdsPublished = this.alerts ? await this.alerts.publishCrossed([account], [spentMicros]) : 0;
      out.push({ budget: budget.id, account: account.line.account, ledgerMicros, storedMicros, correctionMicros: correction, thresholdsPublished });
    }
    return out;
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running;
    await this.lease.release().catch((error: unknown) => this.logger.warn({ err: error }, 'could not release the budget reconciliation lease; it expires on its own'));
    await this.ledger.close();
  }
}
