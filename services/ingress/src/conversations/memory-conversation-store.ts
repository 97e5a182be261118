import type { ResponseJson } from '../responses/response-store';
import { duplicateId, itemBytes, type AppendOutcome, type ConversationLimits, type ConversationRecord, type ConversationState, type ConversationStore, type ItemPage } from './conversation-store';

interface HeldItem {
  id: string;
  item: ResponseJson;
  /** `itemBytes` of it: what it holds of its conversation's and the store's `maxBytes`. */
  bytes: number;
}

interface Held {
  record: ConversationRecord;
  /** Oldest first. */
  items: HeldItem[];
  /** The sum of its items' `bytes`. */
  bytes: number;
  /** Unix ms. */
  expiresAtMs: number;
}

/** How much the store keeps in all: conversations, and bytes of their items (`itemBytes`). */
export interface MemoryConversationLimits {
  maxConversations: number;
  maxBytes: number;
}

/**
 * The conversations of a gateway without Redis: in this process (gone when it stops), at most
 * `maxConversations` of them whose items hold at most `maxBytes` in all. When a write leaves the
 * store past either bound, the conversations written least recently are dropped first (a read does
 * not count as a use), never the one just written: a conversation larger than `maxBytes` alone is
 * still created or added to, as the interface says, and is then the only one kept. A conversation
 * past its expiry is dropped when it is next looked at. What goes in and comes out is a copy, so
 * no caller shares an object with the store.
 *
 * An append with an item id the conversation holds (or with one id twice) adds nothing; `create`
 * with one id twice throws.
 */
export class MemoryConversationStore implements ConversationStore {
  /** In order of their last write: the first is the first to go. */
  private readonly conversations = new Map<string, Held>();
  /** The sum of the held conversations' `bytes`. */
  private bytes = 0;
  /** Owner → the ids of its conversations held here. */
  private readonly owners = new Map<string, Set<string>>();

  /** `now` in milliseconds. */
  constructor(
    private readonly limits: MemoryConversationLimits,
    private readonly now: () => number = Date.now,
  ) {}

  async create(record: ConversationRecord, items: ResponseJson[], expiresAtMs: number): Promise<void> {
    if (this.live(record.id)) throw new Error(`conversation ${record.id} exists already`);
    const copies = heldItems(items);
    const twice = duplicateId(copies, () => false);
    if (twice !== undefined) throw new Error(`conversation ${record.id}: two items have the id ${twice}`);
    const held: Held = { record: structuredClone(record), items: [], bytes: 0, expiresAtMs };
    this.conversations.set(record.id, held);
    const owned = this.owners.get(record.owner) ?? new Set<string>();
    owned.add(record.id);
    this.owners.set(record.owner, owned);
    this.add(held, copies);
    this.makeRoom(record.id);
  }

  async get(owner: string, id: string): Promise<ConversationState | undefined> {
    const held = this.owned(owner, id);
    return held && { record: structuredClone(held.record), items: held.items.length, bytes: held.bytes };
  }

  async setMetadata(owner: string, id: string, metadata: Record<string, string>, expiresAtMs: number): Promise<ConversationRecord | undefined> {
    const held = this.owned(owner, id);
    if (!held) return undefined;
    held.record.metadata = structuredClone(metadata);
    this.written(id, held, expiresAtMs);
    return structuredClone(held.record);
  }

  async delete(owner: string, id: string): Promise<boolean> {
    if (!this.owned(owner, id)) return false;
    this.drop(id);
    return true;
  }

  async append(owner: string, id: string, items: ResponseJson[], limits: ConversationLimits, expiresAtMs: number): Promise<AppendOutcome> {
    const held = this.owned(owner, id);
    if (!held) return 'not_found';
    const copies = heldItems(items);
    const ids = new Set(held.items.map((h) => h.id));
    const duplicate = duplicateId(copies, (itemId) => ids.has(itemId));
    if (duplicate !== undefined) return { duplicate };
    const added = copies.reduce((sum, h) => sum + h.bytes, 0);
    if (held.items.length + copies.length > limits.maxItems || held.bytes + added > limits.maxBytes) return 'too_long';
    this.add(held, copies);
    this.written(id, held, expiresAtMs);
    this.makeRoom(id);
    return 'added';
  }

