import { z } from 'zod';
import { flag, numeric, strictObject } from './primitives';

/**
 * Stored responses of OpenAI's Responses API at ingress (docs/responses-api.md#stored-responses):
 * what `GET /v1/responses/{id}`, its `input_items` and `previous_response_id` read. They live in
 * the access store's Redis when there is one (shared by every replica, sealed under a key derived
 * from `access.keyHashSecret`), otherwise in this process (gone when it stops).
 */
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
  /** The most one conversation's input and output items may hold in all (bytes of JSON), what each next turn loads and sends. */
  maxConversationBytes: numeric(z.number().int().positive()).default(64 * 1024 * 1024),
});
export type ResponsesConfig = z.infer<typeof responsesSchema>;
