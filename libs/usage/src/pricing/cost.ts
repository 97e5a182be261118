import { usagev1 } from '@openrouter/contracts';
import { Money, moneyText } from './money';
import type { PriceBook, ResolvedPrice } from './price-book';

const PER_TOKENS = new Money(1_000_000);

export interface TokenCounts {
  prompt: number;
  completion: number;
  cachedRead: number;
  cacheWrite: number;
}

/**
 * The exact cost of a request at `price`. `prompt` counts every input token, cached reads and
 * cache writes included, so plain input is what is left after both; reasoning tokens are part of
 * `completion`. The per-request fee applies to every request a deployment answered (or began to).
 */
export function costOf(tokens: TokenCounts, price: ResolvedPrice, chargeRequestFee: boolean): Money {
  const cached = Math.min(tokens.cachedRead, tokens.prompt);
  const written = Math.min(tokens.cacheWrite, tokens.prompt - cached);
  const plainInput = tokens.prompt - cached - written;
  // Terms with no tokens are left out: most requests have no cached or cache-write tokens.
  let perMillion = price.input.times(plainInput);
  if (cached > 0) perMillion = perMillion.plus(price.cachedInput.times(cached));
  if (written > 0) perMillion = perMillion.plus(price.cacheWrite.times(written));
  if (tokens.completion > 0) perMillion = perMillion.plus(price.output.times(tokens.completion));
  const cost = perMillion.dividedBy(PER_TOKENS);
  return chargeRequestFee ? cost.plus(price.perRequest) : cost;
}

export interface PricedUsage {
  amount: string;
  currency: string;
  priceVersion: string;
}

/** Prices an event's tokens with the price in effect when the request was received. */
export function priceEvent(book: PriceBook, event: Pick<usagev1.UsageEvent, 'servedModel' | 'deployment' | 'receivedAtMs' | 'tokens' | 'status'>): PricedUsage {
  const price = event.servedModel ? book.priceAt(event.servedModel, event.deployment, event.receivedAtMs) : undefined;
  if (!price) return { amount: '0', currency: 'USD', priceVersion: '' };
  const t = event.tokens;
  const counts = { prompt: t?.prompt ?? 0, completion: t?.completion ?? 0, cachedRead: t?.cachedRead ?? 0, cacheWrite: t?.cacheWrite ?? 0 };
  const served = event.status === usagev1.Status.STATUS_OK || event.status === usagev1.Status.STATUS_CANCELLED;
  return { amount: moneyText(costOf(counts, price, served)), currency: price.currency, priceVersion: price.version };
}
