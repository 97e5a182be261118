import { GatewayError } from '@openrouter/errors';
import { paramOf } from '@openrouter/openai-wire';
import { z } from 'zod';

const id = z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,63}$/, 'must be 1–64 lower-case letters, digits, ., - or _');
const limits = z.strictObject({ rpm: z.int().positive().max(100_000_000).optional(), tpm: z.int().positive().max(10_000_000_000).optional() });
const labels = z.record(z.string().max(64), z.string().max(256)).refine((r) => Object.keys(r).length <= 32, 'at most 32 entries');

export const issueKeyBody = z.strictObject({
  name: z.string().max(128).default(''),
  org: id,
  team: id.optional(),
  project: id.optional(),
  app: z.string().max(128).optional(),
  allowed_models: z.array(z.string().min(1).max(256)).max(256).default([]),
  limits: limits.default({}),
  expires_at: z.iso.datetime({ offset: true }).optional(),
  metadata: labels.default({}),
  tags: labels.default({}),
});

export const tenantBody = z.strictObject({ id, name: z.string().max(128).optional(), cost_center: z.string().min(1).max(128).optional() });

// Strict like the report queries: a filter the route does not have (`?team=`) is a 400, not all rows.
export const keyListQuery = z.strictObject({
  org: id.optional(),
  project: id.optional(),
  // Paginated as OpenAI's lists are: a page of `limit`, and the next one after its `last_id`.
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  after: z.string().min(1).max(128).optional(),
});
export const auditQuery = z.strictObject({ limit: z.coerce.number().int().min(1).max(1000).default(100) });

/** Parses admin input; the first problem becomes a 400 naming the parameter. */
export function parseInput<T extends z.ZodType>(schema: T, value: unknown): z.infer<T> {
  const result = schema.safeParse(value ?? {});
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const param = issue?.path.length ? paramOf(issue.path) : undefined;
  const message = issue ? (issue.code === 'unrecognized_keys' ? `Unrecognized parameter(s): ${issue.keys.join(', ')}.` : `Invalid ${param ?? 'body'}: ${issue.message}.`) : 'Invalid request.';
  throw new GatewayError('bad_request', message, { param: issue?.code === 'unrecognized_keys' ? issue.keys[0] : param, code: 'invalid_value' });
}
