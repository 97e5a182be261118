import { Money, MONEY_SCALE } from '@openrouter/usage';

const UNIT = new Money(10).pow(-MONEY_SCALE);

/**
 * Splits `pool` among `weights` in proportion, exactly: every share is cut to the stored scale
 * (18 decimal places) and the units left over go, one each, to the largest remainders (ties by
 * name), so the shares always add up to the pool. Entries with no positive weight get nothing;
 * undefined when no weight is positive.
 */
export function allocate(pool: Money, weights: ReadonlyArray<readonly [string, Money]>): Map<string, Money> | undefined {
  const positive = weights.filter(([, w]) => w.greaterThan(0));
  const total = positive.reduce((sum, [, w]) => sum.plus(w), new Money(0));
  if (total.isZero()) return undefined;
  const shares = positive.map(([name, w]) => {
    const exact = pool.times(w).dividedBy(total);
    const cut = exact.toDecimalPlaces(MONEY_SCALE, Money.ROUND_DOWN);
    return { name, cut, remainder: exact.minus(cut) };
  });
  let left = pool.minus(shares.reduce((sum, s) => sum.plus(s.cut), new Money(0)));
  const byRemainder = [...shares].sort((a, b) => b.remainder.comparedTo(a.remainder) || a.name.localeCompare(b.name));
  for (const share of byRemainder) {
    if (left.lessThan(UNIT)) break;
    share.cut = share.cut.plus(UNIT);
    left = left.minus(UNIT);
  }
  return new Map(shares.map((s) => [s.name, s.cut]));
}
