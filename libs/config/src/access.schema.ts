import { createHmac } from 'node:crypto';
import { z } from 'zod';
import { flag, identifier, ipRange, numeric, strictObject } from './primitives';
import { tenantPolicySchema } from './tenant-policy.schema';

export * from './tenant-policy.schema';

/**
 * The longest cost centre or app: reports take filters of at most 256 characters, so a tenant or
 * a key recorded under a longer one could never be named in a chargeback or usage report filter.
 */
const REPORT_TEXT_MAX_LENGTH = 256;

const reportText = z.string().max(REPORT_TEXT_MAX_LENGTH, `at most ${REPORT_TEXT_MAX_LENGTH} characters, as reports take it in a filter`);

/**
 * The tenant schemas in two forms: strict for the configuration an operator writes (an unknown key
 * is a typo), and `stored*`, which drop keys they do not know, for the tenants replicas keep in
 * Redis: a record a newer replica wrote with one more field must still be read (and rewritten)
 * during a rolling upgrade, not skipped.
 */
function tenantSchemas(object: typeof strictObject) {
  /** Requests and tokens per minute; absent means unlimited. */
  const limits = object({
    rpm: numeric(z.number().int().positive()).optional(),
    tpm: numeric(z.number().int().positive()).optional(),
  });
  const costCenter = reportText.min(1).optional();
  /** Which deployments the tenant's requests may reach (docs/access.md#routing-policies); absent: no restriction of its own. */
  const policy = tenantPolicySchema(object).optional();
  /** Each end user's own requests and tokens per minute within the tenant's traffic; absent: the level above's, else `access.rateLimits.endUser`. */
  const endUserLimits = limits.optional();
  const project = object({ id: identifier, name: z.string().optional(), costCenter, limits: limits.prefault({}), endUserLimits, policy });
  const team = object({ id: identifier, name: z.string().optional(), costCenter, limits: limits.prefault({}), endUserLimits, policy, projects: z.array(project).default([]) });
  const org = object({ id: identifier, name: z.string().optional(), costCenter, limits: limits.prefault({}), endUserLimits, policy, teams: z.array(team).default([]) });
  return { limits, project, team, org };
}

const strictTenants = tenantSchemas(strictObject);
const storedTenants = tenantSchemas(((shape: z.core.$ZodLooseShape) => z.object(shape)) as unknown as typeof strictObject);

/**
 * A tag's name, wherever tags come from (a request's `x-openrouter-tags`, a key's tags) and as
 * reports group by it (`group_by=tag:<name>`): a name reports cannot take would be recorded and
 * never reported on.
 */
export const TAG_NAME = /^[A-Za-z0-9_.:-]{1,64}$/;

/** Names each tag of a record whose name is not a `TAG_NAME`. */
export function checkTagNames(tags: Record<string, unknown>, ctx: z.core.$RefinementCtx): void {
  for (const name of Object.keys(tags)) {
    if (!TAG_NAME.test(name)) ctx.addIssue({ code: 'custom', path: [name], message: `a tag name is 1 to 64 letters, digits, _ . : or -, not "${name.slice(0, 80)}"` });
  }
}

/** The tag the Batch API gives each line it runs: its batch's id (docs/batches.md). */
export const BATCH_TAG = 'batch';

/**
 * A key's tags: named as any tag is, and never `batch`. A key's tags win over a request's, so a
 * key tagged `batch` would put every line of its batches under that one value, and reports could
 * no longer tell its batches apart.
 */
export function checkKeyTagNames(tags: Record<string, unknown>, ctx: z.core.$RefinementCtx): void {
  checkTagNames(tags, ctx);
  if (Object.hasOwn(tags, BATCH_TAG)) ctx.addIssue({ code: 'custom', path: [BATCH_TAG], message: `"${BATCH_TAG}" is the tag the Batch API gives each line it runs (its batch's id): a key may not set it` });
}

/** The fewest characters a development key set in the configuration may have. */
export const DEV_KEY_MIN_LENGTH = 12;

/**
 * A development key (traffic or admin): empty (generated at start-up), `disabled`, or a key of at
 * least `DEV_KEY_MIN_LENGTH` printable characters. A short one is guessable, and a template's
 * placeholder left unfilled (`REPLACE-ME`) would otherwise be a working key everyone knows.
 */
