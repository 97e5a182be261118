import type { ChatCompletionStore, IndexPage, StoredChatCompletion } from './chat-completion-store';

interface Held {
  record: StoredChatCompletion;
  /** Unix ms. */
  expiresAtMs: number;
  /** Its size as JSON (UTF-8 bytes): what it holds of `maxBytes`. */
  bytes: number;
}

/** How much the store keeps (`chatCompletions.memoryMaxCompletions`, `chatCompletions.memoryMaxBytes`). */
export interface MemoryChatCompletionLimits {
  maxCompletions: number;
  maxBytes: number;
}

/** Listing order: by creation, then id (as Redis orders a sorted set's equal scores). */
const before = (a: StoredChatCompletion, b: { createdAtMs: number; id: string }): boolean => a.createdAtMs < b.createdAtMs || (a.createdAtMs === b.createdAtMs && a.id < b.id);

/**
 * The stored chat completions of a gateway without Redis: in this process (gone when it stops), at
 * most `maxCompletions` of them holding at most `maxBytes` as JSON (one larger than that alone is
 * refused). One past its expiry is dropped when it is next looked at; when the store is full, the
 * oldest kept is dropped first.
 */
export class MemoryChatCompletionStore implements ChatCompletionStore {
  /** In insertion order: the first is the first to go. */
  private readonly held = new Map<string, Held>();
  private bytes = 0;
  /** Owner → its completions, in listing order. */
  private readonly owners = new Map<string, StoredChatCompletion[]>();

  /** `now` in milliseconds. */
  constructor(
    private readonly limits: MemoryChatCompletionLimits,
    private readonly now: () => number = Date.now,
  ) {}

  async put(record: StoredChatCompletion, expiresAtMs: number): Promise<void> {
    if (this.live(record.id)) throw new Error(`chat completion ${record.id} exists already`);
    // Its JSON, as Redis would hold it: also a copy, so what the caller changes afterwards is not kept.
    const json = JSON.stringify(record);
    const bytes = Buffer.byteLength(json, 'utf8');
    if (bytes > this.limits.maxBytes) throw new Error(`chat completion ${record.id} is larger (${bytes} bytes) than the store holds in all (${this.limits.maxBytes})`);
    while (this.held.size >= this.limits.maxCompletions || this.bytes + bytes > this.limits.maxBytes) {
      const oldest = this.held.keys().next();
      if (oldest.done) break;
      this.drop(oldest.value);
    }
    const kept = JSON.parse(json) as StoredChatCompletion;
    this.held.set(record.id, { record: kept, expiresAtMs, bytes });
    this.bytes += bytes;
    const owned = this.owners.get(record.owner) ?? [];
    let at = owned.length;
    while (at > 0 && before(kept, owned[at - 1] as StoredChatCompletion)) at -= 1;
    owned.splice(at, 0, kept);
    this.owners.set(record.owner, owned);
  }

  async get(owner: string, id: string): Promise<StoredChatCompletion | undefined> {
    const held = this.live(id);
    return held && held.record.owner === owner ? structuredClone(held.record) : undefined;
  }

  async getMany(owner: string, ids: readonly string[]): Promise<Array<StoredChatCompletion | undefined>> {
    return Promise.all(ids.map((id) => this.get(owner, id)));
  }

  async ids(owner: string, page: IndexPage): Promise<string[] | undefined> {
    const owned = this.owners.get(owner) ?? [];
    const ordered = page.order === 'asc' ? owned : [...owned].reverse();
    let start = 0;
    if (page.after !== undefined) {
      const at = ordered.findIndex((record) => record.id === page.after);
      if (at < 0) return undefined;
      start = at + 1;
    }
    return ordered.slice(start, start + page.count).map((record) => record.id);
  }

  async setMetadata(owner: string, id: string, metadata: Record<string, string>): Promise<StoredChatCompletion | undefined> {
    const held = this.live(id);
    if (!held || held.record.owner !== owner) return undefined;
    held.record.metadata = { ...metadata };
    const bytes = Buffer.byteLength(JSON.stringify(held.record), 'utf8');
    this.bytes += bytes - held.bytes;
    held.bytes = bytes;
    return structuredClone(held.record);
  }

  async delete(owner: string, id: string): Promise<boolean> {
    const held = this.live(id);
    if (!held || held.record.owner !== owner) return false;
    this.drop(id);
    return true;
  }

  async purgeOwner(owner: string): Promise<number> {
    let deleted = 0;
    for (const record of [...(this.owners.get(owner) ?? [])]) {
      if (this.live(record.id)) deleted += 1;
      this.drop(record.id);
    }
    this.owners.delete(owner);
    return deleted;
  }

  async close(): Promise<void> {
    this.held.clear();
    this.owners.clear();
    this.bytes = 0;
  }

  private drop(id: string): void {
    const held = this.held.get(id);
    if (!held) return;
    this.held.delete(id);
    this.bytes -= held.bytes;
    const owned = this.owners.get(held.record.owner);
    if (!owned) return;
    const at = owned.indexOf(held.record);
    if (at >= 0) owned.splice(at, 1);
    if (owned.length === 0) this.owners.delete(held.record.owner);
  }

  /** The completion when it is not expired, whoever owns it (an expired one is dropped). */
  private live(id: string): Held | undefined {
    const held = this.held.get(id);
    if (!held) return undefined;
    if (held.expiresAtMs <= this.now()) {
      this.drop(id);
      return undefined;
    }
    return held;
  }
}
