import { z } from 'zod';
import { flag, numeric, strictObject } from './primitives';

/**
 * Stored chat completions at ingress (docs/chat-completions-store.md): a chat completion created
 * with `store: true` is kept by the gateway, whatever provider answered it, for OpenAI's
 * `GET|POST|DELETE /v1/chat/completions/{id}`, its `messages` and the list. Kept in the access
 * store's Redis when there is one (shared by every replica, sealed under a key derived from
 * `access.keyHashSecret`), otherwise in this process (gone when it stops).
 */
export const chatCompletionsSchema = strictObject({
  /**
   * Keeps the chat completions created with `store: true`, and does not forward `store` (nor
   * `metadata`) to the provider. Off: nothing is kept, `store` goes to the provider as sent, and the
   * stored-completion routes answer 404.
   */
  store: flag.default(true),
  /** A stored chat completion is dropped this many days after it was created. */
  retentionDays: numeric(z.number().int().positive().max(3_650)).default(30),
  /** Without Redis: the most chat completions the ingress process keeps, the oldest dropped first. */
  memoryMaxCompletions: numeric(z.number().int().positive()).default(10_000),
  /** Without Redis: the most the kept chat completions may hold in all, as JSON (bytes), the oldest dropped first. */
  memoryMaxBytes: numeric(z.number().int().positive()).default(256 * 1024 * 1024),
  /**
   * The most stored chat completions one page of `GET /v1/chat/completions` reads while filtering
   * by `model` or `metadata`: past it, the page answers the matches found so far with `has_more` true.
   */
  listScanLimit: numeric(z.number().int().min(100).max(100_000)).default(1_000),
});
export type ChatCompletionsConfig = z.infer<typeof chatCompletionsSchema>;
