import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Redis } from 'ioredis';
import { storedOrgSchema, type OrgConfig } from '@openrouter/config';
import { z } from 'zod';
import { apiKeyRecordSchema, hashesOf, reindexed, type ApiKeyRecord } from './key-record';
import { GatewayError } from '@openrouter/errors';
import { keepSubscribed, whenReady, type RedisConnectionConfig } from '@openrouter/service-runtime';
import { allKeysIndex, idAt, indexesOf, indexFor, listPosition, pageOf, type KeyPage, type KeyPageQuery } from './key-index';
import { connectRedis, connectSubscriber } from './redis-connection';

export const auditEntrySchema = z.object({
  at: z.string(),
  actor: z.string(),
  action: z.string(),
  target: z.string(),
  details: z.record(z.string(), z.unknown()),
});
export type AuditEntry = z.infer<typeof auditEntrySchema>;

/**
 * Every action the gateway writes to the audit log (the `action` of an entry). A new kind of admin
 * change adds its name here: the audit filter accepts only these.
 */
export const AUDIT_ACTIONS = ['key.issue', 'key.revoke', 'key.update', 'key.rotate', 'org.create', 'team.create', 'project.create', 'org.update', 'team.update', 'project.update', 'budget.create', 'budget.update', 'budget.delete', 'project.responses_purge'] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

/** An entry as the log holds it: with its id (derived from its place for one stored without, see {@link auditLogOf}). */
export interface NumberedAuditEntry extends AuditEntry {
  id: number;
}

/**
 * A batch of the audit log read from `from` on: the entries older than it (`older`, from the newest
 * when `from` is undefined) or newer than it (`newer`), at most `count`, in that order.
 */
export interface AuditRead {
  from?: number | undefined;
  direction: 'older' | 'newer';
  count: number;
}

/**
 * `entries` in the direction read, each with its id; `end`: nothing lies further that way. An entry
 * that cannot be read (not an audit entry) is left out but counted in `examined`, so that a reader
 * bounding its work counts it too.
 */
export interface AuditBatch {
  entries: NumberedAuditEntry[];
  examined: number;
  /** The id of the last entry examined (readable or not); undefined when none was. */
  lastId: number | undefined;
  end: boolean;
}

/** A change every ingress replica must see at once (a revoked key, a new team). */
export type AccessChange = { kind: 'key'; hash: string } | { kind: 'tenants' };
const changeSchema = z.union([z.object({ kind: z.literal('key'), hash: z.string() }), z.object({ kind: z.literal('tenants') })]);

/**
 * What a replica hears: a change, or `resync` when changes may have been missed (its pub/sub
 * connection was back after a drop): then nothing cached can be trusted, keys nor tenants.
 */
export type AccessEvent = AccessChange | { kind: 'resync' };

/** A revocation's outcome: the record as stored afterwards, and whether this call revoked it. */
export interface Revocation {
  record: ApiKeyRecord;
  revoked: boolean;
}

