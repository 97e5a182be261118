import type { BudgetConfig } from '@openrouter/config';
import { budgetv1 } from '@openrouter/contracts';
import type { Logger } from '@openrouter/observability';
import { Money } from '@openrouter/usage';
import { ledgerNameOf, type BudgetAccount } from './budget-book';
import { BUDGET_FORECAST_SCHEMA_VERSION, BUDGET_SCHEMA_VERSION, type BudgetEventPublisher } from './budget-events';
import { DEFAULT_MIN_ELAPSED_FRACTION, forecastOf, type SpendForecast } from './budget-forecast';
import type { BudgetLedger } from './budget-ledger';
import { fromMicros } from './micro-units';

const PERIODS: Record<BudgetConfig['period'], budgetv1.Period> = {
  daily: budgetv1.Period.PERIOD_DAILY,
  weekly: budgetv1.Period.PERIOD_WEEKLY,
  monthly: budgetv1.Period.PERIOD_MONTHLY,
};

/**
 * How long a replica's claim on publishing a threshold event lasts before it is confirmed. A
 * replica that dies between claiming and publishing leaves a claim that expires after this, and
 * the event is published by the next settle or reconciliation that finds it crossed.
 */
export const THRESHOLD_CLAIM_MS = 60_000;

/**
 * The event of `account`'s budget reaching `threshold` percent with `spentMicros` spent or, given
 * its `forecast`, of the spend projected to the period's end reaching it.
 */
export function thresholdEvent(account: BudgetAccount, spentMicros: number, threshold: number, nowMs: number, forecast?: SpendForecast): budgetv1.BudgetEvent {
  const b = account.budget;
  return {
    // A forecast is version 2 alone: a consumer that knows only 1 skips it rather than take a projection for spend.
    schemaVersion: forecast ? BUDGET_FORECAST_SCHEMA_VERSION : BUDGET_SCHEMA_VERSION,
    // A budget created through the API again under a deleted one's id is another budget: its crossings are new events.
    eventId: `${ledgerNameOf(b)}/${account.window.key}/${forecast ? `forecast-${threshold}` : threshold}`,
    occurredAtMs: nowMs,
    budgetId: b.id,
    scope: { orgId: b.scope.org, teamId: b.scope.team ?? '', projectId: b.scope.project ?? '', keyId: b.scope.key ?? '' },
    period: PERIODS[b.period],
    periodKey: account.window.key,
    periodStartMs: account.window.startMs,
    periodEndMs: account.window.endMs,
    timezone: b.timezone,
    limit: new Money(b.amount).toFixed(),
    spent: fromMicros(spentMicros),
    currency: b.currency,
    thresholdPercent: threshold,
    enforcement: b.enforcement === 'hard' ? budgetv1.Enforcement.ENFORCEMENT_HARD : budgetv1.Enforcement.ENFORCEMENT_SOFT,
    kind: forecast ? budgetv1.BudgetEventKind.BUDGET_EVENT_KIND_FORECAST : budgetv1.BudgetEventKind.BUDGET_EVENT_KIND_SPENT,
    ...(forecast && { projected: forecast.projected }),
    ...(forecast?.exceedsAtMs !== undefined && { exceedsAtMs: forecast.exceedsAtMs }),
  };
}

/** Settings of threshold publication. */
export interface ThresholdAlertOptions {
  /** How much of a period must have passed before its forecast thresholds are looked at (`budgets.forecast.minElapsedFraction`). */
  forecastMinElapsedFraction?: number;
}

/**
 * The percentage a hard budget's refusal stands for: the budget has nothing left for the request
 * it refused, so every threshold up to this one is reached as far as the tenant can tell.
 */
export const REFUSAL_PERCENT = 100;

/** How many accounts' refusal announcements a process remembers before it forgets the stale ones. */
const REMEMBERED_REFUSALS = 10_000;

/**
 * Threshold crossings, published at least once per budget, period and threshold, by whichever
 * replica finds one first (ingress after a settle or a refusal, billing at its reconciliation). A
 * marker in the ledger records it: claimed for {@link THRESHOLD_CLAIM_MS} before publishing, kept
 * for the period once published, removed when publishing failed. A crossing whose publisher failed
 * or died is therefore published again by the next one to look; consumers know an event by its id.
 *
 * Forecast thresholds likewise, with markers of their own: once `forecastMinElapsedFraction` of the
 * period has passed, a settle or reconciliation that brings the spend projected to the period's end
 * to a forecast threshold publishes a forecast event, once per budget, period and threshold. Only
 * while the period runs: spend settled or reconciled after it ended projects nothing.
 */
