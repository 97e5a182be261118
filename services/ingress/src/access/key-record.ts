import { z } from 'zod';
import { ipRange } from '@openrouter/config';
import { sameDigest } from './api-key';

const limits = z.object({ rpm: z.number().int().positive().optional(), tpm: z.number().int().positive().optional() });
/** Which deployments the key's requests may reach, within its tenants' policies (docs/access.md#routing-policies). */
const policy = z.object({ providers: z.array(z.string()).optional(), excludeProviders: z.array(z.string()).optional(), residency: z.array(z.string()).optional(), guardrails: z.array(z.string()).optional(), allowedIps: z.array(ipRange).optional(), storeResponses: z.boolean().optional() });

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
  /**
   * The key's hashes under earlier hash secrets (`access.previousKeyHashSecrets`), from when it was
   * re-indexed under the current one: each names an alias to this record, so that a replica still
   * hashing with that secret finds it. Harmless once no replica has that secret: none computes them.
   */
  formerHashes: z.array(z.string().regex(/^[0-9a-f]{64}$/)).optional(),
  /** The same for the secret a rotation replaced (`previousHash`): accepted only while its grace lasts. */
  previousFormerHashes: z.array(z.string().regex(/^[0-9a-f]{64}$/)).optional(),
});
export type ApiKeyRecord = z.infer<typeof apiKeyRecordSchema>;

/** The record without its hashes, as the admin API lists it. */
export type PublicApiKey = Omit<ApiKeyRecord, 'hash' | 'previousHash' | 'formerHashes' | 'previousFormerHashes'>;

export function publicView(record: ApiKeyRecord): PublicApiKey {
  const { hash: _hash, previousHash: _previous, formerHashes: _former, previousFormerHashes: _previousFormer, ...rest } = record;
  return rest;
}

/**
 * Whether a presented key's hash is this record's: its current secret (under the current hash
 * secret, or an earlier one it was re-indexed from), or the one a rotation replaced while its grace
 * lasts. Compared in constant time.
 */
export function acceptsHash(record: ApiKeyRecord, hash: string, now: Date): boolean {
  if (sameDigest(record.hash, hash) || (record.formerHashes ?? []).some((h) => sameDigest(h, hash))) return true;
  if (!inGrace(record, now)) return false;
  return [record.previousHash, ...(record.previousFormerHashes ?? [])].some((h) => h !== undefined && sameDigest(h, hash));
}

/**
 * When a secret, given by its hashes (one per hash secret in use), stops being accepted for good
 * because a rotation replaced it: the end of its grace. Undefined for the record's current secret,
 * and for one it does not name.
 */
export function graceEndOf(record: ApiKeyRecord, hashes: readonly string[]): Date | undefined {
  const current = [record.hash, ...(record.formerHashes ?? [])];
  if (hashes.some((hash) => current.some((h) => sameDigest(h, hash)))) return undefined;
  if (record.previousExpiresAt === undefined) return undefined;
  const replaced = [record.previousHash, ...(record.previousFormerHashes ?? [])];
  return hashes.some((hash) => replaced.some((h) => h !== undefined && sameDigest(h, hash))) ? new Date(record.previousExpiresAt) : undefined;
}

/** Whether the secret a rotation replaced is still accepted. */
function inGrace(record: ApiKeyRecord, now: Date): boolean {
  return record.previousHash !== undefined && record.previousExpiresAt !== undefined && Date.parse(record.previousExpiresAt) > now.getTime();
}

/** Every hash the record is stored or aliased under: what a change of it must make every replica forget. */
export function hashesOf(record: ApiKeyRecord): string[] {
  return [record.hash, ...(record.formerHashes ?? []), ...(record.previousHash === undefined ? [] : [record.previousHash]), ...(record.previousFormerHashes ?? [])];
}

/**
 * A record found under `from`, a hash under an earlier hash secret, re-indexed under `to`, the same
 * key's hash under the current one. `move`: the record itself moves to `to` (its old place becomes
 * an alias, `from` a former hash); else `to` names the secret a rotation replaced and becomes an
 * alias for the rest of its grace (`aliasMs`). Undefined when there is nothing to do: `to` is known
 * already, or `from` is not a hash this record can be moved from (it was re-indexed already under
 * a secret this replica does not hash with: replicas disagree on the current secret).
 */
export function reindexed(record: ApiKeyRecord, from: string, to: string, now: Date): { record: ApiKeyRecord; move: true } | { record: ApiKeyRecord; move: false; aliasMs: number } | undefined {
  if (hashesOf(record).includes(to)) return undefined;
  if (record.hash === from) return { record: { ...record, hash: to, formerHashes: [...(record.formerHashes ?? []), from] }, move: true };
  const earlier = [record.previousHash, ...(record.previousFormerHashes ?? [])];
  if (!inGrace(record, now) || !earlier.includes(from)) return undefined;
  const aliasMs = Date.parse(record.previousExpiresAt ?? '') - now.getTime();
  return { record: { ...record, previousFormerHashes: [...(record.previousFormerHashes ?? []), to] }, move: false, aliasMs };
}

export function isActive(record: ApiKeyRecord, now: Date): boolean {
  if (record.revokedAt !== undefined) return false;
  return record.expiresAt === undefined || Date.parse(record.expiresAt) > now.getTime();
}