export const devKeySchema = z
  .string()
  .refine((key) => key === '' || key === 'disabled' || (key.length >= DEV_KEY_MIN_LENGTH && /^[\x21-\x7e]+$/.test(key)), {
    message: `a development key is "" (generated), "disabled", or at least ${DEV_KEY_MIN_LENGTH} printable characters without spaces (e.g. sk-or-dev- and 32 hex digits: openssl rand -hex 16)`,
  })
  .default('');

export const limitsSchema = strictTenants.limits;
export type Limits = z.infer<typeof limitsSchema>;
export const projectSchema = strictTenants.project;
export const teamSchema = strictTenants.team;
/**
 * Project ids are unique within their organisation, across its teams, as adding one at run time
 * requires: a project-scoped key, the reports and the budgets name a project by org and id alone,
 * so a key of `acme/search` would see every `search` project of `acme`. Team ids are unique within
 * their organisation: keys, budgets and limits name a team by org and id, so of two one would be
 * silently ignored, its projects and limits with it.
 */
export const orgSchema = strictTenants.org.superRefine((org, ctx) => {
  const teamAt = new Map<string, number>();
  org.teams.forEach((team, t) => {
    const first = teamAt.get(team.id);
    if (first === undefined) teamAt.set(team.id, t);
    else ctx.addIssue({ code: 'custom', path: ['teams', t, 'id'], message: `duplicate team id "${team.id}" in the organisation "${org.id}": it is teams[${first}] and teams[${t}] (a team id must be unique within its organisation)` });
  });
  const teamOf = new Map<string, string>();
  org.teams.forEach((team, t) => {
    team.projects.forEach((project, p) => {
      const first = teamOf.get(project.id);
      if (first === undefined) {
        teamOf.set(project.id, team.id);
        return;
      }
      const where = first === team.id ? `twice in the team "${team.id}"` : `in the teams "${first}" and "${team.id}"`;
      ctx.addIssue({ code: 'custom', path: ['teams', t, 'projects', p, 'id'], message: `duplicate project id "${project.id}" in the organisation "${org.id}": it is ${where} (a project id must be unique within its organisation)` });
    });
  });
});
/** An organisation as replicas store it: the same fields, unknown ones dropped (see `tenantSchemas`). */
export const storedOrgSchema = storedTenants.org;
export type OrgConfig = z.infer<typeof orgSchema>;
export type TeamConfig = z.infer<typeof teamSchema>;
export type ProjectConfig = z.infer<typeof projectSchema>;

/** A keyed hash (HMAC-SHA256, hex) of the key; the key itself is never stored. */
const keyHash = z.string().regex(/^[0-9a-f]{64}$/, 'must be the 64-hex-digit keyed hash printed by `npm run --silent key:hash -- <keyHashSecret> <key>`');

/** An API key for traffic, declared in configuration by its hash. */
export const configKeySchema = strictObject({
  id: identifier,
  hash: keyHash,
  /** The first characters of the key, for display. */
  prefix: z.string().default(''),
  name: z.string().default(''),
  org: identifier,
  team: identifier.optional(),
  project: identifier.optional(),
  app: reportText.optional(),
  /** Models and aliases the key may use; empty means all. */
  allowedModels: z.array(z.string().min(1)).default([]),
  /** Which deployments the key's requests may reach, within its tenants' policies. */
  policy: tenantPolicySchema(strictObject).optional(),
  limits: limitsSchema.prefault({}),
  expiresAt: z.iso.datetime({ offset: true }).optional(),
  metadata: z.record(z.string(), z.string()).default({}),
  tags: z.record(z.string(), z.string()).superRefine(checkKeyTagNames).default({}),
});
export type ConfigKey = z.infer<typeof configKeySchema>;

export const ADMIN_ROLES = ['admin', 'finance', 'viewer', 'project'] as const;
export type AdminRole = (typeof ADMIN_ROLES)[number];

/**
 * A key for the admin API. A key that names an org (any role; a `project` key must) reads and
 * changes only that org's reports, tenants, keys and audit entries, and with a project only that
 * project's (docs/admin-api.md).
 */