/** Issued keys, tenants added at run time, and the audit log. */
export interface AccessRepository {
  /** Resolves once the store can be used (or after a bounded wait). */
  ready(): Promise<boolean>;
  findKey(hash: string): Promise<ApiKeyRecord | undefined>;
  keyById(id: string): Promise<ApiKeyRecord | undefined>;
  /** Saves a key and, with `audit`, its audit entry in the same write: both or neither. */
  saveKey(record: ApiKeyRecord, audit?: AuditEntry): Promise<void>;
  /**
   * Revokes the key of this id as one atomic step, on any replica: `revokedAt` is set and `audit`
   * appended only while the stored record is not revoked, so concurrent revocations write one
   * entry and one time; a key rotated meanwhile is revoked under its new hash. Undefined when no
   * key has the id.
   */
  revokeKey(id: string, revokedAt: string, audit: AuditEntry): Promise<Revocation | undefined>;
  /**
   * Changes the key of this id as one atomic step with its audit entry, on any replica: `change`
   * gets the record as stored (and may throw: its error is thrown as it is, nothing is written);
   * concurrent changes apply one after the other. The hash stays. Undefined when no key has the id.
   */
  updateKey(id: string, change: (stored: ApiKeyRecord) => ApiKeyRecord, audit: AuditEntry): Promise<ApiKeyRecord | undefined>;
  /**
   * Moves the key of this id to a new secret as one atomic step with its audit entry: `change` gets
   * the record as stored and answers it under its new hash (with `previousHash` when the earlier
   * secret keeps working for `graceMs`). The record is then found by either hash until the grace
   * ends; the secret an earlier rotation's grace still accepted is forgotten at once. Undefined when
   * no key has the id.
   */
  rotateKey(id: string, change: (stored: ApiKeyRecord) => ApiKeyRecord, graceMs: number, audit: AuditEntry): Promise<ApiKeyRecord | undefined>;
  /**
   * Re-indexes the key found under `from` (its hash under one of `access.previousKeyHashSecrets`)
   * under `to` (the same key's hash under the current `access.keyHashSecret`), as one atomic step:
   * the record moves to `to` with its id, and `from` (and every alias of the record) becomes an
   * alias to it, so replicas still hashing with the earlier secret find it too. For the secret a
   * rotation replaced, `to` becomes an alias for the rest of its grace. Answers the record as
   * written; undefined when there was nothing to do (no such key, or another replica did it first).
   */
  reindexKey(from: string, to: string): Promise<ApiKeyRecord | undefined>;
  /** One page of issued keys, oldest first: reads that page's records, never every key. */
  listKeys(query: KeyPageQuery): Promise<KeyPage>;
  listOrgs(): Promise<OrgConfig[]>;
  /**
   * Changes an org added at run time (`change` gets what is stored, or undefined), atomically:
   * concurrent changes of one org, on any replica, apply one after the other, each on the other's
   * result. An error thrown by `change` is thrown as it is, and nothing is written. With `audit`,
   * the change and its audit entry are one write, which also advances `tenantsVersion`. Resolves
   * to the org as written.
   */
  updateOrg(orgId: string, change: (stored: OrgConfig | undefined) => OrgConfig, audit?: AuditEntry): Promise<OrgConfig>;
  /**
   * Moves with every write of `updateOrg` (in the write itself): a replica that read it before
   * loading the tenants and finds it moved since has missed a change (its announcement was lost).
   */
  tenantsVersion(): Promise<string>;
  /** One batch of the audit log, read as one atomic step (appends on other replicas shift nothing: ids are stable). */
  readAudit(read: AuditRead): Promise<AuditBatch>;
  /** Records when keys were last used (key id → ms since the epoch): each stored time only moves forward, whichever replica writes. */
  recordKeyUses(uses: ReadonlyMap<string, number>): Promise<void>;
  /** When each of these keys was last used, as recorded (ms since the epoch); a key never recorded is absent. */
  keysLastUsed(ids: readonly string[]): Promise<Map<string, number>>;
  publish(change: AccessChange): Promise<void>;
  onChange(listener: (event: AccessEvent) => void): void;
  close(): Promise<void>;
}

const AUDIT_KEEP = 100_000;

/**
 * Lua: `audit_top(log, sequence)`, the id of the newest entry of the log, and
 * `append_audit(log, sequence, entry, keep)`, which appends `entry` (a JSON object) with the next id
 * and trims the log to `keep` entries. Run inside the script that makes the change the entry
 * records, so the change, the entry and its id are one atomic write.
 *
 * The ids are contiguous: the entry at index i (0 the newest) has the id `top - i`. An entry with an
 * id stores it first in its JSON (`{"id":12,...}`). One without (written before ids existed, or by
 * a replica still running such a version during a rolling upgrade) is numbered by its place: the
 * entries above the newest stored id continue it (`top` counts them), those below continue down.
 * Appending gives the next id after all of them, so what an entry is numbered never changes while
 * it is in the log. `sequence` holds the last id given: it numbers on past entries no longer in the
 * log (a log deleted, or trimmed of every entry with an id), and until it exists (the first append
 * of this version) the entries the log holds are numbered 1…n, oldest first.
 */
const AUDIT_LUA = `local function audit_top(log, sequence)
  local given = redis.call('GET', sequence)
  local head = redis.call('LINDEX', log, 0)
  if not head then return tonumber(given) or 0 end
  local id = string.match(head, '^{"id":(%d+),')
  if id then return tonumber(id) end
  local i = 0
  while true do
    local batch = redis.call('LRANGE', log, i, i + 99)
    if #batch == 0 then break end
    for j, raw in ipairs(batch) do
      id = string.match(raw, '^{"id":(%d+),')
      if id then return tonumber(id) + i + j - 1 end
    end
    -- Never written with ids: the log holds none further down either.
    if not given then break end
    i = i + #batch
  end
  return (tonumber(given) or 0) + redis.call('LLEN', log)
end
local function append_audit(log, sequence, entry, keep)
  local id = audit_top(log, sequence) + 1
  redis.call('SET', sequence, id)
  local rest = string.sub(entry, 2)
  if rest ~= '}' then rest = ',' .. rest end
  redis.call('LPUSH', log, '{"id":' .. id .. rest)
  redis.call('LTRIM', log, 0, keep - 1)
  return id
end
`;

/**
 * The audit log in Redis: the list (newest first), the counter of its ids, how many entries it
 * keeps, and the Lua that appends to it ({@link AUDIT_LUA}: defines `append_audit`). Other stores
 * append admin changes to it too (budgets), in their own scripts, with that function.
 */
export function auditLogOf(prefix: string): { key: string; sequence: string; keep: number; appendLua: string } {
  return { key: `${prefix}audit`, sequence: `${prefix}audit:seq`, keep: AUDIT_KEEP, appendLua: AUDIT_LUA };
}

/** An audit entry as the Lua appends it: a JSON object without an `id` of its own (the log gives it one). */
function auditJson(entry: AuditEntry): string {
  const { at, actor, action, target, details } = entry;
  return JSON.stringify({ at, actor, action, target, details });
}

