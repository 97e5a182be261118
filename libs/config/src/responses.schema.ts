import { z } from 'zod';
import { flag, numeric, strictObject } from './primitives';

/**
 * Stored responses of OpenAI's Responses API at ingress (docs/responses-api.md#stored-responses):
 * what `GET /v1/responses/{id}`, its `input_items` and `previous_response_id` read. They live in
 * the access store's Redis when there is one (shared by every replica, sealed under a key derived
 * from `access.keyHashSecret`), otherwise in this process (gone when it stops).
 */
/**
 * Background responses (`background: true`, docs/responses-api.md#background-responses): queued
 * with the stored responses (in the access store's Redis when there is one) and run by whichever
 * ingress replica claims them, through its own API as the key that created them.
 */
export const backgroundResponsesSchema = strictObject({
  /** Takes `background: true`; off, it is refused (400). Needs `store`. */
  enabled: flag.default(true),
  /** Background responses one replica runs at the same time. */
  concurrency: numeric(z.number().int().positive().max(1_000)).default(8),
  /** How many times a run refused for a reason that passes (429, 5xx) is tried before the response fails with its error. */
  maxAttempts: numeric(z.number().int().positive().max(100)).default(5),
  /** How long a replica holds a response it runs without renewing its claim; a replica that stops holds it at most this long. */
  leaseMs: numeric(z.number().int().min(1_000).max(600_000)).default(30_000),
  /** How often a replica looks for a queued response to run, and a running one for a cancel made on another replica. */
  pollMs: numeric(z.number().int().min(50).max(60_000)).default(500),
  /** The most background responses queued or running at once, over every replica; another is refused with 503 until one ends. */
  maxPending: numeric(z.number().int().positive().max(10_000_000)).default(10_000),
  /**
   * How long the stream events of a background response created with `stream: true` are kept, from
   * its creation (never longer than the response), for clients to read or resume its stream.
   */
  streamRetentionHours: numeric(z.number().int().positive().max(720)).default(24),
});
export type BackgroundResponsesConfig = z.infer<typeof backgroundResponsesSchema>;

export const responsesSchema = strictObject({
  /**
   * Keeps the responses created with `store` true (OpenAI's default). Off, nothing is kept: every
   * response says `store: false`, and `previous_response_id` and the retrieval routes are refused.
   */
  store: flag.default(true),
  /** A response is dropped this many days after the last turn of its conversation. */
  retentionDays: numeric(z.number().int().positive().max(3_650)).default(30),
  /** Without Redis: the most responses the ingress process keeps, the oldest dropped first. */
  memoryMaxResponses: numeric(z.number().int().positive()).default(10_000),
  /** Without Redis: the most the kept responses may hold in all, as JSON (bytes), the oldest dropped first. */
  memoryMaxBytes: numeric(z.number().int().positive()).default(256 * 1024 * 1024),
  /** The most responses one conversation (a `previous_response_id` chain) may hold. */
  maxConversationResponses: numeric(z.number().int().positive().max(10_000)).default(1_000),
  /** The most items a conversation of the Conversations API may hold. */
  maxConversationItems: numeric(z.number().int().positive().max(1_000_000)).default(10_000),
  /**
   * The most one conversation's input and output items may hold in all (bytes of JSON), what each
   * next turn loads and sends (a `previous_response_id` chain, or a conversation of the
   * Conversations API). 48 MiB: with a full new turn (`ingress.limits.bodyBytes`, 10 MiB) it still
   * fits the 64 MiB gRPC message the turn travels in (checked at start-up).
   */
  maxConversationBytes: numeric(z.number().int().positive()).default(48 * 1024 * 1024),
  background: backgroundResponsesSchema.prefault({}),
});
export type ResponsesConfig = z.infer<typeof responsesSchema>;