export const adminKeySchema = strictObject({
  id: identifier,
  hash: keyHash,
  role: z.enum(ADMIN_ROLES),
  org: identifier.optional(),
  project: identifier.optional(),
})
  .refine((k) => k.role !== 'project' || (k.org !== undefined && k.project !== undefined), 'a project key names its org and project')
  .refine((k) => k.project === undefined || k.org !== undefined, 'a key that names a project names its org too');
export type AdminKeyConfig = z.infer<typeof adminKeySchema>;

/** JWS algorithms an identity provider's admin tokens may be signed with: asymmetric only, so no shared secret is configured. */
export const OIDC_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;

/** https, or http to a loopback host only (a local identity provider, tests): keys fetched in clear from elsewhere could be swapped on the way. */
const secureUrl = z
  .string()
  .url()
  .refine((u) => {
    let url: URL;
    try {
      url = new URL(u);
    } catch {
      return true; // not a URL: `url()` says so
    }
    return url.protocol === 'https:' || (url.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname));
  }, 'must be an https:// URL (http:// only to 127.0.0.1 or localhost)');

/**
 * What an identity provider's token grants on the admin API: a token whose role claim holds
 * `value` gets `role`, scoped like an admin key to `org` (and `project`).
 */
export const oidcGrantSchema = strictObject({
  value: z.string().min(1),
  role: z.enum(ADMIN_ROLES),
  org: identifier.optional(),
  project: identifier.optional(),
})
  .refine((g) => g.role !== 'project' || (g.org !== undefined && g.project !== undefined), 'a project grant names its org and project')
  .refine((g) => g.project === undefined || g.org !== undefined, 'a grant that names a project names its org too');

/**
 * The admin API through the organisation's identity provider (OpenID Connect): a bearer token
 * that is a JWT is verified against the provider's published keys, and its role claim mapped to
 * an admin role by `grants` (docs/admin-api.md, "Single sign-on").
 */
export const adminOidcSchema = strictObject({
  /** The `iss` tokens must carry, exactly; its discovery document gives the keys' URL unless `jwksUrl` is set. */
  issuer: secureUrl,
  /** The `aud` tokens must carry (one of them): the client id the identity provider issues tokens for. */
  audience: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
  /** The JSON Web Key Set; by default `jwks_uri` of `<issuer>/.well-known/openid-configuration`. */
  jwksUrl: secureUrl.optional(),
  algorithms: z.array(z.enum(OIDC_ALGORITHMS)).min(1).default(['RS256', 'ES256']),
  /** The claim holding the caller's groups or roles (a string or a list of strings); a dotted path reads a nested claim (`realm_access.roles`). */
  roleClaim: z.string().min(1).default('groups'),
  /** The claim naming the caller in the audit log (`oidc:<value>`). */
  actorClaim: z.string().min(1).default('sub'),
  /** The first grant whose `value` the role claim holds applies: list the widest first. */
  grants: z.array(oidcGrantSchema).min(1),
  /** Leeway for `exp` and `nbf` between the identity provider's clock and this one. */
  clockToleranceSec: z.number().int().min(0).max(300).default(60),
  /** How long a response of the identity provider (discovery, keys) may take. */
  timeoutMs: z.number().int().positive().max(30_000).default(5_000),
});
export type AdminOidcConfig = z.infer<typeof adminOidcSchema>;

const SENTINEL_PORT = 26379;

/** A sentinel's address: `host:port`, `host` alone (port 26379), or `[ipv6]:port`. */
const sentinelNode = z.string().transform((node, ctx) => {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^\s:[\]/@]+))(?::(\d{1,5}))?$/.exec(node);
  const port = match?.[3] === undefined ? SENTINEL_PORT : Number(match[3]);
  const host = match?.[1] ?? match?.[2];
  if (host === undefined || port < 1 || port > 65535) {
    // Not quoted: the text may come from an environment variable and hold a password (`user:password@host`).
    const credentials = node.includes('@') ? '; credentials go in access.redis.sentinel.username and password, not in the address' : '';
    ctx.addIssue({ code: 'custom', message: `is not a sentinel address: write host:port (e.g. sentinel-1:26379)${credentials}` });
    return z.NEVER;
  }
  return { host, port };
});