/** KEYS: the audit log, its counter. ARGV: the entry, how many entries the log keeps. Answers the entry's id. */
const APPEND_AUDIT = `${AUDIT_LUA}return append_audit(KEYS[1], KEYS[2], ARGV[1], tonumber(ARGV[2]))`;
/**
 * KEYS: the audit log, its counter. ARGV: the id to read from ('' the newest), `older` or `newer`,
 * how many. Answers the newest id, the index of the first entry answered, the log's length, and the
 * entries (newest first), all read at one instant.
 */
const READ_AUDIT = `${AUDIT_LUA}local top = audit_top(KEYS[1], KEYS[2])
local length = redis.call('LLEN', KEYS[1])
local count = tonumber(ARGV[3])
local first, last
if ARGV[2] == 'older' then
  first = 0
  if ARGV[1] ~= '' then first = math.max(0, top - tonumber(ARGV[1]) + 1) end
  last = first + count - 1
else
  last = math.min(length - 1, top - tonumber(ARGV[1]) - 1)
  first = math.max(0, last - count + 1)
end
if last < first or first >= length then return {top, first, length, {}} end
return {top, first, length, redis.call('LRANGE', KEYS[1], first, last)}`;

/** Parses a stored audit entry (undefined: not one) and checks the id it stores, if any, against its place. */
function numberedEntry(raw: string, id: number): NumberedAuditEntry | undefined {
  const parsed = storedAuditEntrySchema.safeParse(safeJson(raw));
  if (!parsed.success) return undefined;
  const { id: stored, ...entry } = parsed.data;
  if (stored !== undefined && stored !== id) {
    // Only a log changed by hand (an entry removed from its middle or its head) gets here.
    throw new GatewayError('internal', `The audit log's ids are not contiguous (entry ${stored} is where ${id} should be); it was changed outside the gateway.`);
  }
  return { id, ...entry };
}
const storedAuditEntrySchema = auditEntrySchema.extend({ id: z.number().int().optional() });
/** How long an org's lock is held at most (a holder that died). */
const ORG_LOCK_TTL_MS = 5_000;
/**
 * How long a change waits for the lock: past its expiry, so a lock its holder never released (a
 * replica that died holding it) delays the change but never fails it. A change still waiting then
 * meets a stream of others on the same org: `tenant_busy`, retryable.
 */
const ORG_LOCK_WAIT_MS = ORG_LOCK_TTL_MS + 1_000;
/** KEYS: the hash of last uses. ARGV: key id, time, key id, time… Each field is set only to a later time than it holds. */
const RECORD_KEY_USES = `for i = 1, #ARGV, 2 do
  local at = tonumber(ARGV[i + 1])
  local stored = tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '0')
  if at > stored then redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
return 0`;
/** KEYS: the lock. ARGV: the holder's token. Deletes the lock only when that holder still holds it. */
const RELEASE_LOCK = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;
/**
 * KEYS: the key record, the audit log, its counter. ARGV: the record as read, the record to write,
 * the audit entry, how many entries the log keeps. Writes both only if the record is still the one
 * read (a compare-and-set: a concurrent revocation makes it answer 0, and the caller reads again).
 */
const REPLACE_KEY = `${AUDIT_LUA}if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
append_audit(KEYS[2], KEYS[3], ARGV[3], tonumber(ARGV[4]))
return 1`;
/**
 * KEYS: the key record, the record's new place (its new hash), the id map, the audit log, its
 * counter, then the places of the record's other hashes. ARGV: the record as read, the record to
 * write, the alias to leave in the old places, the grace in ms (0: none), the id, the new hash, the
 * audit entry, how many entries the log keeps, then for each of those places `alias` (the replaced
 * secret, under any hash secret: an alias for the grace, or removed without one), `drop` (what an
 * earlier rotation's grace still accepted: removed) or `set` (the new secret's hash under a previous
 * hash secret: an alias with no expiry). A compare-and-set like REPLACE_KEY.
 */
const ROTATE_KEY = `${AUDIT_LUA}if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('HSET', KEYS[3], ARGV[5], ARGV[6])
local grace = tonumber(ARGV[4])
for i = 6, #KEYS do
  local mode = ARGV[i + 3]
  if mode == 'set' then redis.call('SET', KEYS[i], ARGV[3])
  elseif mode == 'alias' and grace > 0 then redis.call('SET', KEYS[i], ARGV[3], 'PX', grace)
  else redis.call('DEL', KEYS[i]) end
end
append_audit(KEYS[4], KEYS[5], ARGV[7], tonumber(ARGV[8]))
return 1`;
/**
 * KEYS: the key record as read, where to write it (the same place, or its hash under the current
 * secret: a move), the id map, then alias places. ARGV: the record as read, the record to write, the
 * id, the record's hash, the alias JSON, then for each alias place: `set` (an alias with no expiry),
 * `keep` (re-pointed, keeping its expiry; left alone when it is gone), or a number of ms (an alias
 * expiring then). A compare-and-set on the record: two replicas re-indexing one key at once write
 * once, the other answers 0. The id map follows a move in the same step.
 */
