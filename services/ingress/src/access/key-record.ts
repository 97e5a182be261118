import { z } from 'zod';
import { sameDigest } from './api-key';

const limits = z.object({ rpm: z.number().int().positive().optional(), tpm: z.number().int().positive().optional() });
/** Which deployments the key's requests may reach, within its tenants' policies (docs/access.md#routing-policies). */
const policy = z.object({ providers: z.array(z.string()).optional(), excludeProviders: z.array(z.string()).optional(), residency: z.array(z.string()).optional() });

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
  policy: policy.optional(),
  limits,
  metadata: z.record(z.string(), z.string()),
  tags: z.record(z.string(), z.string()),
  createdAt: z.string(),
  expiresAt: z.string().optional(),
  revokedAt: z.string().optional(),
  source: z.enum(['config', 'issued']),
  /** After a rotation with a grace: the hash of the secret it replaced, still accepted until `previousExpiresAt`. */
  previousHash: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .optional(),
  previousExpiresAt: z.string().optional(),
});
export type ApiKeyRecord = z.infer<typeof apiKeyRecordSchema>;

/** The record without its hashes, as the admin API lists it. */
export type PublicApiKey = Omit<ApiKeyRecord, 'hash' | 'previousHash'>;

export function publicView(record: ApiKeyRecord): PublicApiKey {
  const { hash: _hash, previousHash: _previous, ...rest } = record;
  return rest;
}

/**
 * Whether a presented key's hash is this record's: its current secret, or the one a rotation
 * replaced while its grace lasts. Compared in constant time.
 */
export function acceptsHash(record: ApiKeyRecord, hash: string, now: Date): boolean {
  if (sameDigest(record.hash, hash)) return true;
  if (record.previousHash === undefined || record.previousExpiresAt === undefined) return false;
  return Date.parse(record.previousExpiresAt) > now.getTime() && sameDigest(record.previousHash, hash);
}

export function isActive(record: ApiKeyRecord, now: Date): boolean {
  if (record.revokedAt !== undefined) return false;
  return record.expiresAt === undefined || Date.parse(record.expiresAt) > now.getTime();
}
