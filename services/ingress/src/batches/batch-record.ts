import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { toOpenAIBatchUsage, type BatchTokens } from './batch-usage';

type OpenAIBatchUsage = ReturnType<typeof toOpenAIBatchUsage>;

/** The endpoints a batch's lines may call, as OpenAI's Batch API names them. */
export const BATCH_ENDPOINTS = ['/v1/chat/completions', '/v1/embeddings', '/v1/completions', '/v1/responses', '/v1/moderations'] as const;
export type BatchEndpoint = (typeof BATCH_ENDPOINTS)[number];

export const BATCH_STATUSES = ['validating', 'failed', 'in_progress', 'finalizing', 'completed', 'expired', 'cancelling', 'cancelled'] as const;
export type BatchStatus = (typeof BATCH_STATUSES)[number];

/** The statuses a batch ends in: nothing changes it after. */
export const FINAL_STATUSES: ReadonlySet<BatchStatus> = new Set<BatchStatus>(['failed', 'completed', 'expired', 'cancelled']);

/** What was wrong with a batch's input file (a batch that failed validation lists them). */
export interface BatchInputError {
  code: string;
  message: string;
  param: string | null;
  /** 1-based, as OpenAI counts the lines of a file. */
  line: number | null;
}

export interface BatchRecord {
  /** `batch_` and 24 random characters. */
  id: string;
  /** The project that owns it (`ownerOf`): every key of the project sees it. */
  owner: string;
  /** The key that created it: its lines run as that key, at its limits and budgets, while it is active. */
  keyId: string;
  endpoint: BatchEndpoint;
  inputFileId: string;
  completionWindow: '24h';
  status: BatchStatus;
  /** Unix seconds, as all the times below. */
  createdAt: number;
  expiresAt: number;
  inProgressAt?: number | undefined;
  finalizingAt?: number | undefined;
  completedAt?: number | undefined;
  failedAt?: number | undefined;
  expiredAt?: number | undefined;
  cancellingAt?: number | undefined;
  cancelledAt?: number | undefined;
  outputFileId?: string | undefined;
  errorFileId?: string | undefined;
  errors?: BatchInputError[] | undefined;
  requestCounts: { total: number; completed: number; failed: number };
  /** The tokens its answered lines used, as far as they have run. */
  usage?: BatchTokens | undefined;
  metadata: Record<string, string> | null;
  /** `output_expires_after.seconds`: its output and error files are dropped this long after they are written (at most `batches.fileRetentionDays`). */
  outputExpiresAfterSeconds?: number | undefined;
  /** The creating request's app and tags (`x-openrouter-app`, `x-openrouter-tags`), given to every line. */
  app?: string | undefined;
  tags: Record<string, string>;
}

const time = z.number().optional();

/**
 * A batch as a store keeps it, read back through this schema rather than trusted as it is (a
 * damaged value, or another kind of value under its key). Fields it does not know are kept.
 */
const batchRecordSchema = z.looseObject({
  id: z.string(),
  owner: z.string(),
  keyId: z.string(),
  endpoint: z.enum(BATCH_ENDPOINTS),
  inputFileId: z.string(),
  completionWindow: z.literal('24h'),
  status: z.enum(BATCH_STATUSES),
  createdAt: z.number(),
  expiresAt: z.number(),
  inProgressAt: time,
  finalizingAt: time,
  completedAt: time,
  failedAt: time,
  expiredAt: time,
  cancellingAt: time,
  cancelledAt: time,
  outputFileId: z.string().optional(),
  errorFileId: z.string().optional(),
  errors: z.array(z.object({ code: z.string(), message: z.string(), param: z.string().nullable(), line: z.number().nullable() })).optional(),
  requestCounts: z.object({ total: z.number(), completed: z.number(), failed: z.number() }),
  usage: z.object({ input: z.number(), cached: z.number(), output: z.number(), reasoning: z.number() }).optional(),
  metadata: z.record(z.string(), z.string()).nullable(),
  outputExpiresAfterSeconds: z.number().optional(),
  app: z.string().optional(),
  tags: z.record(z.string(), z.string()),
}) satisfies z.ZodType<BatchRecord>;

/** The batch `id` stored as `raw` (JSON), or undefined when it is not one, or another batch. */
export function parseBatchRecord(raw: string, id?: string): BatchRecord | undefined {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return undefined;
  }
  const parsed = batchRecordSchema.safeParse(value);
  return parsed.success && (id === undefined || parsed.data.id === id) ? parsed.data : undefined;
}

/** OpenAI's Batch object. */
export interface OpenAIBatch {
  id: string;
  object: 'batch';
  endpoint: string;
  errors: { object: 'list'; data: BatchInputError[] } | null;
  input_file_id: string;
  completion_window: string;
  status: BatchStatus;
  output_file_id: string | null;
  error_file_id: string | null;
  created_at: number;
  in_progress_at: number | null;
  expires_at: number;
  finalizing_at: number | null;
  completed_at: number | null;
  failed_at: number | null;
  expired_at: number | null;
  cancelling_at: number | null;
  cancelled_at: number | null;
  request_counts: { total: number; completed: number; failed: number };
  usage?: OpenAIBatchUsage;
  metadata: Record<string, string> | null;
}

export function toOpenAIBatch(batch: BatchRecord): OpenAIBatch {
  return {
    id: batch.id,
    object: 'batch',
    endpoint: batch.endpoint,
    errors: batch.errors && batch.errors.length > 0 ? { object: 'list', data: batch.errors } : null,
    input_file_id: batch.inputFileId,
    completion_window: batch.completionWindow,
    status: batch.status,
    output_file_id: batch.outputFileId ?? null,
    error_file_id: batch.errorFileId ?? null,
    created_at: batch.createdAt,
    in_progress_at: batch.inProgressAt ?? null,
    expires_at: batch.expiresAt,
    finalizing_at: batch.finalizingAt ?? null,
    completed_at: batch.completedAt ?? null,
    failed_at: batch.failedAt ?? null,
    expired_at: batch.expiredAt ?? null,
    cancelling_at: batch.cancellingAt ?? null,
    cancelled_at: batch.cancelledAt ?? null,
    request_counts: { ...batch.requestCounts },
    ...(batch.usage ? { usage: toOpenAIBatchUsage(batch.usage) } : {}),
    metadata: batch.metadata,
  };
}

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** `prefix` and `length` random letters and digits (unbiased: bytes past the last whole multiple of 62 are drawn again). */
export function randomId(prefix: string, length = 24): string {
  let out = prefix;
  while (out.length < prefix.length + length) {
    for (const byte of randomBytes(length)) {
      if (byte >= 248) continue;
      out += ALPHABET[byte % 62];
      if (out.length === prefix.length + length) break;
    }
  }
  return out;
}

/**
 * Whether `id` has the shape of the ids the gateway gives batches (`randomId('batch_')`): any other
 * is no batch, and is not looked up (in Redis it could name another key of a batch, `batch:<id>:claim`).
 */
export function isBatchId(id: string): boolean {
  return BATCH_ID.test(id);
}

const BATCH_ID = /^batch_[A-Za-z0-9]{24}$/;

export const nowSeconds = (): number => Math.floor(Date.now() / 1000);