const REINDEX_KEY = `if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2])
if KEYS[2] ~= KEYS[1] then redis.call('HSET', KEYS[3], ARGV[3], ARGV[4]) end
for i = 4, #KEYS do
  local mode = ARGV[i + 2]
  if mode == 'set' then redis.call('SET', KEYS[i], ARGV[5])
  elseif mode == 'keep' then
    local ttl = redis.call('PTTL', KEYS[i])
    if ttl == -1 then redis.call('SET', KEYS[i], ARGV[5]) elseif ttl > 0 then redis.call('SET', KEYS[i], ARGV[5], 'PX', ttl) end
  else redis.call('SET', KEYS[i], ARGV[5], 'PX', mode) end
end
return 1`;
/** Compare-and-set rounds a revocation tries; each lost round means another revocation won. */
const REVOKE_ATTEMPTS = 5;
/** Key ids read per round while indexing the keys stored before the lists had indexes. */
const INDEX_BATCH = 500;

/** The embedded mode's store: one process, nothing shared. */
export class MemoryAccessRepository implements AccessRepository {
  private readonly keys = new Map<string, ApiKeyRecord>();
  /** A rotated key's earlier hash → its current one, while the rotation's grace lasts. */
  private readonly aliases = new Map<string, string>();
  private readonly orgs = new Map<string, OrgConfig>();
  /** Oldest first; the ids are contiguous, the last one `auditSequence`. */
  private readonly audit: NumberedAuditEntry[] = [];
  private auditSequence = 0;
  private readonly events = new EventEmitter();
  private version = 0;
  private readonly lastUsed = new Map<string, number>();

  async ready() {
    return true;
  }

  async findKey(hash: string) {
    return this.stored(hash);
  }
  /** The record stored under `hash`, or under the hash its alias names. */
  private stored(hash: string): ApiKeyRecord | undefined {
    const alias = this.aliases.get(hash);
    return this.keys.get(hash) ?? (alias === undefined ? undefined : this.keys.get(alias));
  }
  async reindexKey(from: string, to: string) {
    const stored = this.stored(from);
    const next = stored && reindexed(stored, from, to, new Date());
    if (!stored || !next) return undefined;
    if (next.move) {
      this.keys.delete(stored.hash);
      this.keys.set(to, next.record);
      for (const hash of hashesOf(next.record)) if (hash !== to) this.aliases.set(hash, to);
    } else {
      this.keys.set(stored.hash, next.record);
      this.aliases.set(to, stored.hash);
    }
    return next.record;
  }
  async keyById(id: string) {
    return this.storedById(id);
  }
  /**
   * Read in the same step as the change that follows it is written (no await between): of changes
   * of one key at once, each then reads what the one before wrote, as Redis's compare-and-set has it.
   */
  private storedById(id: string): ApiKeyRecord | undefined {
    return [...this.keys.values()].find((k) => k.id === id);
  }
  async saveKey(record: ApiKeyRecord, audit?: AuditEntry) {
    this.keys.set(record.hash, record);
    for (const hash of record.formerHashes ?? []) this.aliases.set(hash, record.hash);
    if (audit) this.appendAudit(audit);
  }
  async revokeKey(id: string, revokedAt: string, audit: AuditEntry) {
    const stored = this.storedById(id);
    if (!stored) return undefined;
    if (stored.revokedAt !== undefined) return { record: stored, revoked: false };
    const record = { ...stored, revokedAt };
    await this.saveKey(record, audit);
    return { record, revoked: true };
  }
  async updateKey(id: string, change: (stored: ApiKeyRecord) => ApiKeyRecord, audit: AuditEntry) {
    const stored = this.storedById(id);
    if (!stored) return undefined;
    const record = { ...change(stored), hash: stored.hash };
    await this.saveKey(record, audit);
    return record;
  }
  async rotateKey(id: string, change: (stored: ApiKeyRecord) => ApiKeyRecord, _graceMs: number, audit: AuditEntry) {
    const stored = this.storedById(id);
    if (!stored) return undefined;
    const record = change(stored);
    this.keys.delete(stored.hash);
    for (const hash of hashesOf(stored)) this.aliases.delete(hash);
    // The grace itself is enforced where a key is accepted (`previousExpiresAt`); the aliases are dropped at the next rotation.
    if (record.previousHash !== undefined) for (const hash of [record.previousHash, ...(record.previousFormerHashes ?? [])]) this.aliases.set(hash, record.hash);
    await this.saveKey(record, audit);
    return record;
  }
  async listKeys(query: KeyPageQuery) {
    return pageOf(this.keys.values(), query);
  }
  async listOrgs() {
    return [...this.orgs.values()];
  }
  async updateOrg(orgId: string, change: (stored: OrgConfig | undefined) => OrgConfig, audit?: AuditEntry) {
    const written = change(this.orgs.get(orgId));
    this.orgs.set(orgId, written);
    this.version++;
    if (audit) this.appendAudit(audit);
    return written;
  }
  async tenantsVersion() {
    return String(this.version);
  }
  /** Appends an admin change (also one of another store of this process: budgets). */
  appendAudit(entry: AuditEntry): void {
    const { at, actor, action, target, details } = entry;
    this.audit.push({ id: ++this.auditSequence, at, actor, action, target, details });
    if (this.audit.length > AUDIT_KEEP) this.audit.shift();
  }
  async readAudit(read: AuditRead): Promise<AuditBatch> {
    // The entry of id n is at index n - oldest.
    const oldest = this.auditSequence - this.audit.length + 1;
    let entries: NumberedAuditEntry[];
    let end: boolean;
    if (read.direction === 'older') {
      const stop = Math.min(this.audit.length, (read.from ?? Infinity) - oldest);
      const start = Math.max(0, stop - read.count);
      entries = this.audit.slice(start, Math.max(start, stop)).reverse();
      end = start === 0;
    } else {
      const start = Math.max(0, (read.from ?? 0) + 1 - oldest);
      entries = this.audit.slice(start, start + read.count);
      end = start + read.count >= this.audit.length;
    }
    return { entries: entries.map((e) => ({ ...e, details: { ...e.details } })), examined: entries.length, lastId: entries.at(-1)?.id, end };
  }
  async recordKeyUses(uses: ReadonlyMap<string, number>) {
    for (const [id, at] of uses) if (at > (this.lastUsed.get(id) ?? 0)) this.lastUsed.set(id, at);
  }
  async keysLastUsed(ids: readonly string[]) {
    return new Map(ids.flatMap((id) => (this.lastUsed.has(id) ? [[id, this.lastUsed.get(id) ?? 0] as const] : [])));
  }
  async publish(change: AccessChange) {
    this.events.emit('change', change);
  }
  onChange(listener: (event: AccessEvent) => void) {
    this.events.on('change', listener);
  }
  async close() {
    this.events.removeAllListeners();
  }
}

