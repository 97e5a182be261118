import { z } from 'zod';
import { decimal, strictObject } from './primitives';

/**
 * Whether `YYYY-MM-DD` names a day of the calendar. `Date.parse` rolls a day that does not exist
 * into the next month (`2025-02-29` is 1 March, `2025-06-31` is 1 July) instead of refusing it.
 */
export function isCalendarDay(text: string): boolean {
  const [year, month, day] = text.split('-').map(Number) as [number, number, number];
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  return date.getUTCFullYear() === year && date.getUTCMonth() === month - 1 && date.getUTCDate() === day;
}

/** A calendar date (`2025-06-01`, midnight UTC) or an ISO 8601 instant with a zone. */
const effectiveFrom = z
  .string()
  .refine((v) => /^\d{4}-\d{2}-\d{2}$/.test(v) || /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/.test(v), {
    message: 'must be a date (2025-06-01) or an ISO 8601 instant with a zone (2025-06-01T00:00:00Z)',
    abort: true,
  })
  // A price meant for 29 February would otherwise silently start on 1 March.
  .refine((v) => isCalendarDay(v.slice(0, 10)), { message: 'is not a day of the calendar', abort: true })
  .refine((v) => !Number.isNaN(Date.parse(v)), { message: 'is not a valid date' });

const currency = z.string().regex(/^[A-Z]{3}$/, 'an ISO 4217 code such as USD');

/** Price fields, per 1M tokens except `perRequest`; each may be left out to keep the earlier value. */
const priceFields = {
  currency: currency.optional(),
  input: decimal.optional(),
  output: decimal.optional(),
  /** Cached input read; unset means the input price. */
  cachedInput: decimal.optional(),
  /** Cache write; unset means the input price. */
  cacheWrite: decimal.optional(),
  /** Cache write kept an hour (Anthropic's `ttl: "1h"`); unset means the cacheWrite price. */
  cacheWrite1h: decimal.optional(),
  /** Input image tokens (an image edit's images, as GPT Image bills them); unset means the input price. */
  imageInput: decimal.optional(),
  perRequest: decimal.optional(),
  /** Per minute of audio transcribed or translated (Whisper's way of pricing). */
  perAudioMinute: decimal.optional(),
  /** Per 1M characters of text spoken (TTS's way of pricing). */
  perMillionCharacters: decimal.optional(),
  /** Per image made (DALL·E's way of pricing): each image of a generation's or an edit's answer. */
  perImage: decimal.optional(),
};

/** A price change that takes effect at `from`; fields left out keep the value in effect before. */
export const priceChangeSchema = strictObject({ from: effectiveFrom, ...priceFields });
export type PriceChange = z.infer<typeof priceChangeSchema>;

const changeList = z
  .array(priceChangeSchema)
  .default([])
  .superRefine((changes, ctx) => {
    for (let i = 1; i < changes.length; i++) {
      const previous = changes[i - 1];
      const current = changes[i];
      if (previous && current && Date.parse(current.from) <= Date.parse(previous.from)) {
        ctx.addIssue({ code: 'custom', path: [i, 'from'], message: 'price changes must be listed in increasing `from` order' });
      }
    }
  });

/**
 * A deployment's own prices, laid over the model's at every instant: fields it sets (in its base
 * or in a change in effect) win, the others come from the model's price at that instant.
 */
export const deploymentPricingSchema = strictObject({ ...priceFields, changes: changeList });
export type DeploymentPricing = z.infer<typeof deploymentPricingSchema>;

/**
 * The values of a request's `service_tier` (OpenAI's) that ask for a tier other than the standard
 * one: each is priced differently (`priority` about twice the standard price, `flex` about half).
 * `auto` and `default` ask for the standard tier.
 */
export const SERVICE_TIERS = ['flex', 'scale', 'priority'] as const;
export type ServiceTier = (typeof SERVICE_TIERS)[number];

/**
 * A model's prices. The top-level fields are the price since forever (what existing configs
 * declare); `changes` lists later prices with the instant they take effect, so a price change
 * never reprices earlier requests; `deployments` overrides prices per deployment id (the
 * deployment's `id`, or `<model id>#<index>` when it has none).
 */
export const pricingSchema = strictObject({
  currency: currency.default('USD'),
  /** Prices per 1M tokens. */
  input: decimal.default('0'),
  output: decimal.default('0'),
  cachedInput: decimal.optional(),
  cacheWrite: decimal.optional(),
  cacheWrite1h: decimal.optional(),
  imageInput: decimal.optional(),
  perRequest: decimal.default('0'),
  /** Per minute of audio transcribed or translated, and per 1M characters of text spoken. */
  perAudioMinute: decimal.default('0'),
  perMillionCharacters: decimal.default('0'),
  /** Per image made, on top of any tokens (DALL·E 2 and 3 bill each image of `n`). */
  perImage: decimal.default('0'),
  changes: changeList,
  deployments: z.record(z.string().min(1), deploymentPricingSchema).default({}),
  /**
   * Prices of the service tiers the model may be asked for, laid over its price (and its
   * deployment's) at every instant as a deployment's are over the model's. A request asking for a
   * tier its model does not declare here is refused: its provider would bill a price nobody records.
   */
  tiers: strictObject({ flex: deploymentPricingSchema.optional(), scale: deploymentPricingSchema.optional(), priority: deploymentPricingSchema.optional() }).default({}),
});
export type Pricing = z.infer<typeof pricingSchema>;
