import type { ResponseStore, StoredResponse } from './response-store';

interface Held {
  record: StoredResponse;
  /** Unix ms. */
  expiresAtMs: number;
}

/**
 * The stored responses of a gateway without Redis: in this process (gone when it stops), at most
 * `maxResponses` of them (`responses.memoryMaxResponses`). A response past its expiry is dropped
 * when it is next looked at; when the store is full, the one kept longest without a new turn of its
 * conversation is dropped first (a turn moves its ancestors to the back of the line, as it moves
 * their expiry: a conversation in use keeps its earlier turns).
 */
export class MemoryResponseStore implements ResponseStore {
  /** In insertion order, a turn's ancestors moved to the end: the first is the first to go. */
  private readonly responses = new Map<string, Held>();

  /** `now` in milliseconds. */
  constructor(
    private readonly maxResponses: number,
    private readonly now: () => number = Date.now,
  ) {}

  async put(record: StoredResponse, expiresAtMs: number): Promise<void> {
    if (this.live(record.id)) throw new Error(`response ${record.id} exists already`);
    for (const id of record.ancestors) {
      const ancestor = this.live(id);
      if (!ancestor) continue;
      this.responses.delete(id);
      this.responses.set(id, { record: ancestor.record, expiresAtMs: Math.max(ancestor.expiresAtMs, expiresAtMs) });
    }
    while (this.responses.size >= this.maxResponses) {
      const oldest = this.responses.keys().next();
      if (oldest.done) break;
      this.responses.delete(oldest.value);
    }
    // A copy: what the caller goes on to change, or changes in what it reads back, must not alter what is kept.
    this.responses.set(record.id, { record: structuredClone(record), expiresAtMs });
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
    return this.responses.delete(id);
  }

  async close(): Promise<void> {
    this.responses.clear();
  }

  /** The response when it is not expired, whoever owns it (an expired one is dropped). */
  private live(id: string): Held | undefined {
    const held = this.responses.get(id);
    if (!held) return undefined;
    if (held.expiresAtMs <= this.now()) {
      this.responses.delete(id);
      return undefined;
    }
    return held;
  }
}