export interface RedisAccessOptions {
  /** How long an org change waits for the org's lock (tests shorten it). */
  orgLockWaitMs?: number;
}

/** Shared by every ingress replica; changes are pushed to all of them over pub/sub. */
export class RedisAccessRepository implements AccessRepository {
  private readonly redis: Redis;
  private readonly subscriber: Redis;
  private readonly listeners: Array<(event: AccessEvent) => void> = [];
  private readonly orgLockWaitMs: number;
  /** The indexing of keys stored without list indexes, while one runs (one per process at a time). */
  private indexing: Promise<void> | undefined;

  constructor(
    connection: RedisConnectionConfig,
    private readonly prefix: string,
    options: RedisAccessOptions = {},
  ) {
    this.orgLockWaitMs = options.orgLockWaitMs ?? ORG_LOCK_WAIT_MS;
    this.redis = connectRedis(connection);
    this.subscriber = connectSubscriber(connection);
    this.redis.on('error', () => undefined);
    this.subscriber.on('error', () => undefined);
    // Tenants added while this replica could not reach Redis were announced to nobody here:
    // every (re)connection is a reason to reload them.
    this.redis.on('ready', () => this.emit({ kind: 'tenants' }));
    // Once subscribed again everything cached is dropped: what was published while it was away
    // (a revocation, a new org) reached nobody here.
    keepSubscribed(this.subscriber, this.channel, {
      subscribed: () => this.emit({ kind: 'resync' }),
      message: (text) => {
        const parsed = changeSchema.safeParse(safeJson(text));
        if (parsed.success) this.emit(parsed.data);
      },
    });
  }

  private emit(event: AccessEvent): void {
    for (const listener of this.listeners) listener(event);
  }

  async ready() {
    const [main, sub] = await Promise.all([whenReady(this.redis, 3_000), whenReady(this.subscriber, 3_000)]);
    return main && sub;
  }

  /** A Redis failure is the store being unavailable (503), never an internal error. */
  private async call<T>(operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (error) {
      // The request's own answer (an org change refused as a conflict) goes through as it is.
      if (error instanceof GatewayError) throw error;
      throw new GatewayError('unavailable', 'The access store (Redis) cannot be reached right now. Please retry.', { code: 'access_store_unavailable', cause: error });
    }
  }

  private get channel(): string {
    return `${this.prefix}access-changes`;
  }

  private get auditLog(): ReturnType<typeof auditLogOf> {
    return auditLogOf(this.prefix);
  }

