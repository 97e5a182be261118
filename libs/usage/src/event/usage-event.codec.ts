import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { usagev1 } from '@openrouter/contracts';
import type { UsageMessage } from '../bus/usage-bus';

export const USAGE_SCHEMA_VERSION = 1;
export const USAGE_CONTENT_TYPE = 'application/x-protobuf';
export const USAGE_SCHEMA_NAME = 'openrouter.usage.v1.UsageEvent';

/**
 * A request's cost: at most 12 integer digits (a trillion, far beyond any request), so that sums of
 * costs in the store's Decimal(38, 18), 20 integer digits, hold for 10^8 such events. ClickHouse
 * does not check a Decimal sum for overflow: two 20-digit costs would sum to a negative amount.
 */
const DECIMAL = /^\d{1,12}(\.\d{1,18})?$/;
const CURRENCY = /^[A-Z]{3}$/;
const DAY_MS = 86_400_000;
/** The first instant after ClickHouse's `DateTime` range (2106-02-07T06:28:15Z is its last second). */
const DATETIME_END_MS = 2 ** 32 * 1000;
/** The largest `usage.clickhouse.retentionDays` the configuration allows (libs/config usage.schema.ts). */
const MAX_RETENTION_DAYS = 18_250;
/**
 * The first event time the store cannot hold (2056-02-19T06:28:16Z). ClickHouse wraps a time past
 * a type's range instead of refusing it: the raw tables' TTL, `toDateTime(received_at) + retention`,
 * is a `DateTime`, so a later row gets an expiry in the past and is deleted at its next merge while
 * the rollup keeps counting it; the rollup's `day` is a `Date` (up to 2149-06-06), so a later event
 * lands on a past day, on a past month's invoice. The `DateTime64` columns alone reach 2299.
 */
const LATEST_TIME_MS = DATETIME_END_MS - MAX_RETENTION_DAYS * DAY_MS;
/** RFC 9110 §15: every valid status code is in 100–599. Stored as UInt16, a larger one would wrap. */
const LAST_HTTP_STATUS = 599;

/** The bus message for an event: protobuf payload, keyed by organisation. */
export function toUsageMessage(event: usagev1.UsageEvent, headers: Record<string, string> = {}, writer: BinaryWriter = new BinaryWriter()): UsageMessage {
  return {
    key: event.tenant?.orgId ?? '',
    value: asBuffer(usagev1.UsageEvent.encode(event, writer).finish()),
    headers: { ...headers, 'content-type': USAGE_CONTENT_TYPE, schema: USAGE_SCHEMA_NAME },
  };
}

/**
 * The message for an event that stays in this process: it carries the event as a consumer on
 * the other side of Kafka would read it (see {@link wireCopy}), and its protobuf bytes are made
 * only when `value` is read.
 */
export function inProcessUsageMessage(published: usagev1.UsageEvent, headers: Record<string, string> = {}): UsageMessage {
  const event = wireCopy(published);
  let value: Buffer | undefined;
  return {
    key: event.tenant?.orgId ?? '',
    get value(): Buffer {
      return (value ??= asBuffer(usagev1.UsageEvent.encode(event).finish()));
    },
    headers: { ...headers, 'content-type': USAGE_CONTENT_TYPE, schema: USAGE_SCHEMA_NAME },
    event,
  };
}

/**
 * The event as it comes out of a protobuf round trip, without the round trip: a copy that nothing
 * else holds (the producer may go on changing its own object after publishing it, as it may after
 * the Kafka publisher encoded it), with every string well-formed. A lone surrogate (a client's
 * `"\ud83d"` as its `user`, or an emoji cut in half by a length limit) becomes U+FFFD, as
 * protobuf's UTF-8 makes it; left as it was, `JSON.stringify` would write it as an escape that
 * ClickHouse refuses, and the insert of every event with it would fail.
 */
function wireCopy(event: usagev1.UsageEvent): usagev1.UsageEvent {
  const copy = usagev1.UsageEvent.fromPartial(event);
  return allWellFormed(copy) ? copy : (withWellFormedStrings(copy) as usagev1.UsageEvent);
}

/** Plain loops, no callbacks: this runs for every event on the embedded mode's request path. */
function allWellFormed(value: unknown): boolean {
  switch (typeof value) {
    case 'string':
      return value.isWellFormed();
    case 'object': {
      if (value === null) return true;
      if (Array.isArray(value)) {
        for (const item of value) if (!allWellFormed(item)) return false;
        return true;
      }
      for (const key in value) if (!allWellFormed((value as Record<string, unknown>)[key]) || !key.isWellFormed()) return false;
      return true;
    }
    default:
      return true;
  }
}

function withWellFormedStrings(value: unknown): unknown {
  if (typeof value === 'string') return value.toWellFormed();
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) return value.map(withWellFormedStrings);
  const copy: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(value)) copy[key.toWellFormed()] = withWellFormedStrings(field);
  return copy;
}

/**
 * Encodes messages with one protobuf writer whose buffer is kept between events: a fresh writer
 * grows from 128 bytes by doubling and copying for every event.
 */
export class UsageMessageEncoder {
  private writer = new BinaryWriter();

  encode(event: usagev1.UsageEvent, headers: Record<string, string> = {}): UsageMessage {
    try {
      return toUsageMessage(event, headers, this.writer);
    } catch (error) {
      // Only `finish` empties the writer: an encode that threw part-way (a number no field holds)
      // leaves its bytes in it, which the next event's would follow, and that message would read
      // as the failed event. A fresh writer for the next one.
      this.writer = new BinaryWriter();
      throw error;
    }
  }
}

