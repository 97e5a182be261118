import { z } from 'zod';
import { flag, numeric, strictObject } from './primitives';

const positiveInt = numeric(z.number().int().positive());

/**
 * OpenAI's Batch API at ingress (docs/batches.md): files uploaded for batches (`/v1/files`) and
 * batches (`/v1/batches`) whose lines every ingress replica runs through its own request path, at
 * the key's rate limits and budgets. Files, batches and their progress live in the access store's
 * Redis when there is one (shared by every replica, a batch taken over when its replica stops),
 * otherwise in this process (gone when it stops).
 */
export const batchesSchema = strictObject({
  enabled: flag.default(true),
  /** The largest file `/v1/files` takes (bytes). Files are kept sealed in Redis: mind its memory. */
  maxFileBytes: positiveInt.default(100 * 1024 * 1024),
  /** The most requests (lines) one batch may hold. */
  maxLines: numeric(z.number().int().positive().max(1_000_000)).default(50_000),
  /** Lines one replica runs at the same time, over all the batches it runs. */
  concurrency: numeric(z.number().int().positive().max(1_000)).default(8),
  /** How many times a line refused for a reason that passes (429, 5xx) is tried before its error is final. */
  maxAttempts: numeric(z.number().int().positive().max(100)).default(5),
  /** How long a replica holds a batch it runs without renewing its claim; a replica that stops holds it at most this long. */
  leaseMs: numeric(z.number().int().min(1_000).max(600_000)).default(30_000),
  /** How often an idle replica looks for a batch to run. */
  pollMs: numeric(z.number().int().min(50).max(60_000)).default(1_000),
  /** Files (uploaded, and the batches' output and error files) are dropped this many days after their creation. */
  fileRetentionDays: numeric(z.number().int().positive().max(3_650)).default(30),
});
export type BatchesConfig = z.infer<typeof batchesSchema>;
