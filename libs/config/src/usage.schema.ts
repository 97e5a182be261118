import { z } from 'zod';

/** Kafka, ClickHouse and Redis connections, the usage pipeline and budgets. */
export const usageSchema = z.object({});
export type UsageConfig = z.infer<typeof usageSchema>;
