import { createHmac } from 'node:crypto';
import { storeFailureAs } from '../store-failure';

/** A JSON object as the Chat Completions API carries it. */
export type ChatJson = Record<string, unknown>;

/** Whether `value` is a JSON object (not null, not an array). */
export const isChatJson = (value: unknown): value is ChatJson => typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * A chat completion kept for OpenAI's stored Chat Completions routes (docs/chat-completions-store.md):
 * created with `store: true`, whatever provider answered it. It belongs to the project of the key
 * that created it (`ownerOf`): every key of that project reads it, no other does. Kept sealed
 * (AES-256-GCM, `sealed-text`) under a key derived from `access.keyHashSecret`, with its id as
 * context, so the store alone reveals no prompt or answer and a value moved under another id does
 * not open.
 */
export interface StoredChatCompletion {
  /** `chatcmpl-…`: the id the completion was answered with (one of the gateway's, unique). */
  id: string;
  /** The project that owns it: `${orgId}/${projectId}` (`ownerOf`). */
  owner: string;
  /** When it was kept (Unix ms): what listing orders by. */
  createdAtMs: number;
  /** The model the request named (the completion's `model` is the one that answered). */
  requestedModel: string;
  /** The request's `metadata`, as changed since by `POST /v1/chat/completions/{id}`. */
  metadata: Record<string, string>;
  /** The `chat.completion` object as the client was answered (a stream: as its chunks add up), with its usage and cost. */
  completion: ChatJson;
  /** The request's messages, as the client sent them. */
  messages: ChatJson[];
}

/** An id of an owner's index, with the creation it is ordered by. */
export interface IndexEntry {
  id: string;
  createdAtMs: number;
}

/** Where to start a page of an owner's index, and which way to go. */
export interface IndexPage {
  /**
   * Where the page starts (not included): an id of the index, or an entry read from it, which
   * stays a valid start after its id has left the index (deleted or expired since). Absent: from the start.
   */
  after?: string | IndexEntry | undefined;
  /** `asc`: oldest first. */
  order: 'asc' | 'desc';
  count: number;
}

export interface ChatCompletionStore {
  /** Stores a new completion until `expiresAtMs` (Unix ms), in its owner's index. Throws when one under that id is still kept. */
  put(record: StoredChatCompletion, expiresAtMs: number): Promise<void>;
  /** The owner's completion, or undefined (unknown, another owner's, expired, deleted, or one that no longer opens). */
  get(owner: string, id: string): Promise<StoredChatCompletion | undefined>;
  /**
   * Several of the owner's completions in one round trip, in the order asked, each as `get` gives
   * it. The ids of those that are not there (expired, deleted) or no longer open leave the owner's
   * index, so that no later page reads them again.
   */
  getMany(owner: string, ids: readonly string[]): Promise<Array<StoredChatCompletion | undefined>>;
  /**
   * Up to `count` entries of the owner's index, ordered by creation (then id), after `after`;
   * undefined when `after` is an id not in the index. An entry may name a completion that has
   * expired since (`getMany` tells).
   */
  ids(owner: string, page: IndexPage): Promise<IndexEntry[] | undefined>;
  /** Replaces the owner's completion's metadata, keeping its expiry; the changed record, or undefined when there is none. */
  setMetadata(owner: string, id: string, metadata: Record<string, string>): Promise<StoredChatCompletion | undefined>;
  /** True when it existed (and is now gone). */
  delete(owner: string, id: string): Promise<boolean>;
  /**
   * Deletes every completion the owner has stored, a bounded batch at a time, and answers how many
   * there were. Throws when the store fails: what was deleted by then stays deleted, and a retry
   * deletes the rest.
   */
  purgeOwner(owner: string): Promise<number>;
  close(): Promise<void>;
}

/** The key stored chat completions are sealed under, derived from `access.keyHashSecret`. */
export function chatCompletionSealKey(keyHashSecret: string): Buffer {
  return createHmac('sha256', keyHashSecret).update('chat-completions\0seal').digest();
}

/** A failure of the chat completions' store as a 503 `chat_completion_store_unavailable` (`storeFailureAs`). */
export const orChatStoreUnavailable = storeFailureAs('chat_completion_store_unavailable', 'Stored chat completions cannot be read or written right now. Please retry.');
