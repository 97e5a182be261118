import { createHmac } from 'node:crypto';
import { z } from 'zod';
import { identifier } from './primitives';

/** Requests and tokens per minute; absent means unlimited. */
export const limitsSchema = z.object({
  rpm: z.coerce.number().int().positive().optional(),
  tpm: z.coerce.number().int().positive().optional(),
});
export type Limits = z.infer<typeof limitsSchema>;

const costCenter = z.string().min(1).optional();

export const projectSchema = z.object({ id: identifier, name: z.string().optional(), costCenter, limits: limitsSchema.prefault({}) });
export const teamSchema = z.object({
  id: identifier,
  name: z.string().optional(),
  costCenter,
  limits: limitsSchema.prefault({}),
  projects: z.array(projectSchema).default([]),
});
export const orgSchema = z.object({ id: identifier, name: z.string().optional(), costCenter, limits: limitsSchema.prefault({}), teams: z.array(teamSchema).default([]) });
export type OrgConfig = z.infer<typeof orgSchema>;
export type TeamConfig = z.infer<typeof teamSchema>;
export type ProjectConfig = z.infer<typeof projectSchema>;

/** A keyed hash (HMAC-SHA256, hex) of the key; the key itself is never stored. */
const keyHash = z.string().regex(/^[0-9a-f]{64}$/, 'must be the 64-hex-digit keyed hash printed by `npm run --silent key:hash -- <keyHashSecret> <key>`');

/** An API key for traffic, declared in configuration by its hash. */
export const configKeySchema = z.object({
  id: identifier,
  hash: keyHash,
  /** The first characters of the key, for display. */
  prefix: z.string().default(''),
  name: z.string().default(''),
  org: identifier,
  team: identifier.optional(),
  project: identifier.optional(),
  app: z.string().optional(),
  /** Models and aliases the key may use; empty means all. */
  allowedModels: z.array(z.string().min(1)).default([]),
  limits: limitsSchema.prefault({}),
  expiresAt: z.iso.datetime({ offset: true }).optional(),
  metadata: z.record(z.string(), z.string()).default({}),
  tags: z.record(z.string(), z.string()).default({}),
});
export type ConfigKey = z.infer<typeof configKeySchema>;

export const ADMIN_ROLES = ['admin', 'finance', 'viewer', 'project'] as const;
export type AdminRole = (typeof ADMIN_ROLES)[number];

/**
 * A key for the admin API. A key that names an org (any role; a `project` key must) reads and
 * changes only that org's reports, tenants, keys and audit entries, and with a project only that
 * project's (docs/admin-api.md).
 */
export const adminKeySchema = z
  .object({
    id: identifier,
    hash: keyHash,
    role: z.enum(ADMIN_ROLES),
    org: identifier.optional(),
    project: identifier.optional(),
  })
  .refine((k) => k.role !== 'project' || (k.org !== undefined && k.project !== undefined), 'a project key names its org and project')
  .refine((k) => k.project === undefined || k.org !== undefined, 'a key that names a project names its org too');
export type AdminKeyConfig = z.infer<typeof adminKeySchema>;