  async findKey(hash: string) {
    return this.call(async () => {
      const text = await this.redis.get(`${this.prefix}key:${hash}`);
      // A rotated key's earlier hash holds an alias to its current one while the grace lasts (a second read, for those only).
      const alias = aliasOf(text);
      return alias === undefined ? parseRecord(text) : parseRecord(await this.redis.get(`${this.prefix}key:${alias}`));
    });
  }
  async reindexKey(from: string, to: string) {
    return this.call(async () => {
      for (let attempt = 0; attempt < REVOKE_ATTEMPTS; attempt++) {
        const found = await this.redis.get(`${this.prefix}key:${from}`);
        const alias = aliasOf(found);
        const key = `${this.prefix}key:${alias ?? from}`;
        const raw = alias === undefined ? found : await this.redis.get(key);
        const stored = parseRecord(raw);
        const next = stored && reindexed(stored, from, to, new Date());
        if (raw === null || !stored || !next) return undefined;
        const aliasJson = JSON.stringify({ aliasOf: next.record.hash });
        // A move: the old place becomes an alias, and every other alias of the record follows it (keeping a grace's expiry).
        const places = next.move ? [{ h: stored.hash, mode: 'set' }, ...hashesOf(next.record).flatMap((h) => (h === to || h === stored.hash ? [] : [{ h, mode: 'keep' }]))] : [{ h: to, mode: String(Math.max(1, Math.ceil(next.aliasMs))) }];
        const written = await this.redis.eval(
          REINDEX_KEY,
          3 + places.length,
          key,
          `${this.prefix}key:${next.record.hash}`,
          `${this.prefix}key-ids`,
          ...places.map((p) => `${this.prefix}key:${p.h}`),
          raw,
          JSON.stringify(next.record),
          next.record.id,
          next.record.hash,
          aliasJson,
          ...places.map((p) => p.mode),
        );
        if (written === 1) return next.record;
        // Changed since it was read (re-indexed by another replica, revoked, updated): read again.
      }
      return undefined;
    });
  }
  async keyById(id: string) {
    return this.call(async () => {
      const hash = await this.redis.hget(`${this.prefix}key-ids`, id);
      return hash ? this.findKey(hash) : undefined;
    });
  }
  /** Saves a key with its list indexes (and its audit entry) in one transaction. */
  async saveKey(record: ApiKeyRecord, audit?: AuditEntry) {
    return this.call(async () => {
      const write = this.redis.multi().set(`${this.prefix}key:${record.hash}`, JSON.stringify(record)).hset(`${this.prefix}key-ids`, record.id, record.hash);
      // A key issued while the hash secret is rotated: found under the previous secrets too.
      for (const hash of record.formerHashes ?? []) write.set(`${this.prefix}key:${hash}`, JSON.stringify({ aliasOf: record.hash }));
      for (const index of indexesOf(this.prefix, record)) write.zadd(index, 0, listPosition(record));
      if (audit) write.eval(APPEND_AUDIT, 2, this.auditLog.key, this.auditLog.sequence, auditJson(audit), this.auditLog.keep);
      await execAll(write);
    });
  }
  async revokeKey(id: string, revokedAt: string, audit: AuditEntry) {
    return this.replaceById(id, async (key, raw, stored) => {
      if (stored.revokedAt !== undefined) return { record: stored, revoked: false };
      const record = { ...stored, revokedAt };
      const written = await this.redis.eval(REPLACE_KEY, 3, key, this.auditLog.key, this.auditLog.sequence, raw, JSON.stringify(record), auditJson(audit), this.auditLog.keep);
      return written === 1 ? { record, revoked: true } : undefined;
    });
  }
  async updateKey(id: string, change: (stored: ApiKeyRecord) => ApiKeyRecord, audit: AuditEntry) {
    return this.replaceById(id, async (key, raw, stored) => {
      const record = { ...change(stored), hash: stored.hash };
      const written = await this.redis.eval(REPLACE_KEY, 3, key, this.auditLog.key, this.auditLog.sequence, raw, JSON.stringify(record), auditJson(audit), this.auditLog.keep);
      return written === 1 ? record : undefined;
    });
  }
  async rotateKey(id: string, change: (stored: ApiKeyRecord) => ApiKeyRecord, graceMs: number, audit: AuditEntry) {
    return this.replaceById(id, async (key, raw, stored) => {
      const record = change(stored);
      const grace = record.previousHash === undefined ? 0 : Math.max(1, Math.ceil(graceMs));
      // The replaced secret's places (its hash, and those under earlier hash secrets) alias the new one for the grace; an earlier rotation's are dropped.
      // The new secret's hashes under the previous hash secrets (one being rotated) alias it for good.
      const places = [
        ...[stored.hash, ...(stored.formerHashes ?? [])].map((h) => ({ h, mode: 'alias' })),
        ...[stored.previousHash, ...(stored.previousFormerHashes ?? [])].flatMap((h) => (h === undefined ? [] : [{ h, mode: 'drop' }])),
        ...(record.formerHashes ?? []).map((h) => ({ h, mode: 'set' })),
      ];
      const written = await this.redis.eval(
        ROTATE_KEY,
        5 + places.length,
        key,
        `${this.prefix}key:${record.hash}`,
        `${this.prefix}key-ids`,
        this.auditLog.key,
        this.auditLog.sequence,
        ...places.map((p) => `${this.prefix}key:${p.h}`),
        raw,
        JSON.stringify(record),
        JSON.stringify({ aliasOf: record.hash }),
        grace,
        id,
        record.hash,
        auditJson(audit),
        this.auditLog.keep,
        ...places.map((p) => p.mode),
      );
      return written === 1 ? record : undefined;
    });
  }
  /**
   * Reads the key of this id and writes it with `write` (a compare-and-set on the record as read,
   * answering undefined when it lost), again while it loses: another change or rotation won.
   */
  private async replaceById<T>(id: string, write: (key: string, raw: string, stored: ApiKeyRecord) => Promise<T | undefined>): Promise<T | undefined> {
    return this.call(async () => {
      for (let attempt = 0; attempt < REVOKE_ATTEMPTS; attempt++) {
        const hash = await this.redis.hget(`${this.prefix}key-ids`, id);
        if (hash === null) return undefined;
        const key = `${this.prefix}key:${hash}`;
        const raw = await this.redis.get(key);
        // Rotated between the two reads: read again from its id.
        if (aliasOf(raw) !== undefined || (raw === null && (await this.redis.hget(`${this.prefix}key-ids`, id)) !== hash)) continue;
        const stored = parseRecord(raw);
        if (raw === null || !stored) return undefined;
        const written = await write(key, raw, stored);
        if (written) return written;
      }
      throw new GatewayError('overloaded', 'The key is being changed by other requests. Please retry.', { code: 'key_busy' });
    });
  }
  async listKeys(query: KeyPageQuery) {
    return this.call(async () => {
      await this.ensureIndexed();
      const from = query.after ? `(${listPosition(query.after)}` : '-';
      const positions = await this.redis.zrangebylex(indexFor(this.prefix, query), from, '+', 'LIMIT', 0, query.limit + 1);
      const ids = positions.slice(0, query.limit).map(idAt);
      return { records: await this.recordsById(ids), hasMore: positions.length > query.limit };
    });
  }

