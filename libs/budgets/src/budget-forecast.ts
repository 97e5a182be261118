import { Money } from '@openrouter/usage';
import type { BudgetAccount } from './budget-book';
import { MICROS_PER_UNIT } from './micro-units';

/** How much of a period must have passed before its spend is projected, unless configured (`budgets.forecast.minElapsedFraction`). */
export const DEFAULT_MIN_ELAPSED_FRACTION = 0.1;

/**
 * A budget's spend projected to its period's end on the run rate so far: spent / elapsed × the
 * period. Linear, and exact: spend in micro-units and times in milliseconds are integers, and every
 * comparison is made between their products in decimal (60 digits hold them whole), never on a
 * rounded quotient.
 */
export class SpendForecast {
  /** The spend projected to the period's end, in micro-units, rounded up (a budget never under-counts). */
  readonly projectedMicros: Money;
  /** Whether the projection reaches the budget's amount by the period's end. */
  readonly exceeds: boolean;
  /**
   * When the run rate reaches the amount (epoch ms, rounded up to the millisecond): within the
   * period when `exceeds`; `atMs` itself when the spend is there already; undefined otherwise.
   */
  readonly exceedsAtMs: number | undefined;

  constructor(
    readonly spentMicros: number,
    readonly limitMicros: number,
    /** Where the run rate is counted from: the period's start, or the budget's creation when later. */
    readonly fromMs: number,
    /** When the projection is made. */
    readonly atMs: number,
    /** The period's end (exclusive). */
    readonly endMs: number,
  ) {
    const spent = new Money(spentMicros);
    this.projectedMicros = spent.times(this.spanMs).dividedBy(this.elapsedMs).toDecimalPlaces(0, Money.ROUND_CEIL);
    this.exceeds = this.reaches(100);
    this.exceedsAtMs = !this.exceeds ? undefined : spentMicros >= limitMicros ? atMs : this.fromMs + ceilDiv(new Money(limitMicros).times(this.elapsedMs), spent);
  }

  /** The time the run rate is measured over (> 0). */
  get elapsedMs(): number {
    return this.atMs - this.fromMs;
  }

  /** The time the projection covers, from `fromMs` to the period's end. */
  get spanMs(): number {
    return this.endMs - this.fromMs;
  }

  /** The projection as decimal text in the budget's currency ("2604.5"). */
  get projected(): string {
    return this.projectedMicros.dividedBy(MICROS_PER_UNIT).toFixed();
  }

  /**
   * Whether the projection reaches `percent` % of the amount, exactly: spent × span × 100 ≥
   * limit × percent × elapsed, never the rounded projection (which could pass by a micro-unit).
   */
  reaches(percent: number): boolean {
    return new Money(this.spentMicros).times(this.spanMs).times(100).gte(new Money(this.limitMicros).times(percent).times(this.elapsedMs));
  }
}

/**
 * The forecast of `account`'s spend at `atMs`, or undefined when nothing can be projected yet: before
 * `minElapsedFraction` of the period has passed, counted from the later of its start and the budget's
 * creation (a budget created mid-period has spent only since then, as its ledger counts), and
 * outside the period (a request settled after its period ended projects nothing for it).
 */
export function forecastOf(account: BudgetAccount, spentMicros: number, atMs: number, minElapsedFraction: number = DEFAULT_MIN_ELAPSED_FRACTION): SpendForecast | undefined {
  const { startMs, endMs } = account.window;
  const fromMs = Math.max(startMs, account.budget.creation?.atMs ?? startMs);
  if (atMs <= fromMs || atMs >= endMs) return undefined;
  // elapsed / span ≥ fraction, as elapsed ≥ span × fraction (the fraction's decimal text, exactly).
  if (new Money(atMs - fromMs).lt(new Money(endMs - fromMs).times(minElapsedFraction))) return undefined;
  return new SpendForecast(Math.max(0, spentMicros), account.line.limitMicros, fromMs, atMs, endMs);
}

/** ⌈a / b⌉ of positive decimals, as a number of milliseconds. */
function ceilDiv(a: Money, b: Money): number {
  return a.dividedBy(b).toDecimalPlaces(0, Money.ROUND_CEIL).toNumber();
}
