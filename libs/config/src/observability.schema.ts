import { z } from 'zod';

/** Metrics, tracing and alert rules and channels. */
export const observabilitySchema = z.object({});
export type ObservabilityConfig = z.infer<typeof observabilitySchema>;
