import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Redis } from 'ioredis';
import { orgSchema, type OrgConfig } from '@openrouter/config';
import { z } from 'zod';
import { apiKeyRecordSchema, type ApiKeyRecord } from './key-record';
import { GatewayError } from '@openrouter/errors';
import { connectRedis, connectSubscriber, whenReady } from './redis-connection';

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

/** Issued keys, tenants added at run time, and the audit log. */
export interface AccessRepository {
  /** Resolves once the store can be used (or after a bounded wait). */
  ready(): Promise<boolean>;
  findKey(hash: string): Promise<ApiKeyRecord | undefined>;
  keyById(id: string): Promise<ApiKeyRecord | undefined>;
  /** Saves a key and, with `audit`, its audit entry in the same write: both or neither. */
  saveKey(record: ApiKeyRecord, audit?: AuditEntry): Promise<void>;
  listKeys(): Promise<ApiKeyRecord[]>;
  listOrgs(): Promise<OrgConfig[]>;
  /**
   * Changes an org added at run time (`change` gets what is stored, or undefined), atomically:
   * concurrent changes of one org, on any replica, apply one after the other, each on the other's
   * result. An error thrown by `change` is thrown as it is, and nothing is written. With `audit`,
   * the change and its audit entry are one write.
   */
  updateOrg(orgId: string, change: (stored: OrgConfig | undefined) => OrgConfig, audit?: AuditEntry): Promise<void>;
  listAudit(limit: number): Promise<AuditEntry[]>;
  publish(change: AccessChange): Promise<void>;
  onChange(listener: (change: AccessChange) => void): void;
  close(): Promise<void>;
}

const AUDIT_KEEP = 100_000;
/** How long an org's lock is held at most (a holder that died), and how long a change waits for it. */
const ORG_LOCK_TTL_MS = 5_000;
const ORG_LOCK_WAIT_MS = 3_000;
/** KEYS: the lock. ARGV: the holder's token. Deletes the lock only when that holder still holds it. */
const RELEASE_LOCK = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

/** The embedded mode's store: one process, nothing shared. */
export class MemoryAccessRepository implements AccessRepository {
  private readonly keys = new Map<string, ApiKeyRecord>();
  private readonly orgs = new Map<string, OrgConfig>();
  private readonly audit: AuditEntry[] = [];
  private readonly events = new EventEmitter();

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
  async listKeys() {
    return [...this.keys.values()];
  }
  async listOrgs() {
    return [...this.orgs.values()];
  }
  async updateOrg(orgId: string, change: (stored: OrgConfig | undefined) => OrgConfig, audit?: AuditEntry) {
    this.orgs.set(orgId, change(this.orgs.get(orgId)));
    if (audit) this.appendAudit(audit);
  }
  private appendAudit(entry: AuditEntry): void {
    this.audit.push(entry);
    if (this.audit.length > AUDIT_KEEP) this.audit.shift();
  }
  async listAudit(limit: number) {
    return this.audit.slice(-limit).reverse();
  }
  async publish(change: AccessChange) {
    this.events.emit('change', change);
  }
  onChange(listener: (change: AccessChange) => void) {
    this.events.on('change', listener);
  }
  async close() {
    this.events.removeAllListeners();
  }
}

/** Shared by every ingress replica; changes are pushed to all of them over pub/sub. */
export class RedisAccessRepository implements AccessRepository {
  private readonly redis: Redis;
  private readonly subscriber: Redis;
  private readonly listeners: Array<(change: AccessChange) => void> = [];

  constructor(
    url: string,
    private readonly prefix: string,
  ) {
    this.redis = connectRedis(url);
    this.subscriber = connectSubscriber(url);
    this.redis.on('error', () => undefined);
    this.subscriber.on('error', () => undefined);
    // Tenants added while this replica could not reach Redis were announced to nobody here:
    // every (re)connection is a reason to reload them.
    this.redis.on('ready', () => {
      for (const listener of this.listeners) listener({ kind: 'tenants' });
    });
    void this.subscriber.subscribe(this.channel).catch(() => undefined);
    this.subscriber.on('message', (_channel: string, message: string) => {
      const parsed = changeSchema.safeParse(safeJson(message));
      if (parsed.success) for (const listener of this.listeners) listener(parsed.data);
    });
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
  async saveKey(record: ApiKeyRecord, audit?: AuditEntry) {
    return this.call(async () => {
      const write = this.redis.multi().set(`${this.prefix}key:${record.hash}`, JSON.stringify(record)).hset(`${this.prefix}key-ids`, record.id, record.hash);
      if (audit) write.lpush(`${this.prefix}audit`, JSON.stringify(audit)).ltrim(`${this.prefix}audit`, 0, AUDIT_KEEP - 1);
      await write.exec();
    });
  }
  async listKeys() {
    return this.call(async () => {
      const hashes = await this.redis.hvals(`${this.prefix}key-ids`);
      if (hashes.length === 0) return [];
      const values = await this.redis.mget(hashes.map((h) => `${this.prefix}key:${h}`));
      return values.map(parseRecord).filter((r): r is ApiKeyRecord => r !== undefined);
    });
  }
  async listOrgs() {
    return this.call(async () => {
      const values = await this.redis.hvals(`${this.prefix}orgs`);
      return values.map((v) => orgSchema.safeParse(safeJson(v))).flatMap((r) => (r.success ? [r.data] : []));
    });
  }
  async updateOrg(orgId: string, change: (stored: OrgConfig | undefined) => OrgConfig, audit?: AuditEntry) {
    return this.call(async () => {
      // A lock per org (SET NX with an expiry, released only by its holder): the change is a read,
      // then a write, of the org's whole JSON.
      const lock = `${this.prefix}org-lock:${orgId}`;
      const token = randomUUID();
      const deadline = Date.now() + ORG_LOCK_WAIT_MS;
      while ((await this.redis.set(lock, token, 'PX', ORG_LOCK_TTL_MS, 'NX')) !== 'OK') {
        if (Date.now() > deadline) throw new Error(`the organisation ${orgId} is being changed by another request`);
        await new Promise((resolve) => setTimeout(resolve, 10 + Math.random() * 20));
      }
      try {
        const raw = await this.redis.hget(`${this.prefix}orgs`, orgId);
        const stored = raw === null ? undefined : orgSchema.safeParse(safeJson(raw));
        const write = this.redis.multi().hset(`${this.prefix}orgs`, orgId, JSON.stringify(change(stored?.success ? stored.data : undefined)));
        if (audit) write.lpush(`${this.prefix}audit`, JSON.stringify(audit)).ltrim(`${this.prefix}audit`, 0, AUDIT_KEEP - 1);
        await write.exec();
      } finally {
        await this.redis.eval(RELEASE_LOCK, 1, lock, token);
      }
    });
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
  onChange(listener: (change: AccessChange) => void) {
    this.listeners.push(listener);
  }
  async close() {
    this.redis.disconnect();
    this.subscriber.disconnect();
  }
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