export const accessSchema = z.object({
  /**
   * Secret for the keyed hash of API keys (HMAC-SHA256). Every ingress replica needs the same
   * value; changing it invalidates every issued key.
   */
  keyHashSecret: z.string().min(16, 'use at least 16 characters').default('open-router-development-secret'),
  /** Redis for issued keys, tenants added at run time, the audit log and rate limits. Empty: in memory. */
  redis: z
    .object({ url: z.string().default(''), keyPrefix: z.string().default('or:') })
    .prefault({}),
  /** How long a resolved key stays cached in each ingress process (revocations are pushed at once). */
  keyCacheMs: z.coerce.number().int().nonnegative().default(30_000),
  orgs: z.array(orgSchema).default([]),
  keys: z.array(configKeySchema).default([]),
  admin: z
    .object({
      keys: z.array(adminKeySchema).default([]),
      /** Development admin key (any ingress); empty means generate one at start-up and print it. Set `disabled` to turn it off. */
      devKey: z.string().default(''),
    })
    .prefault({}),
  rateLimits: z
    .object({
      /** What happens when Redis cannot be reached: `open` lets traffic through (and says so), `closed` refuses it. */
      failMode: z.enum(['open', 'closed']).default('open'),
      /** Default limits for every key, project, team and organisation that sets none. */
      key: limitsSchema.prefault({}),
      project: limitsSchema.prefault({}),
      team: limitsSchema.prefault({}),
      org: limitsSchema.prefault({}),
      /** Per model id a request names, across all tenants (aliases, `auto` and fallbacks are not charged to their members: see docs/access.md). */
      models: z.record(z.string(), limitsSchema).default({}),
    })
    .prefault({}),
  requests: z
    .object({
      maxMessages: z.coerce.number().int().positive().default(2048),
      maxTokens: z.coerce.number().int().positive().default(1_000_000),
      maxN: z.coerce.number().int().positive().default(16),
      maxWebSocketStreams: z.coerce.number().int().positive().default(32),
      /** Each WebSocket is pinged this often; one that has not answered the previous ping is dropped. */
      webSocketHeartbeatMs: z.coerce.number().int().min(1_000).default(30_000),
      /** Past this many bytes a WebSocket's client has not taken yet, its streams and new requests wait for it to read. */
      webSocketHighWaterBytes: z.coerce.number().int().positive().default(1024 * 1024),
      /** Past this many bytes waiting for the client (whole answers, which cannot wait), the socket is closed (1008). */
      webSocketMaxBufferedBytes: z.coerce.number().int().positive().default(16 * 1024 * 1024),
    })
    // At or below the high-water mark, a client merely slow to read would be cut instead of slowed down.
    .superRefine((r, ctx) => {
      if (r.webSocketMaxBufferedBytes > r.webSocketHighWaterBytes) return;
      ctx.addIssue({ code: 'custom', path: ['webSocketMaxBufferedBytes'], message: `must be larger than webSocketHighWaterBytes (${r.webSocketHighWaterBytes})` });
    })
    .prefault({}),
});
export type AccessConfig = z.infer<typeof accessSchema>;

type Issue = { path: Array<string | number>; message: string };

/** Keys and admin keys must name tenants that exist; ids must be unique, and admin keys distinct. */
export function accessReferenceIssues(access: AccessConfig): Issue[] {
  const issues: Issue[] = [];
  const orgs = new Map(access.orgs.map((o) => [o.id, o]));
  const seen = new Set<string>();
  access.keys.forEach((key, i) => {
    if (seen.has(key.id)) issues.push({ path: ['access', 'keys', i, 'id'], message: `duplicate key id "${key.id}"` });
    seen.add(key.id);
    const org = orgs.get(key.org);
    if (!org) {
      if (key.team || key.project) issues.push({ path: ['access', 'keys', i, 'org'], message: `unknown organisation "${key.org}"` });
      return;
    }
    const team = key.team ? org.teams.find((t) => t.id === key.team) : undefined;
    if (key.team && !team) issues.push({ path: ['access', 'keys', i, 'team'], message: `unknown team "${key.team}" in "${key.org}"` });
    if (key.project && !(team ? [team] : org.teams).some((t) => t.projects.some((p) => p.id === key.project))) {
      issues.push({ path: ['access', 'keys', i, 'project'], message: `unknown project "${key.project}" in "${key.org}"` });
    }
  });
  access.admin.keys.forEach((key, i) => {
    if (key.role === 'project' && key.org && !orgs.has(key.org)) issues.push({ path: ['access', 'admin', 'keys', i, 'org'], message: `unknown organisation "${key.org}"` });
  });
  return [...issues, ...adminKeyClashes(access)];
}

/**
 * Admin keys are looked up by hash: two entries with one hash would be one key with two roles (or
 * scopes), and the last would silently win; two with one id could not be told apart in the audit
 * log. The development admin key is checked too when it is set here (a generated one is random).
 */
function adminKeyClashes(access: AccessConfig): Issue[] {
  const issues: Issue[] = [];
  const ids = new Set<string>();
  const hashes = new Map<string, string>();
  access.admin.keys.forEach((key, i) => {
    if (ids.has(key.id)) issues.push({ path: ['access', 'admin', 'keys', i, 'id'], message: `duplicate admin key id "${key.id}"` });
    ids.add(key.id);
    const same = hashes.get(key.hash);
    if (same !== undefined) issues.push({ path: ['access', 'admin', 'keys', i, 'hash'], message: `the same hash as the admin key "${same}": each admin key must be a different key` });
    else hashes.set(key.hash, key.id);
  });
  const devKey = access.admin.devKey;
  const devHash = devKey === '' || devKey === 'disabled' ? undefined : createHmac('sha256', access.keyHashSecret).update(devKey).digest('hex');
  const taken = devHash === undefined ? undefined : hashes.get(devHash);
  if (taken !== undefined) issues.push({ path: ['access', 'admin', 'devKey'], message: `is the key of the admin key "${taken}" (the same keyed hash): use another development admin key, or "disabled"` });
  return issues;
}
