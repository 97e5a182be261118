import type { ResponseStore, StoredResponse } from './response-store';

interface Held {
  record: StoredResponse;
  /** Unix ms. */
  expiresAtMs: number;
  /** Its size as JSON (UTF-8 bytes): what it holds of `maxBytes`. */
  bytes: number;
}

/** How much the store keeps (`responses.memoryMaxResponses`, `responses.memoryMaxBytes`). */
export interface MemoryResponseLimits {
  maxResponses: number;
  maxBytes: number;
}

/**
 * The stored responses of a gateway without Redis: in this process (gone when it stops), at most
 * `maxResponses` of them holding at most `maxBytes` as JSON (a response larger than that alone is
 * refused). A response past its expiry is dropped when it is next looked at; when the store is
 * full, the one kept longest without a new turn of its conversation is dropped first (a turn moves
 * its ancestors to the back of the line, as it moves their expiry: a conversation in use keeps its
 * earlier turns).
 */
export class MemoryResponseStore implements ResponseStore {
  /** In insertion order, a turn's ancestors moved to the end: the first is the first to go. */
  private readonly responses = new Map<string, Held>();
  /** The sum of the held responses' `bytes`. */
  private bytes = 0;
  /** Owner → the ids of the responses it holds here (none expired once they have been looked at). */
  private readonly owners = new Map<string, Set<string>>();

  /** `now` in milliseconds. */
  constructor(
    private readonly limits: MemoryResponseLimits,
    private readonly now: () => number = Date.now,
  ) {}

  async put(record: StoredResponse, expiresAtMs: number): Promise<void> {
    if (this.live(record.id)) throw new Error(`response ${record.id} exists already`);
    // Its JSON, as Redis would hold it: also a copy, so what the caller goes on to change, or changes in what it reads back, does not alter what is kept.
    const json = JSON.stringify(record);
    const bytes = Buffer.byteLength(json, 'utf8');
    if (bytes > this.limits.maxBytes) throw new Error(`response ${record.id} is larger (${bytes} bytes) than the store holds in all (${this.limits.maxBytes})`);
    for (const id of record.ancestors) {
      const ancestor = this.live(id);
      if (!ancestor) continue;
      this.responses.delete(id);
      this.responses.set(id, { ...ancestor, expiresAtMs: Math.max(ancestor.expiresAtMs, expiresAtMs) });
    }
    while (this.responses.size >= this.limits.maxResponses || this.bytes + bytes > this.limits.maxBytes) {
      const oldest = this.responses.keys().next();
      if (oldest.done) break;
      this.drop(oldest.value);
    }
    this.responses.set(record.id, { record: JSON.parse(json) as StoredResponse, expiresAtMs, bytes });
    this.bytes += bytes;
    const owned = this.owners.get(record.owner) ?? new Set<string>();
    owned.add(record.id);
    this.owners.set(record.owner, owned);
  }

  async get(owner: string, id: string): Promise<StoredResponse | undefined> {
    const held = this.live(id);
    return held && held.record.owner === owner ? structuredClone(held.record) : undefined;
  }

  async getMany(owner: string, ids: readonly string[]): Promise<Array<StoredResponse | undefined>> {
    return Promise.all(ids.map((id) => this.get(owner, id)));
  }

  async delete(owner: string, id: string): Promise<boolean> {
    const held = this.live(id);
    if (!held || held.record.owner !== owner) return false;
    this.drop(id);
    return true;
  }

  async purgeOwner(owner: string): Promise<number> {
    let deleted = 0;
    for (const id of [...(this.owners.get(owner) ?? [])]) {
      const held = this.live(id);
      if (!held || held.record.owner !== owner) continue;
      this.drop(id);
      deleted += 1;
    }
    this.owners.delete(owner);
    return deleted;
  }

  async close(): Promise<void> {
    this.responses.clear();
    this.owners.clear();
    this.bytes = 0;
  }

  private drop(id: string): void {
    const held = this.responses.get(id);
    if (!held) return;
    this.responses.delete(id);
    this.bytes -= held.bytes;
    const owned = this.owners.get(held.record.owner);
    owned?.delete(id);
    if (owned?.size === 0) this.owners.delete(held.record.owner);
  }

  /** The response when it is not expired, whoever owns it (an expired one is dropped). */
  private live(id: string): Held | undefined {
    const held = this.responses.get(id);
    if (!held) return undefined;
    if (held.expiresAtMs <= this.now()) {
      this.drop(id);
      return undefined;
    }
    return held;
  }
}