/** Sentinel addresses as a list or as one comma-separated string (an environment variable). */
const sentinelNodes = z
  .union([z.array(z.string()), z.string()])
  .transform((v) => (Array.isArray(v) ? v : v.split(',')).map((n) => n.trim()).filter((n) => n !== ''))
  .pipe(z.array(sentinelNode));

const DNS_LABEL = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?';
const DNS_NAME = new RegExp(`^(?=.{1,253}$)${DNS_LABEL}(?:\\.${DNS_LABEL})*$`);

/**
 * The name a TLS certificate is checked against (and sent as SNI) instead of the address
 * connected to: sentinels hand out the data nodes' addresses, usually IP addresses, that their
 * certificates do not carry. A DNS name, not an IP address (SNI carries none); empty: the address.
 */
const tlsServername = z
  .string()
  .refine((name) => name === '' || (DNS_NAME.test(name) && !/^[\d.]+$/.test(name)), 'is not a DNS name: write the name the certificate carries (e.g. redis.internal), not an address')
  .optional();

export const redisSentinelSchema = strictObject({
  /** The sentinels asked where the primary is; empty: no Sentinel, `url` is the server itself. */
  nodes: sentinelNodes.default([]),
  /** The sentinels' own credentials (`requirepass` / ACL user in sentinel.conf), not the data nodes'. */
  username: z.string().default(''),
  password: z.string().default(''),
  /** TLS to the sentinels (the system's CAs); TLS to the data nodes follows `url` (`rediss://`). */
  tls: flag.default(false),
  /** With `tls`: the name the sentinels' certificates are checked against, when they do not carry the addresses in `nodes`. */
  tlsServername,
});
export type RedisSentinelConfig = z.infer<typeof redisSentinelSchema>;

/** `access.redis.url` taken apart: the data nodes' address, credentials, database and TLS. */
export interface RedisUrl {
  readonly tls: boolean;
  /** The server's host, or with Sentinel the primary's name as the sentinels know it. */
  readonly host: string;
  /** Absent: the default 6379 (never set with Sentinel). */
  readonly port: number | undefined;
  readonly username: string;
  readonly password: string;
  readonly db: number;
}

const URL_SHAPE = 'redis://[user:password@]host[:port][/db] (rediss:// for TLS)';
const SENTINEL_URL_SHAPE = 'redis://[user:password@]<primary name>[/db] (rediss:// for TLS)';

/**
 * Takes `access.redis.url` apart. With `sentinel`, its host is the primary's name (`SENTINEL
 * MONITOR <name>`), so it has no port. A problem is described without the URL, which may hold a
 * password.
 */
export function parseRedisUrl(url: string, sentinel: boolean): { ok: true; value: RedisUrl } | { ok: false; problem: string } {
  const shape = sentinel ? SENTINEL_URL_SHAPE : URL_SHAPE;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    // A password with #, ?, / or @ written as is breaks the URL apart.
    return { ok: false, problem: `is not a URL: write ${shape}, with characters such as # ? / @ in the password percent-encoded` };
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') return { ok: false, problem: `must start with redis:// or rediss:// (${shape})` };
  if (parsed.search !== '' || parsed.hash !== '') return { ok: false, problem: `takes no query string or fragment (${shape}); percent-encode # and ? in a password` };
  const host = parsed.hostname.replace(/^\[|\]$/g, '');
  if (host === '') return { ok: false, problem: sentinel ? `names no primary: with access.redis.sentinel.nodes set, write ${shape}` : `names no host: write ${shape}` };
  if (sentinel && parsed.port !== '') {
    return { ok: false, problem: `has a port, but with access.redis.sentinel.nodes set the URL names the primary as the sentinels know it, not its address: write ${shape}` };
  }
  const db = /^\/?$/.test(parsed.pathname) ? 0 : /^\/\d{1,5}$/.test(parsed.pathname) ? Number(parsed.pathname.slice(1)) : undefined;
  if (db === undefined) return { ok: false, problem: `has a path that is not a database number (/0, /1…): write ${shape}` };
  let username: string;
  let password: string;
  try {
    username = decodeURIComponent(parsed.username);
    password = decodeURIComponent(parsed.password);
  } catch {
    return { ok: false, problem: 'has a user or password with a malformed percent-encoding (%XX)' };
  }
  return { ok: true, value: { tls: parsed.protocol === 'rediss:', host, port: parsed.port === '' ? undefined : Number(parsed.port), username, password, db } };
}

