import { z } from 'zod';

/** The subprotocol the server speaks; browsers add `bearer.<key>` beside it to authenticate. */
export const WS_PROTOCOL = 'openrouter.v1';
export const BEARER_PROTOCOL_PREFIX = 'bearer.';

/**
 * A client frame: a request with the client's own id, or a cancel of one. A request's `headers`
 * are what an HTTP request would send as headers of its own: those of the response cache only.
 */
export const clientFrameSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('chat.completions'), id: z.string().min(1).max(128), headers: z.record(z.string().max(128), z.string().max(256)).optional(), body: z.unknown() }),
  z.strictObject({ type: z.literal('cancel'), id: z.string().min(1).max(128) }),
]);
export type ClientFrame = z.infer<typeof clientFrameSchema>;

/** Server frames, each tagged with the request id it belongs to. */
export type ServerFrame =
  | { type: 'chunk'; id: string; data: unknown }
  | { type: 'completion'; id: string; data: unknown; headers: Record<string, string> }
  | { type: 'start'; id: string; headers: Record<string, string> }
  | { type: 'done'; id: string }
  | { type: 'error'; id: string | null; status: number; error: unknown; headers?: Record<string, string>; rejected_id?: string };
