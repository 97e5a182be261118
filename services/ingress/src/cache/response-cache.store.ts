import type { Redis } from 'ioredis';
import { RedisFleetFlights, type FleetFlights } from './fleet-flights';

/**
 * Where cached responses are kept, by the keyed hash of their request: opaque sealed strings
 * (what {@link ResponseCache} wrote), each with its own time to live.
 */
export interface ResponseCacheStore {
  get(id: string): Promise<string | undefined>;
  set(id: string, value: string, ttlMs: number): Promise<void>;
  /** Flights of misses shared with the other replicas using this store (none for a store of one process). */
  readonly flights?: FleetFlights;
  /** Lets go of what the store holds open (a subscription). */
  close?(): void;
}

interface Held {
  value: string;
  expiresAt: number;
}

/**
 * The embedded gateway's store, without Redis: one process, at most `maxEntries` entries, the
 * least recently used dropped first (a Map keeps insertion order: a read moves its entry last).
 */
export class MemoryResponseCacheStore implements ResponseCacheStore {
  private readonly entries = new Map<string, Held>();

  constructor(
    private readonly maxEntries: number,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  async get(id: string): Promise<string | undefined> {
    const held = this.entries.get(id);
    if (!held) return undefined;
    this.entries.delete(id);
    if (held.expiresAt <= this.now()) return undefined;
    this.entries.set(id, held);
    return held.value;
  }

  async set(id: string, value: string, ttlMs: number): Promise<void> {
    this.entries.delete(id);
    this.entries.set(id, { value, expiresAt: this.now() + ttlMs });
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next();
      if (oldest.done) break;
      this.entries.delete(oldest.value);
    }
  }
}

/**
 * Shared by every ingress replica on the access store's Redis; Redis expires entries itself. Given
 * a pub/sub connection (then this store's, closed with it), misses are coalesced across replicas too.
 */
export class RedisResponseCacheStore implements ResponseCacheStore {
  readonly flights: RedisFleetFlights | undefined;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    subscriber?: Redis,
  ) {
    this.flights = subscriber ? new RedisFleetFlights(redis, subscriber, prefix) : undefined;
  }

  close(): void {
    this.flights?.close();
  }

  private key(id: string): string {
    return `${this.prefix}cache:${id}`;
  }

  async get(id: string): Promise<string | undefined> {
    return (await this.redis.get(this.key(id))) ?? undefined;
  }

  async set(id: string, value: string, ttlMs: number): Promise<void> {
    await this.redis.set(this.key(id), value, 'PX', ttlMs);
  }
}
