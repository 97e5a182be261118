import { usagev1 } from '@openrouter/contracts';
import { Money, moneyText } from './money';
import type { PriceBook, ResolvedPrice } from './price-book';

const PER_TOKENS = new Money(1_000_000);
const MS_PER_MINUTE = new Money(60_000);

export interface TokenCounts {
  prompt: number;
  completion: number;
  cachedRead: number;
  cacheWrite: number;
  /** Of `cacheWrite`, the writes kept an hour (priced at `cacheWrite1h`). */
  cacheWrite1h?: number;
  /** Audio transcribed or translated, in milliseconds (priced per minute). */
  audioMs?: number;
  /** Characters of text spoken (priced per 1M). */
  characters?: number;
  /** Of `prompt`, the input images' tokens (an image edit's), priced at `imageInput`. */
  imagePrompt?: number;
  /** Images made (a generation's or an edit's answer), priced each at `perImage`. */
  images?: number;
}

/**
 * The exact cost of a request at `price`. `prompt` counts every input token, cached reads and
 * cache writes included, so plain input is what is left after both; reasoning tokens are part of
 * `completion`. Audio, characters and images made are priced by their own units, on top of any tokens. The per-request fee applies to every request a deployment answered (or began to).
 */
export function costOf(tokens: TokenCounts, price: ResolvedPrice, chargeRequestFee: boolean): Money {
  const cached = Math.min(tokens.cachedRead, tokens.prompt);
  const written = Math.min(tokens.cacheWrite, tokens.prompt - cached);
  const writtenForAnHour = Math.min(tokens.cacheWrite1h ?? 0, written);
  const images = Math.min(tokens.imagePrompt ?? 0, tokens.prompt - cached - written);
  const plainInput = tokens.prompt - cached - written - images;
  // Terms with no tokens are left out: most requests have no cached, cache-write or image tokens.
  let perMillion = price.input.times(plainInput);
  if (images > 0) perMillion = perMillion.plus(price.imageInput.times(images));
  if (cached > 0) perMillion = perMillion.plus(price.cachedInput.times(cached));
  if (written > writtenForAnHour) perMillion = perMillion.plus(price.cacheWrite.times(written - writtenForAnHour));
  if (writtenForAnHour > 0) perMillion = perMillion.plus(price.cacheWrite1h.times(writtenForAnHour));
  if (tokens.completion > 0) perMillion = perMillion.plus(price.output.times(tokens.completion));
  if (tokens.characters) perMillion = perMillion.plus(price.perMillionCharacters.times(tokens.characters));
  let cost = perMillion.dividedBy(PER_TOKENS);
  if (tokens.audioMs) cost = cost.plus(price.perAudioMinute.times(tokens.audioMs).dividedBy(MS_PER_MINUTE));
  if (tokens.images) cost = cost.plus(price.perImage.times(tokens.images));
  return chargeRequestFee ? cost.plus(price.perRequest) : cost;
}

export interface PricedUsage {
  amount: string;
  currency: string;
  priceVersion: string;
}

/** One provider call of a request metered call by call, with the tokens it used. */
export interface CallTokens {
  servedModel: string;
  deployment: string;
  tokens: TokenCounts;
  /**
   * Whether this call pays its request fee: it answered (or was cut or abandoned while a
   * deployment worked on it), whatever became of the request's other calls. Unset: as the
   * request's status says.
   */
  served?: boolean;
  /** The service tier that served this call (see `ServedTier`); unset: the event's. */
  serviceTier?: string | undefined;
}

/**
 * The service tier a request was served at, for its price: the `service_tier` the provider's
 * answer reports, else the one the request asked for. Unset, `auto` and `default`, and a tier the
 * model's pricing does not declare, are priced at the standard price.
 */
export interface ServedTier {
  serviceTier?: string | undefined;
}

/**
 * Prices an event's tokens with the price in effect when the request was received. A request
 * with no price (refused before routing, an unknown model) costs 0 in the catalog's currency when
 * all prices share one, so per-currency totals stay whole; USD (the schema's default) otherwise.
 *
 * A request metered call by call (a legacy completion: one provider call per prompt, each routed
 * on its own) gives them as `calls`: each is priced at its own model and deployment and pays its
 * own request fee when it was served (`CallTokens.served`, else the request's status decides), and
 * the event's served model and tokens are not read.
 *
 * Each is priced at the service tier that served it (`ServedTier`: a call's own, else the event's).
 */
export function priceEvent(
  book: PriceBook,
  event: Pick<usagev1.UsageEvent, 'servedModel' | 'deployment' | 'receivedAtMs' | 'tokens' | 'status'> & Partial<Pick<usagev1.UsageEvent, 'audioMs' | 'characters' | 'imagePromptTokens' | 'images'>> & ServedTier,
  calls?: ReadonlyArray<CallTokens>,
): PricedUsage {
  const served = event.status === usagev1.Status.STATUS_OK || event.status === usagev1.Status.STATUS_CANCELLED;
  if (calls && calls.length > 0) return priceCalls(book, event.receivedAtMs, calls, served, event.serviceTier);
  const price = event.servedModel ? book.priceAt(event.servedModel, event.deployment, event.receivedAtMs, event.serviceTier) : undefined;
  if (!price) return unpriced(book);
  const t = event.tokens;
  const counts = { prompt: t?.prompt ?? 0, completion: t?.completion ?? 0, cachedRead: t?.cachedRead ?? 0, cacheWrite: t?.cacheWrite ?? 0, cacheWrite1h: t?.cacheWrite1h ?? 0, audioMs: event.audioMs ?? 0, characters: event.characters ?? 0, imagePrompt: event.imagePromptTokens ?? 0, images: event.images ?? 0 };
  return { amount: moneyText(costOf(counts, price, served)), currency: price.currency, priceVersion: price.version };
}

/**
 * The sum of each call at its own price; the version lists the prices that applied, in call order.
 * Costs are never converted: in a catalog priced in several currencies (possible only without
 * budgets), a call priced in another currency than the request's first priced call is left out,
 * as a call with no price is.
 */
function priceCalls(book: PriceBook, receivedAtMs: number, calls: ReadonlyArray<CallTokens>, served: boolean, serviceTier: string | undefined): PricedUsage {
  let total = new Money(0);
  let currency: string | undefined;
  const versions: string[] = [];
  for (const call of calls) {
    const price = call.servedModel ? book.priceAt(call.servedModel, call.deployment, receivedAtMs, call.serviceTier ?? serviceTier) : undefined;
    if (!price) continue;
    currency ??= price.currency;
    if (price.currency !== currency) continue;
    total = total.plus(costOf(call.tokens, price, call.served ?? served));
    if (!versions.includes(price.version)) versions.push(price.version);
  }
  return currency === undefined ? unpriced(book) : { amount: moneyText(total), currency, priceVersion: versions.join(', ') };
}

function unpriced(book: PriceBook): PricedUsage {
  return { amount: '0', currency: book.currency ?? 'USD', priceVersion: '' };
}
