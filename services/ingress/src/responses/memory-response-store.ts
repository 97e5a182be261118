import { MemoryRecords } from '../memory-records';
import type { ResponseStore, StoredResponse } from './response-store';

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
  private readonly records: MemoryRecords<StoredResponse>;

  /** `now` in milliseconds. */
  constructor(limits: MemoryResponseLimits, now: () => number = Date.now) {
    this.records = new MemoryRecords('response', { maxRecords: limits.maxResponses, maxBytes: limits.maxBytes }, now);
  }

  async put(record: StoredResponse, expiresAtMs: number): Promise<void> {
    for (const id of record.ancestors) this.records.touch(id, expiresAtMs);
    this.records.put(record, expiresAtMs);
  }

  async get(owner: string, id: string): Promise<StoredResponse | undefined> {
    return this.records.get(owner, id);
  }

  async getMany(owner: string, ids: readonly string[]): Promise<Array<StoredResponse | undefined>> {
    return ids.map((id) => this.records.get(owner, id));
  }

  async delete(owner: string, id: string): Promise<boolean> {
    return this.records.delete(owner, id);
  }

  async purgeOwner(owner: string): Promise<number> {
    return this.records.purge(owner);
  }

  async close(): Promise<void> {
    this.records.clear();
  }
}
