import { usagev1 } from '@openrouter/contracts';
import type { UsageMessage } from '../bus/usage-bus';
import { USAGE_CONTENT_TYPE, USAGE_SCHEMA_NAME } from './usage-event.codec';

export const USAGE_BATCH_SCHEMA_NAME = 'openrouter.usage.v1.UsageEventBatch';
const BATCH_SCHEMA_BYTES = Buffer.from(USAGE_BATCH_SCHEMA_NAME);

/**
 * Payload bytes per batch message, at most: well below Kafka's default limit for a message
 * (`message.max.bytes`, 1 MB), whatever the events carry (tags, error text).
 */
export const USAGE_BATCH_MAX_BYTES = 256 * 1024;

/**
 * Packs event messages into `UsageEventBatch` messages for the bus: the events of one key
 * (organisation) together, at most `maxEvents` and about `maxBytes` of events per message, in the
 * order they came. A part with a single event keeps its plain message, and `maxEvents` 1 changes
 * nothing. Kafka keeps order per key, so each organisation's events stay in order; across keys
 * there is no order to keep.
 */
export function packUsageMessages(messages: readonly UsageMessage[], maxEvents: number, maxBytes = USAGE_BATCH_MAX_BYTES): UsageMessage[] {
  if (maxEvents <= 1 || messages.length <= 1) return [...messages];
  const byKey = new Map<string, UsageMessage[]>();
  for (const message of messages) {
    const group = byKey.get(message.key);
    if (group) group.push(message);
    else byKey.set(message.key, [message]);
  }
  const packed: UsageMessage[] = [];
  const close = (key: string, part: UsageMessage[]): void => {
    if (part.length === 1 && part[0]) packed.push(part[0]);
    else if (part.length > 1) packed.push(batchMessage(key, part));
  };
  for (const [key, group] of byKey) {
    let part: UsageMessage[] = [];
    let bytes = 0;
    for (const message of group) {
      if (part.length === maxEvents || (part.length > 0 && bytes + message.value.length > maxBytes)) {
        close(key, part);
        part = [];
        bytes = 0;
      }
      part.push(message);
      bytes += message.value.length;
    }
    close(key, part);
  }
  return packed;
}

function batchMessage(key: string, events: readonly UsageMessage[]): UsageMessage {
  const entries = events.map((m) => ({ event: m.value, headers: ownHeaders(m.headers) }));
  const bytes = usagev1.UsageEventBatch.encode({ entries }).finish();
  return { key, value: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), headers: { 'content-type': USAGE_CONTENT_TYPE, schema: USAGE_BATCH_SCHEMA_NAME } };
}

/** An event message's headers without those its payload type implies. */
function ownHeaders(headers: Record<string, string>): Record<string, string> {
  const own: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) if (name !== 'content-type' && name !== 'schema') own[name] = value;
  return own;
}

/** Whether a consumed message's `schema` header (as Kafka hands it: bytes or text) names a batch. */
export function isUsageBatchSchema(schema: Buffer | string | null | undefined): boolean {
  if (schema === undefined || schema === null) return false;
  return typeof schema === 'string' ? schema === USAGE_BATCH_SCHEMA_NAME : BATCH_SCHEMA_BYTES.equals(schema);
}

/**
 * The event messages of a consumed `UsageEventBatch` message, each as it would have been on its
 * own (key, payload, headers), sharing the batch's origin. An undecodable batch comes back as the
 * one message it is, marked `poison`, so it goes to the dead letters whole.
 */
export function unpackUsageBatch(message: UsageMessage): UsageMessage[] {
  // (Built field by field: a consumed message may expose its fields as getters.)
  const whole = (poison: string): UsageMessage[] => [{ key: message.key, value: message.value, headers: message.headers, ...(message.origin ? { origin: message.origin } : {}), poison }];
  let batch: usagev1.UsageEventBatch;
  try {
    batch = usagev1.UsageEventBatch.decode(message.value);
  } catch (error) {
    return whole(`undecodable usage event batch: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (batch.entries.length === 0) return whole('empty usage event batch');
  return batch.entries.map((entry) => ({
    key: message.key,
    // A view of the batch's bytes, not a copy.
    value: Buffer.from(entry.event.buffer, entry.event.byteOffset, entry.event.byteLength),
    headers: { ...entry.headers, 'content-type': USAGE_CONTENT_TYPE, schema: USAGE_SCHEMA_NAME },
    ...(message.origin ? { origin: message.origin } : {}),
  }));
}
