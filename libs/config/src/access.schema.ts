import { z } from 'zod';

/** Tenants, API keys, rate limits, admin keys and request limits. */
export const accessSchema = z.object({});
export type AccessConfig = z.infer<typeof accessSchema>;
