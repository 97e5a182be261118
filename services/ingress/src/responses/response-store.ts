import { createHmac } from 'node:crypto';
import { storeFailureAs } from '../store-failure';

/** A JSON object as the Responses API carries it. */
export type ResponseJson = Record<string, unknown>;

/**
 * A response kept for `GET /v1/responses/{id}`, its input items and `previous_response_id`
 * (docs/responses-api.md#stored-responses). It belongs to the project of the key that created it
 * (`ownerOf`, as a file does): every key of that project reads it, no other does. Kept sealed
 * (AES-256-GCM, `sealed-text`) under a key derived from `access.keyHashSecret`, with its id as
 * context, so the store alone reveals no prompt or answer and a value moved under another id
 * does not open.
 */
export interface StoredResponse {
  /** `resp_…`. */
  id: string;
  /** The project that owns it: `${orgId}/${projectId}` (`ownerOf`). */
  owner: string;
  /** Unix seconds. */
  createdAt: number;
  /**
   * The response object as it was answered, with `store: true`; its reasoning items carry their
   * `encrypted_content` whenever the answer had thinking blocks, whatever the request included
   * (a retrieval leaves it out unless asked for).
   */
  response: ResponseJson;
  /** The input items of the request that created it (not the earlier turns'), each with an id, as `input_items` lists them. */
  input: ResponseJson[];
  /** The earlier responses of its conversation (the `previous_response_id` chain), oldest first. */
  ancestors: string[];
  /**
   * The size (UTF-8 bytes of JSON) of the conversation a next turn would carry: the input and
   * output items of its ancestors and its own. Bounded by `responses.maxConversationBytes`.
   */
  conversationBytes: number;
}

export interface ResponseStore {
  /**
   * Stores a new response until `expiresAtMs` (Unix ms), and keeps each of its ancestors at
   * least as long (a conversation expires with its last turn, not its first): an expiry is only
   * ever lengthened, and an ancestor already gone stays gone. An id is never reused: throws when
   * a response under that id is still kept.
   */
  put(record: StoredResponse, expiresAtMs: number): Promise<void>;
  /** The owner's response, or undefined (unknown, another owner's, expired, deleted, or one that no longer opens). */
  get(owner: string, id: string): Promise<StoredResponse | undefined>;
  /** Several of the owner's responses in one round trip, in the order asked, each as `get` gives it. */
  getMany(owner: string, ids: readonly string[]): Promise<Array<StoredResponse | undefined>>;
  /** True when it existed (and is now gone). */
  delete(owner: string, id: string): Promise<boolean>;
  /**
   * Deletes every response the owner has stored (a project's offboarding, a request to delete its
   * data), a bounded batch at a time, and answers how many there were. A response stored meanwhile
   * may be deleted or kept. Throws when the store fails: what was deleted by then stays deleted, and
   * a retry deletes the rest.
   */
  purgeOwner(owner: string): Promise<number>;
  close(): Promise<void>;
}

/** The Nest injection token of the gateway's {@link ResponseStore} (absent when `responses.store` is false). */
export const RESPONSE_STORE = Symbol('RESPONSE_STORE');

/** The key stored responses are sealed under, derived from `access.keyHashSecret` (as files' is). */
export function responseSealKey(keyHashSecret: string): Buffer {
  return createHmac('sha256', keyHashSecret).update('responses\0seal').digest();
}

/** A failure of the responses' store as a 503 `response_store_unavailable` (`storeFailureAs`). */
export const orStoreUnavailable = storeFailureAs('response_store_unavailable', 'Stored responses cannot be read or written right now. Please retry.');
