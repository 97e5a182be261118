import { Decimal as DecimalJs } from 'decimal.js';

/**
 * The decimal type money is computed with: 60 significant digits, banker's rounding, never an
 * exponent in text. Amounts are stored with `MONEY_SCALE` decimal places (ClickHouse Decimal(38, 18)).
 */
export const Money = DecimalJs.clone({ precision: 60, rounding: DecimalJs.ROUND_HALF_EVEN, toExpNeg: -60, toExpPos: 60 });
export type Money = InstanceType<typeof Money>;

export const MONEY_SCALE = 18;

/** Text of an amount rounded to the stored scale, without trailing zeros ("0.000123"). */
export function moneyText(amount: Money): string {
  return amount.toDecimalPlaces(MONEY_SCALE, Money.ROUND_HALF_EVEN).toFixed();
}
