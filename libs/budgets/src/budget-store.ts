import { EventEmitter } from 'node:events';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { budgetSchema } from '@openrouter/config';
import { GatewayError } from '@openrouter/errors';
import { createRedisClient, keepSubscribed, whenReady, type RedisConnectionConfig } from '@openrouter/service-runtime';

/**
 * A budget created through the admin API, as replicas store it: a configured budget's fields, when
 * it was created and last changed, and the random id of its creation, which names its ledger
 * account (a budget deleted and created again under the same id starts from nothing; absent on
 * budgets stored before creations had ids, which keep counting under their plain id). Unknown
 * fields (a newer replica's) are neither refused nor lost: a change made by this replica writes
 * them back as they were, so a rolling upgrade does not drop what the newer release added.
 */
export const storedBudgetSchema = z.looseObject({ ...budgetSchema.shape, createdAt: z.string(), updatedAt: z.string(), creationId: z.string().min(1).optional() });
export type StoredBudget = z.infer<typeof storedBudgetSchema>;

/**
 * What a replica hears: budgets were changed somewhere (`changed`), or `resync` — changes may have
 * been missed (its pub/sub connection came back after a drop), so what it holds cannot be trusted.
 */
export type BudgetStoreEvent = 'changed' | 'resync';

/** A change of one stored budget: what is stored (undefined: none) → what to store (undefined: delete it). */
export type BudgetChange = (stored: StoredBudget | undefined) => StoredBudget | undefined;

/** An admin change's audit entry, written with the change it records. */
export type BudgetAudit = Record<string, unknown>;

/**
 * The audit entry of a change: given, or made from the budget as stored when the change applied
 * (so what it says the budget was is what it was, not what this replica last loaded).
 */
export type BudgetAuditOf = BudgetAudit | ((stored: StoredBudget | undefined) => BudgetAudit);

/** Budgets created at run time, shared by every replica (Redis) or kept by this process (memory). */
export interface BudgetStore {
  /** Resolves once the store can be used, or false after `timeoutMs`. */
  ready(timeoutMs: number): Promise<boolean>;
  list(): Promise<StoredBudget[]>;
  /**
   * Changes one stored budget as one atomic step, on any replica: concurrent changes of a budget
   * apply one after the other, each on the other's result. An error thrown by `change` is thrown
   * as it is and nothing is written. With `audit`, the change and its entry are one write: no
   * budget is changed unaudited. Every write also advances the store's `version`. Resolves to what
   * is stored afterwards.
   */
  update(id: string, change: BudgetChange, audit?: BudgetAuditOf): Promise<StoredBudget | undefined>;
  /**
   * A counter advanced by every write, in the same atomic step: a replica that compares it with the
   * one it loaded under knows it missed a change (an announcement lost, a subscriber half-open).
   */
  version(): Promise<string>;
  /** Tells every replica that budgets changed (this one included). */
  publish(): Promise<void>;
  onChange(listener: (event: BudgetStoreEvent) => void): void;
  close(): Promise<void>;
}

/** The embedded mode's store: one process; what is created here is gone when it stops. */
export class MemoryBudgetStore implements BudgetStore {
  private readonly budgets = new Map<string, StoredBudget>();
  private readonly events = new EventEmitter();
  private written = 0;

  /** `appendAudit`: the process's audit log (the access layer's, in memory too). */
  constructor(private readonly appendAudit?: (entry: BudgetAudit) => void) {}

  async ready(): Promise<boolean> {
    return true;
  }

  async list(): Promise<StoredBudget[]> {
    return [...this.budgets.values()];
  }

  async update(id: string, change: BudgetChange, audit?: BudgetAuditOf): Promise<StoredBudget | undefined> {
    if (audit && !this.appendAudit) throw new GatewayError('internal', 'This budget store keeps no audit log.');
    const stored = this.budgets.get(id);
    const next = change(stored);
    const entry = audit && auditOf(audit, stored);
    if (next) this.budgets.set(id, next);
    else this.budgets.delete(id);
    this.written++;
    if (entry) this.appendAudit?.(entry);
    return next;
  }

  async version(): Promise<string> {
    return String(this.written);
  }

  async publish(): Promise<void> {
    this.events.emit('change', 'changed');
  }