export const redisSchema = strictObject({
  /**
   * Without Sentinel, the server. With Sentinel, the primary's name as the sentinels know it,
   * and the data nodes' credentials, database and TLS. Empty: no Redis, in memory.
   */
  url: z.string().default(''),
  keyPrefix: z.string().default('or:'),
  /**
   * With TLS to the data nodes (`rediss://`): the name their certificates are checked against,
   * when they do not carry the address connected to (with Sentinel, the address the sentinels give).
   */
  tlsServername,
  /** Absent, or without nodes: no Sentinel. */
  sentinel: redisSentinelSchema.optional(),
})
  .superRefine((redis, ctx) => {
    const sentinel = (redis.sentinel?.nodes.length ?? 0) > 0;
    // Whether the data nodes speak TLS; unknown for a URL that is refused (its own issue says why).
    let tls: boolean | undefined = false;
    if (redis.url !== '') {
      const parsed = parseRedisUrl(redis.url, sentinel);
      if (!parsed.ok) ctx.addIssue({ code: 'custom', path: ['url'], message: parsed.problem });
      tls = parsed.ok ? parsed.value.tls : undefined;
    } else if (sentinel) {
      ctx.addIssue({ code: 'custom', path: ['url'], message: `is empty, but access.redis.sentinel.nodes is set: name the primary as the sentinels know it, ${SENTINEL_URL_SHAPE}` });
    }
    if (redis.tlsServername && tls === false) {
      ctx.addIssue({ code: 'custom', path: ['tlsServername'], message: 'applies with TLS to the data nodes only (an access.redis.url starting with rediss://)' });
    }
    if (!redis.sentinel) return;
    if (sentinel && redis.sentinel.tlsServername && !redis.sentinel.tls) {
      ctx.addIssue({ code: 'custom', path: ['sentinel', 'tlsServername'], message: 'applies with TLS to the sentinels only (access.redis.sentinel.tls)' });
    }
    if (sentinel) return;
    const { username, password, tls: sentinelTls, tlsServername: sentinelServername } = redis.sentinel;
    for (const [key, set] of [['username', username !== ''], ['password', password !== ''], ['tls', sentinelTls], ['tlsServername', Boolean(sentinelServername)]] as const) {
      if (set) ctx.addIssue({ code: 'custom', path: ['sentinel', key], message: 'applies with access.redis.sentinel.nodes only (no sentinel is named)' });
    }
  });
export type RedisConfig = z.infer<typeof redisSchema>;

