import { Money } from '@openrouter/usage';

/** Budgets count money in micro-units (1e-6 of the currency) as integers: exact, and safe in Redis and Lua up to 2^53. */
export const MICROS_PER_UNIT = 1_000_000;

/** An amount (decimal text or Money) in micro-units, rounded up: a budget never under-counts. */
export function toMicros(amount: string | Money): number {
  const micros = new Money(amount).times(MICROS_PER_UNIT).toDecimalPlaces(0, Money.ROUND_CEIL);
  if (micros.isNegative()) throw new RangeError('a budget amount is never negative');
  if (micros.greaterThan(Number.MAX_SAFE_INTEGER)) throw new RangeError('amount too large for a budget');
  return micros.toNumber();
}

/** Micro-units as decimal text ("12.5"). */
export function fromMicros(micros: number): string {
  return new Money(micros).dividedBy(MICROS_PER_UNIT).toFixed();
}