  onChange(listener: (event: BudgetStoreEvent) => void): void {
    this.events.on('change', listener);
  }

  async close(): Promise<void> {
    this.events.removeAllListeners();
  }
}

/**
 * The audit log admin changes go to, as its owner (the access layer) describes it: the list, the
 * counter of its ids, how many entries it keeps, and Lua defining
 * `append_audit(log, sequence, entry, keep)`, which appends `entry` (a JSON object) with its id.
 * That function runs inside this store's own script, so a change and its entry are one write.
 */
export interface AuditLogTarget {
  key: string;
  sequence: string;
  keep: number;
  appendLua: string;
}

export interface RedisBudgetStoreOptions {
  /** The audit log admin changes go to (the access layer's); needed to write. */
  auditLog?: AuditLogTarget;
}

/**
 * KEYS: the budgets hash, the audit log, the version counter, the audit log's id counter. ARGV:
 * budget id, the record as read ('' when none), the record to write ('' deletes it), the audit
 * entry ('' none), how many entries the audit log keeps. Writes only if the record is still the one
 * read (a compare-and-set: a concurrent change makes it answer 0, and the caller reads again), and
 * advances the version with it. Follows the audit log's `append_audit`.
 */
const REPLACE_BUDGET = `if (redis.call('HGET', KEYS[1], ARGV[1]) or '') ~= ARGV[2] then return 0 end
if ARGV[3] == '' then redis.call('HDEL', KEYS[1], ARGV[1]) else redis.call('HSET', KEYS[1], ARGV[1], ARGV[3]) end
redis.call('INCR', KEYS[3])
if ARGV[4] ~= '' then append_audit(KEYS[2], KEYS[4], ARGV[4], tonumber(ARGV[5])) end
return 1`;
/** Stands in for `append_audit` in a store that keeps no audit log (it is never called there: a change with an entry is refused first). */
const NO_AUDIT_LOG = `local function append_audit() error('This budget store keeps no audit log.') end
`;
/** Compare-and-set rounds a change tries; each lost round means another change of the budget won. */
const UPDATE_ATTEMPTS = 5;

/**
 * Shared by every replica: the budgets in one hash (`<prefix>budgets`, id → JSON), changes announced
 * on `<prefix>budget-changes`, each write counted in `<prefix>budgets-version`. Every (re)connection
 * is a reason to reload, as changes made while a replica could not hear them reached nobody there.
 */
export class RedisBudgetStore implements BudgetStore {
  private readonly listeners: Array<(event: BudgetStoreEvent) => void> = [];

  constructor(
    private readonly redis: Redis,
    private readonly subscriber: Redis,
    private readonly prefix: string,
    private readonly options: RedisBudgetStoreOptions = {},
  ) {
    this.redis.on('error', () => undefined);
    this.subscriber.on('error', () => undefined);
    this.redis.on('ready', () => this.emit('changed'));
    // From the subscription's confirmation on nothing is missed: what came before, a reload reads.
    keepSubscribed(this.subscriber, this.channel, { subscribed: () => this.emit('resync'), message: () => this.emit('changed') });
  }

  private get channel(): string {
    return `${this.prefix}budget-changes`;
  }

  private get hash(): string {
    return `${this.prefix}budgets`;
  }

  private get versionKey(): string {
    return `${this.prefix}budgets-version`;
  }

  private emit(event: BudgetStoreEvent): void {
    for (const listener of this.listeners) listener(event);
  }


  async ready(timeoutMs: number): Promise<boolean> {
    const [main, sub] = await Promise.all([whenReady(this.redis, timeoutMs), whenReady(this.subscriber, timeoutMs)]);
    return main && sub;
  }

  /** A Redis failure is the store being unavailable (503), never an internal error. */
  private async call<T>(operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (error) {
      if (error instanceof GatewayError) throw error;
      throw budgetStoreUnavailable(error);
    }
  }

