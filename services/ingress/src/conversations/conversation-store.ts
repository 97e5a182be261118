import { createHmac } from 'node:crypto';
import type { ResponseJson } from '../responses/response-store';
import { storeFailureAs } from '../store-failure';

/**
 * A conversation of OpenAI's Conversations API (docs/responses-api.md#conversations): a list of
 * items (messages, function calls and their outputs, reasoning) that responses made with
 * `conversation` read before their input and add their input and output to. It belongs to the
 * project of the key that created it (`ownerOf`): every key of that project reads it, no other.
 */
export interface ConversationRecord {
  /** `conv_…`. */
  id: string;
  /** The project that owns it: `${orgId}/${projectId}` (`ownerOf`). */
  owner: string;
  /** Unix seconds. */
  createdAt: number;
  /** Up to 16 pairs, as OpenAI's `metadata`. */
  metadata: Record<string, string>;
}

/** What a conversation holds now: its record, and how many items and bytes (UTF-8 JSON of each item) it holds. */
export interface ConversationState {
  record: ConversationRecord;
  items: number;
  bytes: number;
}

/** The most a conversation may hold: items in all, and bytes of its items' JSON. */
export interface ConversationLimits {
  maxItems: number;
  maxBytes: number;
}

/** One page of a conversation's items. */
export interface ItemPage {
  data: ResponseJson[];
  hasMore: boolean;
}

/**
 * The outcome of adding items: added, no such conversation (of this owner), past a limit, or an
 * item whose id the conversation holds already (or that comes twice in the items added):
 * `duplicate` names it. Nothing is added but on `added`.
 */
export type AppendOutcome = 'added' | 'not_found' | 'too_long' | { duplicate: string };

/**
 * Conversations and their items. Every item has an `id` and a `type` when it is handed in; an id
 * is unique in its conversation (a store refuses one it holds already); items are kept in the
 * order added. A conversation expires `expiresAtMs`
 * after its last change: every write takes the expiry it is given (an expiry is only lengthened,
 * so a write given 0 leaves it as it is).
 * Items are sealed with their conversation where the store is shared (Redis).
 */
export interface ConversationStore {
  /** Stores a new conversation with its first items. Throws when the id is taken, or two items have one id (a caller's mistake). */
  create(record: ConversationRecord, items: ResponseJson[], expiresAtMs: number): Promise<void>;
  /** The owner's conversation and what it holds, or undefined (unknown, another owner's, expired, deleted). */
  get(owner: string, id: string): Promise<ConversationState | undefined>;
  /** Replaces the owner's conversation's metadata; the record after, or undefined when there is none. */
  setMetadata(owner: string, id: string, metadata: Record<string, string>, expiresAtMs: number): Promise<ConversationRecord | undefined>;
  /** True when it existed (and it and its items are now gone). */
  delete(owner: string, id: string): Promise<boolean>;
  /** Adds items at the end, all or none: none when the conversation would then hold more than `limits`, or an item's id is taken. */
  append(owner: string, id: string, items: ResponseJson[], limits: ConversationLimits, expiresAtMs: number): Promise<AppendOutcome>;
  /** Every item of the owner's conversation, oldest first, or undefined when there is no such conversation. */
  items(owner: string, id: string): Promise<ResponseJson[] | undefined>;
  /**
   * A page of `limit` items, oldest first (`asc`) or newest first (`desc`), after the item `after`
   * in that order; undefined when there is no such conversation, `after_not_found` when `after` is
   * not one of its items.
   */
  page(owner: string, id: string, query: { limit: number; order: 'asc' | 'desc'; after?: string | undefined }): Promise<ItemPage | 'after_not_found' | undefined>;
  /** One item, or undefined (no such conversation, or no such item in it). */
  item(owner: string, id: string, itemId: string): Promise<ResponseJson | undefined>;
  /** Removes one item; false when there is no such conversation or item. */
  deleteItem(owner: string, id: string, itemId: string, expiresAtMs: number): Promise<boolean>;
  /**
   * Deletes every conversation of the owner with its items, a bounded batch at a time, and answers
   * how many there were. One created meanwhile may be deleted or kept. Throws when the store fails:
   * what was deleted by then stays deleted, and a retry deletes the rest.
   */
  purgeOwner(owner: string): Promise<number>;
  close(): Promise<void>;
}

/** The Nest injection token of the gateway's {@link ConversationStore} (absent when `responses.store` is false). */
export const CONVERSATION_STORE = Symbol('CONVERSATION_STORE');

/** The key conversations are sealed under, derived from `access.keyHashSecret` (their own). */
export function conversationSealKey(keyHashSecret: string): Buffer {
  return createHmac('sha256', keyHashSecret).update('conversations\0seal').digest();
}

/** The size an item counts for against `maxBytes`: its UTF-8 JSON. */
export const itemBytes = (item: ResponseJson): number => Buffer.byteLength(JSON.stringify(item), 'utf8');

/** A failure of the conversations' store as a 503 `conversation_store_unavailable` (`storeFailureAs`). */
export const orConversationStoreUnavailable = storeFailureAs('conversation_store_unavailable', 'Conversations cannot be read or written right now. Please retry.');

/** The first id of `items` that comes twice in them or is one of `held`, or undefined. */
export function duplicateId(items: readonly { id: string }[], held: (id: string) => boolean): string | undefined {
  const seen = new Set<string>();
  for (const { id } of items) {
    if (seen.has(id) || held(id)) return id;
    seen.add(id);
  }
  return undefined;
}