export class ThresholdAlerts {
  /** Account → until when this process need not announce its refusals again (see `publishRefused`). */
  private readonly refusalsAnnounced = new Map<string, number>();

  constructor(
    private readonly ledger: BudgetLedger,
    private readonly events: BudgetEventPublisher,
    private readonly logger: Logger,
    private readonly clock: () => number = Date.now,
    private readonly options: ThresholdAlertOptions = {},
  ) {}

  /**
   * Publishes each threshold `spent[i]` has reached on `accounts[i]`, and each forecast threshold
   * its projection has, that nobody has published; resolves to how many.
   */
  async publishCrossed(accounts: readonly BudgetAccount[], spent: readonly number[]): Promise<number> {
    let published = 0;
    for (const [i, account] of accounts.entries()) {
      const total = spent[i] ?? 0;
      const limit = account.line.limitMicros;
      for (const threshold of account.budget.alertThresholds) {
        // In integers: micro-units near the largest amount (2^53) times a percentage are past what a double holds exactly.
        if (BigInt(Math.round(total)) * 100n < BigInt(Math.round(limit)) * BigInt(threshold)) break;
        if (await this.publishOnce(account, total, threshold)) published++;
      }
      published += await this.publishForecast(account, total);
    }
    return published;
  }

  /** Publishes each forecast threshold the projection of `spentMicros` reaches and nobody has published. */
  private async publishForecast(account: BudgetAccount, spentMicros: number): Promise<number> {
    const thresholds = account.budget.forecastThresholds ?? [];
    if (thresholds.length === 0) return 0;
    const forecast = forecastOf(account, spentMicros, this.clock(), this.options.forecastMinElapsedFraction ?? DEFAULT_MIN_ELAPSED_FRACTION);
    if (!forecast) return 0;
    let published = 0;
    for (const threshold of thresholds) {
      if (!forecast.reaches(threshold)) break;
      if (await this.publishOnce(account, spentMicros, threshold, forecast)) published++;
    }
    return published;
  }

  /**
   * A hard budget refused a request: spend stops about one worst-case request short of the limit,
   * so its 100 % would never be crossed by a settle, and the tenant would get 402s with no alert.
   * Publishes every threshold up to {@link REFUSAL_PERCENT} not yet published this period (the
   * same markers as crossings, so each is still published once), with the spend as it stands —
   * below the limit, by as much as the refused request's worst case. Thresholds above 100 % are
   * left to real spend (reconciliation). A process asks the ledger at most once per
   * {@link THRESHOLD_CLAIM_MS} per account, so a flood of refusals costs no Redis calls.
   */
  async publishRefused(account: BudgetAccount, spentMicros: number): Promise<number> {
    const now = this.clock();
    const key = account.line.account;
    if ((this.refusalsAnnounced.get(key) ?? 0) > now) return 0;
    this.rememberRefusal(key, now + THRESHOLD_CLAIM_MS, now);
    let published = 0;
    for (const threshold of account.budget.alertThresholds) {
      if (threshold > REFUSAL_PERCENT) break;
      if (await this.publishOnce(account, spentMicros, threshold)) published++;
    }
    return published;
  }

  private rememberRefusal(account: string, until: number, now: number): void {
    if (this.refusalsAnnounced.size >= REMEMBERED_REFUSALS) for (const [a, t] of this.refusalsAnnounced) if (t <= now) this.refusalsAnnounced.delete(a);
    this.refusalsAnnounced.set(account, until);
  }

  /**
   * Claims, publishes and keeps the marker of one threshold (of a forecast one, given the
   * forecast: a marker of its own); false when another has it or publishing failed.
   */
  private async publishOnce(account: BudgetAccount, spentMicros: number, threshold: number, forecast?: SpendForecast): Promise<boolean> {
    const marker = `${account.line.account}:${forecast ? `forecast-${threshold}` : threshold}`;
    const kind = forecast ? 'forecast' : 'spent';
    if (!(await this.ledger.markOnce(marker, THRESHOLD_CLAIM_MS))) return false;
    try {
      await this.events.publish(thresholdEvent(account, spentMicros, threshold, forecast?.atMs ?? this.clock(), forecast));
    } catch (error) {
      // Not marked, so the next settle, refusal or reconciliation of the period publishes it again.
      await this.ledger.unmark(marker).catch(() => undefined);
      this.logger.error({ err: error, budget: account.budget.id, threshold, kind }, 'budget threshold event could not be published');
      return false;
    }
    await this.ledger.keepMark(marker, account.line.keepMs).catch((error: unknown) => {
      // The claim expires instead: the event may be published once more, which consumers absorb.
      this.logger.warn({ err: error, budget: account.budget.id, threshold, kind }, 'budget threshold marker could not be kept');
    });
    return true;
  }
}
