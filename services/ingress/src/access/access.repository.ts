import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Redis } from 'ioredis';
import { storedOrgSchema, type OrgConfig } from '@openrouter/config';
import { z } from 'zod';
import { apiKeyRecordSchema, type ApiKeyRecord } from './key-record';
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
   * Revokes a key as one atomic step, on any replica: `revokedAt` is set and `audit` appended
   * only while the stored record is not revoked, so concurrent revocations write one entry and
   * one time. Undefined when no key has the hash.
   */
  revokeKey(hash: string, revokedAt: string, audit: AuditEntry): Promise<Revocation | undefined>;
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
  listAudit(limit: number): Promise<AuditEntry[]>;
  publish(change: AccessChange): Promise<void>;
  onChange(listener: (event: AccessEvent) => void): void;
  close(): Promise<void>;
}

const AUDIT_KEEP = 100_000;

/** The audit log in Redis and how many entries it keeps: other stores append admin changes to it too (budgets). */
export function auditLogOf(prefix: string): { key: string; keep: number } {
  return { key: `${prefix}audit`, keep: AUDIT_KEEP };
}
/** How long an org's lock is held at most (a holder that died). */
const ORG_LOCK_TTL_MS = 5_000;
/**
 * How long a change waits for the lock: past its expiry, so a lock its holder never released (a
 * replica that died holding it) delays the change but never fails it. A change still waiting then
 * meets a stream of others on the same org: `tenant_busy`, retryable.
 */
const ORG_LOCK_WAIT_MS = ORG_LOCK_TTL_MS + 1_000;
/** KEYS: the lock. ARGV: the holder's token. Deletes the lock only when that holder still holds it. */
const RELEASE_LOCK = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;
/**
 * KEYS: the key record, the audit log. ARGV: the record as read, the record to write, the audit
 * entry, the last audit index kept. Writes both only if the record is still the one read (a
 * compare-and-set: a concurrent revocation makes it answer 0, and the caller reads again).
 */
const REPLACE_KEY = `if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('LPUSH', KEYS[2], ARGV[3])
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[4]))
return 1`;
/** Compare-and-set rounds a revocation tries; each lost round means another revocation won. */
const REVOKE_ATTEMPTS = 5;
/** Key ids read per round while indexing the keys stored before the lists had indexes. */
const INDEX_BATCH = 500;

/** The embedded mode's store: one process, nothing shared. */
export class MemoryAccessRepository implements AccessRepository {
  private readonly keys = new Map<string, ApiKeyRecord>();
  private readonly orgs = new Map<string, OrgConfig>();
  private readonly audit: AuditEntry[] = [];
  private readonly events = new EventEmitter();
  private version = 0;

  async ready() {
    return true;
  }

  async findKey(hash: string) {
    return this.keys.get(hash);
  }
  async keyById(id: string) {
    return [...this.keys.values()].find((k) => k.id === id);
  }
  async saveKey(record: ApiKeyRecord, audit?: AuditEntry) {
    this.keys.set(record.hash, record);
    if (audit) this.appendAudit(audit);
  }
  async revokeKey(hash: string, revokedAt: string, audit: AuditEntry) {
    const stored = this.keys.get(hash);
    if (!stored) return undefined;
    if (stored.revokedAt !== undefined) return { record: stored, revoked: false };
    const record = { ...stored, revokedAt };
    await this.saveKey(record, audit);
    return { record, revoked: true };
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
    this.audit.push(entry);
    if (this.audit.length > AUDIT_KEEP) this.audit.shift();
  }
  async listAudit(limit: number) {
    return this.audit.slice(-limit).reverse();
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

  async findKey(hash: string) {
    return this.call(async () => {
      return parseRecord(await this.redis.get(`${this.prefix}key:${hash}`));
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
      for (const index of indexesOf(this.prefix, record)) write.zadd(index, 0, listPosition(record));
      if (audit) write.lpush(`${this.prefix}audit`, JSON.stringify(audit)).ltrim(`${this.prefix}audit`, 0, AUDIT_KEEP - 1);
      await write.exec();
    });
  }
  async revokeKey(hash: string, revokedAt: string, audit: AuditEntry) {
    return this.call(async () => {
      const key = `${this.prefix}key:${hash}`;
      for (let attempt = 0; attempt < REVOKE_ATTEMPTS; attempt++) {
        const raw = await this.redis.get(key);
        const stored = parseRecord(raw);
        if (raw === null || !stored) return undefined;
        if (stored.revokedAt !== undefined) return { record: stored, revoked: false };
        const record = { ...stored, revokedAt };
        const written = await this.redis.eval(REPLACE_KEY, 2, key, `${this.prefix}audit`, raw, JSON.stringify(record), JSON.stringify(audit), AUDIT_KEEP - 1);
        if (written === 1) return { record, revoked: true };
      }
      // Only a record rewritten again and again (never by a revocation, which ends the loop) gets here.
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
        if (audit) write.lpush(`${this.prefix}audit`, JSON.stringify(audit)).ltrim(`${this.prefix}audit`, 0, AUDIT_KEEP - 1);
        await write.exec();
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
  async listAudit(limit: number) {
    return this.call(async () => {
      const values = await this.redis.lrange(`${this.prefix}audit`, 0, limit - 1);
      return values.map((v) => auditEntrySchema.safeParse(safeJson(v))).flatMap((r) => (r.success ? [r.data] : []));
    });
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

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function parseRecord(text: string | null): ApiKeyRecord | undefined {
  if (text === null) return undefined;
  const parsed = apiKeyRecordSchema.safeParse(safeJson(text));
  return parsed.success ? parsed.data : undefined;
}