export const accessSchema = strictObject({
  /**
   * Secret for the keyed hash of API keys (HMAC-SHA256). Every ingress replica needs the same
   * value, or one of the others' `previousKeyHashSecrets` while it is being rotated.
   */
  keyHashSecret: z.string().min(16, 'use at least 16 characters').default('open-router-development-secret'),
  /**
   * Earlier values of `keyHashSecret`, still accepted while it is rotated (docs/access.md): a key
   * not found under the current secret is looked up under each of these in turn, and an issued one
   * found so is re-indexed under the current secret. A list, or comma-separated text (an
   * environment variable); empty entries are ignored.
   */
  previousKeyHashSecrets: z
    .union([z.array(z.string()), z.string()])
    .default([])
    .transform((v) => (Array.isArray(v) ? v : v.split(',')).map((t) => t.trim()).filter((t) => t !== ''))
    .pipe(z.array(z.string().min(16, 'use at least 16 characters'))),
  /** Redis for issued keys, tenants added at run time, the audit log and rate limits. Empty: in memory. */
  redis: redisSchema.prefault({}),
  /** How long a resolved key stays cached in each ingress process (revocations are pushed at once). */
  keyCacheMs: numeric(z.number().int().nonnegative()).default(30_000),
  // An org is found by its id: two entries with one would be silently merged, the last one's name, cost centre and limits winning.
  orgs: z
    .array(orgSchema)
    .superRefine((orgs, ctx) => {
      const orgAt = new Map<string, number>();
      orgs.forEach((org, o) => {
        const first = orgAt.get(org.id);
        if (first === undefined) orgAt.set(org.id, o);
        else ctx.addIssue({ code: 'custom', path: [o, 'id'], message: `duplicate organisation id "${org.id}": it is orgs[${first}] and orgs[${o}] (an organisation id must be unique)` });
      });
    })
    .default([]),
  keys: z.array(configKeySchema).default([]),
  /** How often each ingress writes when keys were last used (the admin API's `last_used_at`): that is how late it can be. */
  keyUseFlushMs: numeric(z.number().int().min(1_000).max(3_600_000)).default(30_000),
  admin: strictObject({
    keys: z.array(adminKeySchema).default([]),
    /** Development admin key (any ingress); empty means generate one at start-up and print it. Set `disabled` to turn it off. */
    devKey: devKeySchema,
    /** Single sign-on for the admin API: tokens of the organisation's identity provider, beside the admin keys. */
    oidc: adminOidcSchema.optional(),
    /** Only calls from these client addresses (IPs, CIDR ranges) reach the admin API, whoever signs them; unset: any address. */
    allowedIps: z.array(ipRange).optional(),
  }).prefault({}),
  rateLimits: strictObject({
    /** What happens when Redis cannot be reached: `open` lets traffic through (and says so), `closed` refuses it. */
    failMode: z.enum(['open', 'closed']).default('open'),
    /**
     * Output tokens a request is assumed to get for its token limits when it asks for no maximum
     * (`max_tokens` and the like) and its model has no `budgets.maxOutputTokens`; charged at most up
     * to what the tightest token limit holds beside the prompt (docs/access.md).
     */
    defaultMaxOutputTokens: numeric(z.number().int().positive()).default(4_096),
    /** Default limits for every key, project, team and organisation that sets none. */
    key: limitsSchema.prefault({}),
    project: limitsSchema.prefault({}),
    team: limitsSchema.prefault({}),
    org: limitsSchema.prefault({}),
    /**
     * Default limits for each end user (`x-openrouter-user`, else the body's `user` or
     * `safety_identifier`) within each project's traffic (an organisation's, for keys of no
     * project), unless a project, team or organisation sets `endUserLimits`. Unset: none.
     */
    endUser: limitsSchema.prefault({}),
    /** Per model id a request names, across all tenants (aliases, `auto` and fallbacks are not charged to their members: see docs/access.md). */
    models: z.record(z.string(), limitsSchema).default({}),
  }).prefault({}),
  requests: strictObject({
    maxMessages: numeric(z.number().int().positive()).default(2048),
    maxTokens: numeric(z.number().int().positive()).default(1_000_000),
    maxN: numeric(z.number().int().positive()).default(16),
    /** Image parts in a chat request, over all its messages: each may be fetched by the adapter. */
    maxImages: numeric(z.number().int().positive()).default(100),
    maxWebSocketStreams: numeric(z.number().int().positive()).default(32),
    /** Each WebSocket is pinged this often; one that has not answered the previous ping is dropped. */
    webSocketHeartbeatMs: numeric(z.number().int().min(1_000)).default(30_000),
    /** An HTTP answer (streamed, or a whole one being written) whose client took none of it for this long, while the answer waited for it, is cut. */
    streamStallMs: numeric(z.number().int().min(1_000)).default(30_000),
    /**
     * What a client leaving does to a whole (non-streamed) chat answer being worked on: `cancel`
     * stops the provider call (its prompt is charged, estimated); `complete` lets it run on to its
     * answer, which is discarded and metered at what the provider reports. Streams always cancel.
     */
    onClientAbort: z.enum(['cancel', 'complete']).default('cancel'),
    /** Past this many bytes a WebSocket's client has not taken yet, its streams and new requests wait for it to read. */
    webSocketHighWaterBytes: numeric(z.number().int().positive()).default(1024 * 1024),
    /** Past this many bytes waiting for the client (whole answers, which cannot wait), the socket is closed (1008). */
    webSocketMaxBufferedBytes: numeric(z.number().int().positive()).default(16 * 1024 * 1024),
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


/** The id the development key (`ingress.devKey`) has: no configured key may take it. */
export const DEV_KEY_ID = 'dev';
/** The id the development admin key (`access.admin.devKey`) has: no admin key may take it. */
export const DEV_ADMIN_KEY_ID = 'dev-admin';

/** Keys and admin keys must name tenants that exist; ids must be unique, and every key distinct (`ingressDevKey`: `ingress.devKey`). */
export function accessReferenceIssues(access: AccessConfig, ingressDevKey = ''): Issue[] {
  const issues: Issue[] = [];
  const orgs = new Map(access.orgs.map((o) => [o.id, o]));
  const seen = new Set<string>();
  access.keys.forEach((key, i) => {
    if (seen.has(key.id)) issues.push({ path: ['access', 'keys', i, 'id'], message: `duplicate key id "${key.id}"` });
    // Two keys under one id would share rate-limit counters, budgets and batch ownership.
    if (key.id === DEV_KEY_ID) issues.push({ path: ['access', 'keys', i, 'id'], message: `"${DEV_KEY_ID}" is the development key's id (ingress.devKey): choose another` });
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
  access.admin.oidc?.grants.forEach((grant, i) => {
    if (grant.role === 'project' && grant.org && !orgs.has(grant.org)) issues.push({ path: ['access', 'admin', 'oidc', 'grants', i, 'org'], message: `unknown organisation "${grant.org}"` });
  });
  access.previousKeyHashSecrets.forEach((secret, i) => {
    // Looked up again under the same secret: twice the work on every miss, and a rotation that did not happen.
    if (secret === access.keyHashSecret) issues.push({ path: ['access', 'previousKeyHashSecrets', i], message: 'is access.keyHashSecret itself: list only the earlier secrets still accepted' });
  });
  return [...issues, ...keyClashes(access, ingressDevKey)];
}

/**
 * Keys are looked up by hash: two entries with one hash would be one key with two owners, roles
 * or scopes, and the last would silently win — a traffic key billed to another organisation, or
 * one that is also an admin key (admin rights to anyone holding it). Two admin keys with one id
 * could not be told apart in the audit log. The development keys are checked too when they are
 * set here (a generated one is random): `ingressDevKey` is `ingress.devKey`.
 */
function keyClashes(access: AccessConfig, ingressDevKey = ''): Issue[] {
  const issues: Issue[] = [];
  const ids = new Set<string>();
  /** Hash → what holds it, as a message names it. */
  const holders = new Map<string, string>();
  const hashOf = (devKey: string): string | undefined => (devKey === '' || devKey === 'disabled' ? undefined : createHmac('sha256', access.keyHashSecret).update(devKey).digest('hex'));
  const take = (hash: string | undefined, holder: string, path: Issue['path'], advice: string): void => {
    if (hash === undefined) return;
    const same = holders.get(hash);
    if (same !== undefined) issues.push({ path, message: `has the same keyed hash as ${same}: ${advice}` });
    else holders.set(hash, holder);
  };
  access.keys.forEach((key, i) => take(key.hash, `the key "${key.id}"`, ['access', 'keys', i, 'hash'], 'each key must be a different key'));
  take(hashOf(ingressDevKey), 'the development key (ingress.devKey)', ['ingress', 'devKey'], 'use another development key, or "disabled"');
  access.admin.keys.forEach((key, i) => {
    if (ids.has(key.id)) issues.push({ path: ['access', 'admin', 'keys', i, 'id'], message: `duplicate admin key id "${key.id}"` });
    // One id for two keys: one audit actor, and one idempotency namespace (answers replayed across them).
    if (key.id === DEV_ADMIN_KEY_ID) issues.push({ path: ['access', 'admin', 'keys', i, 'id'], message: `"${DEV_ADMIN_KEY_ID}" is the development admin key's id (access.admin.devKey): choose another` });
    ids.add(key.id);
    take(key.hash, `the admin key "${key.id}"`, ['access', 'admin', 'keys', i, 'hash'], 'each admin key must be a different key, and no traffic key');
  });
  take(hashOf(access.admin.devKey), 'the development admin key', ['access', 'admin', 'devKey'], 'use another development admin key, or "disabled"');
  return issues;
}