  async items(owner: string, id: string): Promise<ResponseJson[] | undefined> {
    const held = this.owned(owner, id);
    return held && held.items.map((h) => structuredClone(h.item));
  }

  async page(owner: string, id: string, query: { limit: number; order: 'asc' | 'desc'; after?: string | undefined }): Promise<ItemPage | 'after_not_found' | undefined> {
    const held = this.owned(owner, id);
    if (!held) return undefined;
    const ordered = query.order === 'asc' ? held.items : [...held.items].reverse();
    let start = 0;
    if (query.after !== undefined) {
      const at = ordered.findIndex((h) => h.id === query.after);
      if (at < 0) return 'after_not_found';
      start = at + 1;
    }
    const limit = Math.max(0, query.limit);
    return { data: ordered.slice(start, start + limit).map((h) => structuredClone(h.item)), hasMore: start + limit < ordered.length };
  }

  async item(owner: string, id: string, itemId: string): Promise<ResponseJson | undefined> {
    const found = this.owned(owner, id)?.items.find((h) => h.id === itemId);
    return found && structuredClone(found.item);
  }

  async deleteItem(owner: string, id: string, itemId: string, expiresAtMs: number): Promise<boolean> {
    const held = this.owned(owner, id);
    const at = held ? held.items.findIndex((h) => h.id === itemId) : -1;
    if (!held || at < 0) return false;
    const [removed] = held.items.splice(at, 1);
    const bytes = removed?.bytes ?? 0;
    held.bytes -= bytes;
    this.bytes -= bytes;
    this.written(id, held, expiresAtMs);
    return true;
  }

  async purgeOwner(owner: string): Promise<number> {
    let deleted = 0;
    for (const id of [...(this.owners.get(owner) ?? [])]) {
      if (!this.owned(owner, id)) continue;
      this.drop(id);
      deleted += 1;
    }
    this.owners.delete(owner);
    return deleted;
  }

  async close(): Promise<void> {
    this.conversations.clear();
    this.owners.clear();
    this.bytes = 0;
  }

  /** Adds `items` at the end of `held`, counting their bytes. */
  private add(held: Held, items: HeldItem[]): void {
    for (const item of items) {
      held.items.push(item);
      held.bytes += item.bytes;
      this.bytes += item.bytes;
    }
  }

  /** A write to `held`: it moves to the back of the line, and its expiry is lengthened (never shortened) to `expiresAtMs`. */
  private written(id: string, held: Held, expiresAtMs: number): void {
    held.expiresAtMs = Math.max(held.expiresAtMs, expiresAtMs);
    this.conversations.delete(id);
    this.conversations.set(id, held);
  }

  /**
   * Drops the conversations written least recently until the store is within its bounds, or only
   * `kept` (the one just written) is left: it ends, whatever the size of `kept`.
   */
  private makeRoom(kept: string): void {
    for (const id of [...this.conversations.keys()]) {
      if (this.conversations.size <= this.limits.maxConversations && this.bytes <= this.limits.maxBytes) return;
      if (id !== kept) this.drop(id);
    }
  }

  private drop(id: string): void {
    const held = this.conversations.get(id);
    if (!held) return;
    this.conversations.delete(id);
    this.bytes -= held.bytes;
    const owned = this.owners.get(held.record.owner);
    owned?.delete(id);
    if (owned?.size === 0) this.owners.delete(held.record.owner);
  }

  /** The owner's conversation when it is not expired (an expired one is dropped, whoever asks). */
  private owned(owner: string, id: string): Held | undefined {
    const held = this.live(id);
    return held && held.record.owner === owner ? held : undefined;
  }

  /** The conversation when it is not expired, whoever owns it (an expired one is dropped). */
  private live(id: string): Held | undefined {
    const held = this.conversations.get(id);
    if (!held) return undefined;
    if (held.expiresAtMs <= this.now()) {
      this.drop(id);
      return undefined;
    }
    return held;
  }
}

/** Copies of `items` to keep, with their ids and sizes; throws, before anything is kept, when one has no id (a caller's mistake). */
function heldItems(items: ResponseJson[]): HeldItem[] {
  return items.map((item) => {
    const id = item['id'];
    if (typeof id !== 'string' || id === '') throw new Error('a conversation item has no id');
    return { id, item: structuredClone(item), bytes: itemBytes(item) };
  });
}
