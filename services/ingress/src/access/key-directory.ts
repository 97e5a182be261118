import type { KeyObject } from 'node:crypto';
import type { ConfigKey } from '@openrouter/config';
import type { AccessRepository } from './access.repository';
import { hashApiKey, hashingKey } from './api-key';
import { acceptsHash, graceEndOf, isActive, type ApiKeyRecord } from './key-record';

interface CacheEntry {
  record: ApiKeyRecord | undefined;
  until: number;
}

const NEGATIVE_CACHE_MS = 1_000;
const CACHE_LIMIT = 50_000;

/** What a key directory hashes with: the current `access.keyHashSecret` and the earlier ones still accepted. */
export interface HashSecrets {
  current: string;
  previous?: readonly string[] | undefined;
}

/**
 * Resolves a presented key by its keyed hash: configured keys first, then issued keys from the
 * shared store, cached in-process. A revocation published by any replica drops the entry here
 * at once; the TTL only bounds staleness if a notification were missed.
 *
 * While the hash secret is rotated, a key not found under the current secret is looked up under
 * each previous one in turn (only then: a key found under the current secret costs one HMAC). An
 * issued key found so is re-indexed under the current secret (the store keeps the earlier hash as
 * an alias, for replicas still hashing with it); a configured one cannot be, and is matched under
 * any accepted secret.
 */
export class KeyDirectory {
  private readonly configured = new Map<string, ApiKeyRecord>();
  private readonly cache = new Map<string, CacheEntry>();
  /** Changes seen per hash while a lookup of it is in flight (entries live only that long). */
  private readonly changesInFlight = new Map<string, { changes: number; lookups: number }>();
  private readonly hashKey: KeyObject;
  private readonly previousKeys: KeyObject[];

  constructor(
    secrets: string | HashSecrets,
    configKeys: readonly ConfigKey[],
    extra: readonly ApiKeyRecord[],
    private readonly repository: AccessRepository,
    private readonly cacheMs: number,
    private readonly now: () => Date = () => new Date(),
    /** Told when a key found under a previous secret could not be re-indexed (it is accepted all the same; its next use tries again). */
    private readonly onReindexFailure: (error: unknown) => void = () => undefined,
  ) {
    const { current, previous = [] } = typeof secrets === 'string' ? { current: secrets } : secrets;
    this.hashKey = hashingKey(current);
    this.previousKeys = previous.map(hashingKey);
    for (const key of configKeys) this.configured.set(key.hash, fromConfig(key));
    for (const record of extra) this.configured.set(record.hash, record);
    repository.onChange((event) => {
      if (event.kind === 'key') this.forget(event.hash);
      if (event.kind === 'resync') this.forgetAll();
    });
  }

  hash(presented: string): string {
    return hashApiKey(this.hashKey, presented);
  }

  /**
   * A new key's hashes under the previous secrets, stored as aliases beside its record (none when
   * no secret is being rotated): a replica not yet restarted with the current secret accepts a key
   * issued or rotated on one that was.
   */
  formerHashes(presented: string): { formerHashes?: string[] } {
    return this.previousKeys.length === 0 ? {} : { formerHashes: this.previousKeys.map((key) => hashApiKey(key, presented)) };
  }

  async authenticate(presented: string): Promise<ApiKeyRecord | undefined> {
    const hash = this.hash(presented);
    const found = await this.lookUp(hash);
    if (found !== undefined || this.previousKeys.length === 0) return found && this.active(found);
    for (const previous of this.previousKeys) {
      const earlier = hashApiKey(previous, presented);
      const record = await this.lookUp(earlier);
      if (!record) continue;
      if (record.source === 'issued' && this.active(record)) await this.reindex(earlier, hash);
      return this.active(record);
    }
    return undefined;
  }

  /**
   * The active key of this id (configured or issued), or undefined: for work a key started that
   * runs on without the key being presented again (a batch's lines). Not cached: read when needed.
   */
  async byId(id: string): Promise<ApiKeyRecord | undefined> {
    for (const record of this.configured.values()) if (record.id === id) return this.active(record);
    const issued = await this.repository.keyById(id);
    return issued && this.active(issued);
  }