  /**
   * Every stored budget. A record that cannot be read fails the whole list, as a store that cannot
   * be reached does: left out, a hard budget would silently stop being enforced. A catalog keeps
   * enforcing the budgets it last loaded meanwhile (one that never loaded: `budgets.failMode`
   * decides) and logs the failure, which names the records, at each attempt.
   */
  async list(): Promise<StoredBudget[]> {
    return this.call(async () => {
      const records = await this.redis.hgetall(this.hash);
      const budgets: StoredBudget[] = [];
      const unreadable: string[] = [];
      for (const [id, raw] of Object.entries(records)) {
        const parsed = storedBudgetSchema.safeParse(safeJson(raw));
        if (parsed.success) budgets.push(parsed.data);
        else unreadable.push(id);
      }
      // Their ids only: the records themselves stay out of logs and answers.
      if (unreadable.length > 0) throw new GatewayError('internal', `The stored budgets ${unreadable.map((id) => `"${id}"`).join(', ')} cannot be read; no budget was loaded. Repair or delete them in Redis.`);
      return budgets;
    });
  }

  async update(id: string, change: BudgetChange, audit?: BudgetAuditOf): Promise<StoredBudget | undefined> {
    const log = this.options.auditLog;
    if (audit && !log) throw new GatewayError('internal', 'This budget store keeps no audit log.');
    return this.call(async () => {
      for (let attempt = 0; attempt < UPDATE_ATTEMPTS; attempt++) {
        const raw = await this.redis.hget(this.hash, id);
        const parsed = raw === null ? undefined : storedBudgetSchema.safeParse(safeJson(raw));
        // A record that cannot be read is never overwritten as if there were none.
        if (parsed && !parsed.success) throw new GatewayError('internal', `The stored budget "${id}" cannot be read; it was left as it is.`);
        const next = change(parsed?.data);
        const entry = audit && auditOf(audit, parsed?.data);
        const script = `${log?.appendLua ?? NO_AUDIT_LOG}\n${REPLACE_BUDGET}`;
        const keys = [this.hash, log?.key ?? `${this.prefix}audit`, this.versionKey, log?.sequence ?? `${this.prefix}audit:seq`];
        const written = await this.redis.eval(script, keys.length, ...keys, id, raw ?? '', next ? JSON.stringify(next) : '', entry ? auditJson(entry) : '', String(log?.keep ?? 1));
        if (written === 1) return next;
      }
      throw new GatewayError('overloaded', `The budget "${id}" is being changed by other requests. Please retry.`, { code: 'budget_busy', retryable: true });
    });
  }

  async version(): Promise<string> {
    return this.call(async () => (await this.redis.get(this.versionKey)) ?? '0');
  }

  async publish(): Promise<void> {
    return this.call(async () => {
      await this.redis.publish(this.channel, 'changed');
    });
  }

  onChange(listener: (event: BudgetStoreEvent) => void): void {
    this.listeners.push(listener);
  }

  async close(): Promise<void> {
    this.redis.disconnect();
    this.subscriber.disconnect();
  }
}

/** The budget store's answer when Redis cannot be reached: retryable, and naming the store. */
export function budgetStoreUnavailable(cause: unknown): GatewayError {
  return new GatewayError('unavailable', 'The budget store (Redis) cannot be reached right now. Please retry.', { code: 'budget_store_unavailable', cause });
}

/**
 * The two connections of a Redis budget store: one that fails fast (an outage is an answer at
 * once, not a hung admin call), and one for pub/sub that queues and retries for ever, subscribed
 * again by the store itself on each connection so it knows when changes may have been missed.
 */
export function connectBudgetStore(connection: RedisConnectionConfig, prefix: string, options: RedisBudgetStoreOptions = {}): RedisBudgetStore {
  const retryStrategy = (attempt: number): number => Math.min(attempt * 200, 2_000);
  const redis = createRedisClient(connection, { lazyConnect: false, enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: 2_000, commandTimeout: 2_000, retryStrategy });
  const subscriber = createRedisClient(connection, { lazyConnect: false, enableOfflineQueue: true, maxRetriesPerRequest: null, autoResubscribe: false, retryStrategy });
  return new RedisBudgetStore(redis, subscriber, prefix, options);
}

function auditOf(audit: BudgetAuditOf, stored: StoredBudget | undefined): BudgetAudit {
  return typeof audit === 'function' ? audit(stored) : audit;
}

/** An entry as `append_audit` takes it: a JSON object without an `id` (the log gives each entry its own). */
function auditJson(entry: BudgetAudit): string {
  const { id: _given, ...rest } = entry;
  return JSON.stringify(rest);
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
