import { z } from 'zod';

const limits = z.object({ rpm: z.number().int().positive().optional(), tpm: z.number().int().positive().optional() });

/** A traffic key as stored (by hash) and as the admin API shows it. */
export const apiKeyRecordSchema = z.object({
  id: z.string().min(1),
  hash: z.string().regex(/^[0-9a-f]{64}$/),
  prefix: z.string(),
  name: z.string(),
  orgId: z.string().min(1),
  teamId: z.string(),
  projectId: z.string(),
  appId: z.string(),
  allowedModels: z.array(z.string()),
  limits,
  metadata: z.record(z.string(), z.string()),
  tags: z.record(z.string(), z.string()),
  createdAt: z.string(),
  expiresAt: z.string().optional(),
  revokedAt: z.string().optional(),
  source: z.enum(['config', 'issued']),
});
export type ApiKeyRecord = z.infer<typeof apiKeyRecordSchema>;

/** The record without its hash, as the admin API lists it. */
export type PublicApiKey = Omit<ApiKeyRecord, 'hash'>;

export function publicView(record: ApiKeyRecord): PublicApiKey {
  const { hash: _hash, ...rest } = record;
  return rest;
}

export function isActive(record: ApiKeyRecord, now: Date): boolean {
  if (record.revokedAt !== undefined) return false;
  return record.expiresAt === undefined || Date.parse(record.expiresAt) > now.getTime();
}
