import { MemoryRecords } from '../memory-records';
import type { ChatCompletionStore, IndexEntry, IndexPage, StoredChatCompletion } from './chat-completion-store';

/** How much the store keeps (`chatCompletions.memoryMaxCompletions`, `chatCompletions.memoryMaxBytes`). */
export interface MemoryChatCompletionLimits {
  maxCompletions: number;
  maxBytes: number;
}

/** Listing order: by creation, then id (as Redis orders a sorted set's equal scores). */
const before = (a: IndexEntry, b: IndexEntry): boolean => a.createdAtMs < b.createdAtMs || (a.createdAtMs === b.createdAtMs && a.id < b.id);

/**
 * The stored chat completions of a gateway without Redis: in this process (gone when it stops), at
 * most `maxCompletions` of them holding at most `maxBytes` as JSON (one larger than that alone is
 * refused). One past its expiry is dropped when it is next looked at; when the store is full, the
 * oldest kept is dropped first.
 */
export class MemoryChatCompletionStore implements ChatCompletionStore {
  private readonly records: MemoryRecords<StoredChatCompletion>;

  /** `now` in milliseconds. */
  constructor(limits: MemoryChatCompletionLimits, now: () => number = Date.now) {
    this.records = new MemoryRecords('chat completion', { maxRecords: limits.maxCompletions, maxBytes: limits.maxBytes }, now);
  }

  async put(record: StoredChatCompletion, expiresAtMs: number): Promise<void> {
    this.records.put(record, expiresAtMs);
  }

  async get(owner: string, id: string): Promise<StoredChatCompletion | undefined> {
    return this.records.get(owner, id);
  }

  async getMany(owner: string, ids: readonly string[]): Promise<Array<StoredChatCompletion | undefined>> {
    return ids.map((id) => this.records.get(owner, id));
  }

  async ids(owner: string, page: IndexPage): Promise<IndexEntry[] | undefined> {
    const owned = this.records.owned(owner).sort((a, b) => (before(a, b) ? -1 : before(b, a) ? 1 : 0));
    const ordered = page.order === 'asc' ? owned : owned.reverse();
    const { after } = page;
    let start = 0;
    if (typeof after === 'string') {
      const at = ordered.findIndex((record) => record.id === after);
      if (at < 0) return undefined;
      start = at + 1;
    } else if (after !== undefined) {
      // An entry read before: the first one past it, whether or not it is still there.
      const past = page.order === 'asc' ? (record: StoredChatCompletion) => before(after, record) : (record: StoredChatCompletion) => before(record, after);
      start = ordered.findIndex(past);
      if (start < 0) return [];
    }
    return ordered.slice(start, start + page.count).map(({ id, createdAtMs }) => ({ id, createdAtMs }));
  }

  async setMetadata(owner: string, id: string, metadata: Record<string, string>): Promise<StoredChatCompletion | undefined> {
    return this.records.update(owner, id, (record) => {
      record.metadata = { ...metadata };
    });
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