  /** The records of these ids, in this order; an id whose record cannot be read is left out. */
  private async recordsById(ids: string[]): Promise<ApiKeyRecord[]> {
    if (ids.length === 0) return [];
    const hashes = (await this.redis.hmget(`${this.prefix}key-ids`, ...ids)).filter((h): h is string => h !== null);
    if (hashes.length === 0) return [];
    const values = await this.redis.mget(hashes.map((h) => `${this.prefix}key:${h}`));
    return values.map(parseRecord).filter((r): r is ApiKeyRecord => r !== undefined);
  }

  /**
   * Keys written before the lists had indexes (an upgrade), or by a replica still running an older
   * version (a rolling upgrade), are in the id map but not in the index of every key: compared by
   * their counts (two O(1) reads), and indexed when they differ.
   */
  private async ensureIndexed(): Promise<void> {
    const [ids, indexed] = await Promise.all([this.redis.hlen(`${this.prefix}key-ids`), this.redis.zcard(allKeysIndex(this.prefix))]);
    if (indexed >= ids) return;
    this.indexing ??= this.indexStoredKeys().finally(() => {
      this.indexing = undefined;
    });
    await this.indexing;
  }

  /** Indexes every stored key, a batch at a time (adding to an index is idempotent). */
  private async indexStoredKeys(): Promise<void> {
    let cursor = '0';
    do {
      const [next, entries] = await this.redis.hscan(`${this.prefix}key-ids`, cursor, 'COUNT', INDEX_BATCH);
      cursor = next;
      await this.indexBatch(entries);
    } while (cursor !== '0');
  }

