import type { Message } from 'kafkajs';

/** What a record adds to a Kafka record batch besides its key, value and headers (lengths, varints, attributes), at most. */
const RECORD_OVERHEAD = 32;

/** The bytes a message takes in a record batch, near enough to bound a request by. */
export function recordBytes(message: Pick<Message, 'key' | 'value' | 'headers'>): number {
  let bytes = RECORD_OVERHEAD + byteLength(message.key) + byteLength(message.value);
  for (const [name, value] of Object.entries(message.headers ?? {})) {
    bytes += Buffer.byteLength(name) + 8;
    for (const part of Array.isArray(value) ? value : [value]) bytes += byteLength(part);
  }
  return bytes;
}

function byteLength(value: string | Buffer | null | undefined): number {
  return value == null ? 0 : typeof value === 'string' ? Buffer.byteLength(value) : value.length;
}

/**
 * Messages in consecutive slices of at most `maxBytes` each, in order; a message larger than that
 * goes alone. A broker refuses a partition's batch above its `message.max.bytes` (1 MiB by
 * default), and kafkajs puts all of a send's messages for one partition in one batch: a send of
 * one slice never meets that limit.
 */
export function slicesOf<T extends Pick<Message, 'key' | 'value' | 'headers'>>(messages: readonly T[], maxBytes: number): T[][] {
  const slices: T[][] = [];
  let slice: T[] = [];
  let bytes = 0;
  for (const message of messages) {
    const size = recordBytes(message);
    if (slice.length > 0 && bytes + size > maxBytes) {
      slices.push(slice);
      slice = [];
      bytes = 0;
    }
    slice.push(message);
    bytes += size;
  }
  if (slice.length > 0) slices.push(slice);
  return slices;
}