/** The encoder's fresh bytes as a Buffer without copying them. */
function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export type DecodedUsage = { ok: true; event: usagev1.UsageEvent } | { ok: false; reason: string };

/** A consumed message's event, validated: the event it carries (in process), else its decoded bytes. */
export function readUsageMessage(message: UsageMessage): DecodedUsage {
  if (message.poison !== undefined) return { ok: false, reason: message.poison };
  if (!message.event) return decodeUsageMessage(message.value);
  const problem = validateUsageEvent(message.event);
  return problem ? { ok: false, reason: problem } : { ok: true, event: message.event };
}

/** Decodes and validates a message; a message that fails can never be stored (a poison message). */
export function decodeUsageMessage(value: Buffer | null | undefined): DecodedUsage {
  if (!value || value.length === 0) return { ok: false, reason: 'empty payload' };
  let event: usagev1.UsageEvent;
  try {
    event = usagev1.UsageEvent.decode(value);
  } catch (error) {
    return { ok: false, reason: `undecodable protobuf: ${error instanceof Error ? error.message : String(error)}` };
  }
  const problem = validateUsageEvent(event);
  return problem ? { ok: false, reason: problem } : { ok: true, event };
}

/** The first reason the event cannot be stored, or undefined when it is valid. */
export function validateUsageEvent(event: usagev1.UsageEvent): string | undefined {
  if (event.schemaVersion !== USAGE_SCHEMA_VERSION) return `unsupported schema_version ${event.schemaVersion}`;
  if (!event.eventId || event.eventId.length > 256) return 'event_id is missing or longer than 256 characters';
  if (!event.tenant?.orgId) return 'tenant.org_id is missing';
  if (!(event.receivedAtMs > 0) || !(event.completedAtMs >= event.receivedAtMs)) return 'timestamps are missing or out of order';
  // completed_at is at least received_at, so this bounds received_at too.
  if (!(event.completedAtMs < LATEST_TIME_MS) || !(event.firstTokenAtMs < LATEST_TIME_MS)) return `timestamps are at or after ${new Date(LATEST_TIME_MS).toISOString()}, which the usage store cannot hold`;
  // 0 is an unknown status.
  if (event.httpStatus > LAST_HTTP_STATUS) return `http_status ${event.httpStatus} is not an HTTP status (100-599)`;
  if (event.status === usagev1.Status.STATUS_UNSPECIFIED || event.status === usagev1.Status.UNRECOGNIZED) return 'status is unspecified';
  // A value this consumer does not know (a newer producer's) would be stored as none: kept in the dead letters until it does.
  if (!known(usagev1.Status, event.status)) return `status ${event.status} is not one this consumer knows`;
  if (!known(usagev1.Operation, event.operation)) return `operation ${event.operation} is not one this consumer knows`;
  const attempt = event.attempts.find((a) => !known(usagev1.AttemptStatus, a.status));
  if (attempt) return `attempts[].status ${attempt.status} is not one this consumer knows`;
  const cost = event.cost;
  if (!cost || !DECIMAL.test(cost.amount)) return `cost.amount is not a decimal: ${JSON.stringify(cost?.amount ?? null).slice(0, 40)}`;
  if (!CURRENCY.test(cost.currency)) return 'cost.currency is not an ISO 4217 code';
  // Stored as a Decimal column: one that does not parse would fail the insert of every event with it.
  if (event.cacheSavedCost !== '' && !DECIMAL.test(event.cacheSavedCost)) return `cache_saved_cost is not a decimal: ${JSON.stringify(event.cacheSavedCost).slice(0, 40)}`;
  return quantityProblem(event);
}

const UINT32_MAX = 4_294_967_295;

/**
 * The first count of the event that is no whole number its column holds: a provider that reports
 * 1e21 tokens would otherwise fail every insert of the batch it is in (ClickHouse refuses `1e+21`,
 * and wraps what lies between 2^64 and that silently), and, in-process, could be neither stored
 * nor spilled (protobuf refuses it), so it was retried in memory for good. Counts up to 2^53 − 1
 * (every integer a number holds exactly); 32-bit columns up to theirs.
 */
function quantityProblem(event: usagev1.UsageEvent): string | undefined {
  const t = event.tokens;
  const wide: Array<[string, number | undefined]> = [
    ['tokens.prompt', t?.prompt],
    ['tokens.completion', t?.completion],
    ['tokens.cached_read', t?.cachedRead],
    ['tokens.cache_write', t?.cacheWrite],
    ['tokens.cache_write_1h', t?.cacheWrite1h],
    ['tokens.reasoning', t?.reasoning],
    ['audio_ms', event.audioMs],
    ['characters', event.characters],
    ['image_prompt_tokens', event.imagePromptTokens],
  ];
  for (const [name, value] of wide) if (value !== undefined && !(Number.isSafeInteger(value) && value >= 0)) return `${name} is not a whole number from 0 to 2^53 - 1: ${String(value).slice(0, 40)}`;
  const narrow: Array<[string, number | undefined]> = [
    ['latency_ms', event.latencyMs],
    ['ttft_ms', event.ttftMs],
    ['images', event.images],
    ...event.attempts.map((a, i): [string, number] => [`attempts[${i}].latency_ms`, a.latencyMs]),
  ];
  for (const [name, value] of narrow) if (value !== undefined && !(Number.isInteger(value) && value >= 0 && value <= UINT32_MAX)) return `${name} is not a whole number from 0 to ${UINT32_MAX}: ${String(value).slice(0, 40)}`;
  return undefined;
}

/** Whether `value` is one of a generated protobuf enum's values (its numbers map back to names), other than UNRECOGNIZED. */
function known(enumeration: Record<number, string>, value: number): boolean {
  return value !== -1 && typeof enumeration[value] === 'string';
}