  /** `entries`: id, hash, id, hash… A record that cannot be read is indexed among every key only, first. */
  private async indexBatch(entries: string[]): Promise<void> {
    const pairs = Array.from({ length: entries.length / 2 }, (_, i) => ({ id: entries[2 * i] ?? '', hash: entries[2 * i + 1] ?? '' }));
    if (pairs.length === 0) return;
    const values = await this.redis.mget(pairs.map((p) => `${this.prefix}key:${p.hash}`));
    const write = this.redis.multi();
    pairs.forEach(({ id }, i) => {
      const record = parseRecord(values[i] ?? null);
      if (!record) write.zadd(allKeysIndex(this.prefix), 0, listPosition({ createdAt: '', id }));
      else for (const index of indexesOf(this.prefix, record)) write.zadd(index, 0, listPosition(record));
    });
    await write.exec();
  }
  async listOrgs() {
    return this.call(async () => {
      const values = await this.redis.hvals(`${this.prefix}orgs`);
      return values.map((v) => storedOrgSchema.safeParse(safeJson(v))).flatMap((r) => (r.success ? [r.data] : []));
    });
  }
  async updateOrg(orgId: string, change: (stored: OrgConfig | undefined) => OrgConfig, audit?: AuditEntry) {
    return this.call(async () => {
      // A lock per org (SET NX with an expiry, released only by its holder): the change is a read,
      // then a write, of the org's whole JSON.
      const lock = `${this.prefix}org-lock:${orgId}`;
      const token = randomUUID();
      const deadline = Date.now() + this.orgLockWaitMs;
      while ((await this.redis.set(lock, token, 'PX', ORG_LOCK_TTL_MS, 'NX')) !== 'OK') {
        if (Date.now() > deadline) throw tenantBusy(orgId);
        await new Promise((resolve) => setTimeout(resolve, 10 + Math.random() * 20));
      }
      try {
        const raw = await this.redis.hget(`${this.prefix}orgs`, orgId);
        const stored = raw === null ? undefined : storedOrgSchema.safeParse(safeJson(raw));
        // A record that cannot be read is never overwritten as if there were none (its teams and projects would be lost).
        if (stored && !stored.success) throw new GatewayError('internal', `The stored organisation "${orgId}" cannot be read; it was left as it is.`);
        const written = change(stored?.data);
        const write = this.redis.multi().hset(`${this.prefix}orgs`, orgId, JSON.stringify(written)).incr(this.tenantsVersionKey);
        if (audit) write.eval(APPEND_AUDIT, 2, this.auditLog.key, this.auditLog.sequence, auditJson(audit), this.auditLog.keep);
        await execAll(write);
        return written;
      } finally {
        await this.redis.eval(RELEASE_LOCK, 1, lock, token);
      }
    });
  }
  private get tenantsVersionKey(): string {
    return `${this.prefix}tenants-version`;
  }
  async tenantsVersion() {
    return this.call(async () => (await this.redis.get(this.tenantsVersionKey)) ?? '0');
  }
  async readAudit(read: AuditRead): Promise<AuditBatch> {
    return this.call(async () => {
      // Newer than nothing: from the oldest.
      const from = read.from ?? (read.direction === 'newer' ? 0 : undefined);
      const [top, first, length, values] = (await this.redis.eval(READ_AUDIT, 2, this.auditLog.key, this.auditLog.sequence, from === undefined ? '' : String(from), read.direction, read.count)) as [number, number, number, string[]];
      // Newest first as read; the id of index i is top - i.
      const numbered = values.map((raw, i) => ({ raw, id: top - first - i }));
      if (read.direction === 'newer') numbered.reverse();
      const entries = numbered.flatMap(({ raw, id }) => numberedEntry(raw, id) ?? []);
      const end = read.direction === 'older' ? first + values.length >= length : first === 0;
      return { entries, examined: values.length, lastId: numbered.at(-1)?.id, end };
    });
  }
  async recordKeyUses(uses: ReadonlyMap<string, number>) {
    if (uses.size === 0) return;
    await this.call(async () => {
      await this.redis.eval(RECORD_KEY_USES, 1, `${this.prefix}key-last-used`, ...[...uses].flatMap(([id, at]) => [id, String(at)]));
    });
  }
  async keysLastUsed(ids: readonly string[]) {
    if (ids.length === 0) return new Map<string, number>();
    const times = await this.call(() => this.redis.hmget(`${this.prefix}key-last-used`, ...ids));
    return new Map(ids.flatMap((id, i) => {
      const at = Number(times[i] ?? NaN);
      return Number.isFinite(at) ? [[id, at] as const] : [];
    }));
  }
  async publish(change: AccessChange) {
    return this.call(async () => {
      await this.redis.publish(this.channel, JSON.stringify(change));
    });
  }
  onChange(listener: (event: AccessEvent) => void) {
    this.listeners.push(listener);
  }
  async close() {
    this.redis.disconnect();
    this.subscriber.disconnect();
  }
}

/**
 * The org's lock stayed taken for the whole wait: other changes of this org hold it in turn (or
 * one hangs). The store answers; the org is busy: retryable, and not "Redis cannot be reached".
 */
function tenantBusy(orgId: string): GatewayError {
  return new GatewayError('overloaded', `The organisation "${orgId}" is being changed by other requests. Please retry in a moment.`, { code: 'tenant_busy', retryable: true });
}

/** Runs a transaction and throws the first command's error: `exec` answers them instead of throwing (a failed script would go unnoticed). */
async function execAll(write: ReturnType<Redis['multi']>): Promise<void> {
  const results = await write.exec();
  const failed = results?.find(([error]) => error !== null);
  if (failed) throw failed[0];
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

const aliasSchema = z.strictObject({ aliasOf: z.string().regex(/^[0-9a-f]{64}$/) });

/** The hash an alias (a rotated key's earlier hash, during the grace) points to; undefined for anything else. */
function aliasOf(text: string | null): string | undefined {
  if (text === null || !text.startsWith('{"aliasOf"')) return undefined;
  const parsed = aliasSchema.safeParse(safeJson(text));
  return parsed.success ? parsed.data.aliasOf : undefined;
}

function parseRecord(text: string | null): ApiKeyRecord | undefined {
  if (text === null) return undefined;
  const parsed = apiKeyRecordSchema.safeParse(safeJson(text));
  return parsed.success ? parsed.data : undefined;
}