  /**
   * When `presented`, a secret `record` accepted, stops being accepted because a rotation replaced
   * it (its grace ends); undefined for the key's current secret. For a holder of it that must end
   * then (an open WebSocket), not at its next use.
   */
  graceEnd(presented: string, record: ApiKeyRecord): Date | undefined {
    return graceEndOf(record, [this.hash(presented), ...this.previousKeys.map((key) => hashApiKey(key, presented))]);
  }

  /**
   * The record `hash` names, when it accepts it. The lookup is by keyed hash; the final comparison
   * is constant-time all the same. A rotated key's earlier secret finds the record too, and is
   * accepted only while its grace lasts.
   */
  private async lookUp(hash: string): Promise<ApiKeyRecord | undefined> {
    const record = this.configured.get(hash) ?? (await this.issued(hash));
    return record && acceptsHash(record, hash, this.now()) ? record : undefined;
  }

  private active(record: ApiKeyRecord): ApiKeyRecord | undefined {
    return isActive(record, this.now()) ? record : undefined;
  }

  /** Moves an issued key found under a previous secret's hash to the current one's; its next use here then finds it at once. */
  private async reindex(from: string, to: string): Promise<void> {
    try {
      await this.repository.reindexKey(from, to);
    } catch (error) {
      this.onReindexFailure(error);
    }
    // Both cached answers are stale now: the current hash's miss, and the earlier one's copy.
    this.forget(to);
    this.forget(from);
  }

  /** Forgets a cached key (called on revoke before the notification round-trips). */
  forget(hash: string): void {
    this.cache.delete(hash);
    const inFlight = this.changesInFlight.get(hash);
    if (inFlight) inFlight.changes++;
  }

  /**
   * Forgets every cached key, and distrusts every lookup in flight: revocations may have been
   * published while this replica could not hear them (its pub/sub connection dropped).
   */
  forgetAll(): void {
    this.cache.clear();
    for (const inFlight of this.changesInFlight.values()) inFlight.changes++;
  }

  private async issued(hash: string): Promise<ApiKeyRecord | undefined> {
    const at = Date.now();
    const cached = this.cache.get(hash);
    if (cached && cached.until > at) return cached.record;
    // A change (a revocation) that arrives while the lookup is in flight may have been read
    // before it: such a result is neither cached nor trusted, the store is asked again.
    for (let attempt = 0; ; attempt++) {
      const inFlight = this.changesInFlight.get(hash) ?? { changes: 0, lookups: 0 };
      this.changesInFlight.set(hash, inFlight);
      const before = inFlight.changes;
      inFlight.lookups++;
      let record: ApiKeyRecord | undefined;
      try {
        record = await this.repository.findKey(hash);
      } finally {
        if (--inFlight.lookups === 0) this.changesInFlight.delete(hash);
      }
      if (inFlight.changes !== before) {
        if (attempt === 0) continue;
        return record;
      }
      if (this.cache.size >= CACHE_LIMIT) this.cache.delete(this.cache.keys().next().value as string);
      this.cache.set(hash, { record, until: at + (record ? this.cacheMs : Math.min(this.cacheMs, NEGATIVE_CACHE_MS)) });
      return record;
    }
  }
}

function fromConfig(key: ConfigKey): ApiKeyRecord {
  return {
    id: key.id,
    hash: key.hash,
    prefix: key.prefix,
    name: key.name,
    orgId: key.org,
    teamId: key.team ?? '',
    projectId: key.project ?? '',
    appId: key.app ?? '',
    allowedModels: key.allowedModels,
    ...(key.policy && { policy: key.policy }),
    limits: key.limits,
    metadata: key.metadata,
    tags: key.tags,
    createdAt: new Date(0).toISOString(),
    ...(key.expiresAt ? { expiresAt: key.expiresAt } : {}),
    source: 'config',
  };
}
