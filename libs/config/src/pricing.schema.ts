import { z } from 'zod';
import { decimal } from './primitives';

export const pricingSchema = z.object({
  currency: z.string().length(3).default('USD'),
  /** Prices per 1M tokens. */
  input: decimal.default('0'),
  output: decimal.default('0'),
  cachedInput: decimal.optional(),
  cacheWrite: decimal.optional(),
  perRequest: decimal.default('0'),
});
export type Pricing = z.infer<typeof pricingSchema>;
