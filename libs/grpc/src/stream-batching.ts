import { Metadata } from '@grpc/grpc-js';
import type { chatv1 } from '@openrouter/contracts';

/**
 * Batching of a server stream's messages. grpc-js sends a stream's messages one per event-loop
 * turn (each write waits for the previous one's callback), and every message costs a frame, a
 * socket write and a read at each hop. A server therefore sends the messages that became ready
 * while its previous write was in flight as one message; a caller unpacks them and sees the same
 * sequence. Nothing waits for a batch to fill: the first message goes at once, and a paced stream
 * (one chunk per network read, as most providers send) travels exactly as before.
 *
 * A server batches only for a caller that asked for it in the call's metadata, so a newer
 * server and an older caller (or the reverse) work together during a rolling upgrade.
 */
export interface StreamBatching<T> {
  /** The metadata value a caller sends under {@link STREAM_BATCHES_HEADER} to accept batches. */
  readonly name: string;
  /** Whether the message may travel in a batch with its neighbours. */
  batchable(message: T): boolean;
  /** Two or more batchable messages as one. */
  pack(messages: readonly T[]): T;
  /** The messages a batch carries, or undefined when the message is no batch. */
  unpack(message: T): readonly T[] | undefined;
}

export const STREAM_BATCHES_HEADER = 'or-stream-batches';

/** The most messages a batch carries; more that are ready go as further batches. */
export const MAX_STREAM_BATCH = 64;

/** Call metadata that accepts `batching`'s batches. */
export function acceptBatches(batching: StreamBatching<unknown>, metadata = new Metadata()): Metadata {
  metadata.set(STREAM_BATCHES_HEADER, batching.name);
  return metadata;
}

/** Whether the caller asked for `batching`'s batches. */
export function acceptsBatches(metadata: Metadata, batching: StreamBatching<unknown>): boolean {
  return metadata.get(STREAM_BATCHES_HEADER).some((value) => value === batching.name);
}

/** A streamed chat answer: chunks, or a batch of them, among other events. */
interface ChunkEvent {
  chunk?: chatv1.ChatChunk | undefined;
  chunks?: chatv1.ChatChunkBatch | undefined;
}

/**
 * Chat chunks of the adapter's and the router's streams, batched as `chunks`. Other events (the
 * route decision, a whole completion) always travel alone.
 */
export function chatChunkBatching<T extends ChunkEvent>(): StreamBatching<T> {
  return {
    name: 'chunks',
    batchable: (message) => message.chunk !== undefined,
    pack: (messages) => ({ chunks: { chunks: messages.map((m) => m.chunk as chatv1.ChatChunk) } }) as T,
    unpack: (message) => (message.chunks === undefined ? undefined : message.chunks.chunks.map((chunk) => ({ chunk }) as T)),
  };
}
