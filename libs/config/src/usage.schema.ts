import { z } from 'zod';
import { flag, kafkaTopic, MAX_TIMER_MS, numeric, strictObject, TIMER_TOO_LONG } from './primitives';

/** Counts and durations, which may come from the environment as text. */
const positive = z.number().int().positive();
const positiveInt = numeric(positive);
/** Durations waited for with a timer (a timeout, a linger, a backoff): at most MAX_TIMER_MS. */
const positiveMs = numeric(positive.max(MAX_TIMER_MS, TIMER_TOO_LONG));
const nonNegativeMs = numeric(z.number().int().nonnegative().max(MAX_TIMER_MS, TIMER_TOO_LONG));

/** Broker addresses as a list or as one comma-separated string (an environment variable). */
const brokerList = z
  .union([z.array(z.string()), z.string()])
  .transform((v) => (Array.isArray(v) ? v : v.split(',')).map((b) => b.trim()).filter((b) => b !== ''))
  .pipe(z.array(z.string().regex(/^[^\s:]+:\d+$/, 'must be host:port')));

const ClickHouseIdentifier = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'letters, digits and _');

export const kafkaUsageSchema = strictObject({
  brokers: brokerList.default([]),
  clientId: z.string().min(1).default('openrouter'),
  topic: kafkaTopic.default('openrouter.usage.v1'),
  /** Where messages that can never be stored go; a topic of its own (a poison message sent back to `topic` would loop). */
  dlqTopic: kafkaTopic.default('openrouter.usage.v1.dlq'),
  /** Created at start-up when missing (the broker must allow it; production creates them ahead). */
  partitions: positiveInt.default(6),
  replicationFactor: positiveInt.default(1),
  /**
   * `retention.ms` of the topics created when missing (usage and dead letters): how long an
   * event billing has not stored yet (its ClickHouse down) stays readable. -1 keeps them for good.
   */
  retentionMs: numeric(z.number().int().refine((ms) => ms === -1 || ms >= 60 * 60_000, 'at least an hour (3600000), or -1 to keep messages for good')).default(30 * 24 * 60 * 60_000),
  consumerGroup: z.string().min(1).default('billing'),
  /** A send that takes longer goes to the outbox instead (it may still arrive: consumers dedupe). */
  sendTimeoutMs: positiveMs.default(5_000),
  connectionTimeoutMs: positiveMs.default(3_000),
  /** Producer batching: wait at most this long to fill a batch of at most `batchMaxEvents`. */
  lingerMs: nonNegativeMs.default(5),
  batchMaxEvents: positiveInt.default(3_000),
  /**
   * Events of one organisation sent together as one `UsageEventBatch` message, at most (1 sends a
   * message per event). Kafka clients spend most of their time per message, not per byte.
   */
  eventsPerMessage: numeric(positive.max(1_000)).default(100),
  /**
   * A send to Kafka carries at most this many bytes (keys, values, headers); a larger flush or
   * replay goes in several. Keep it below the broker's `message.max.bytes` (1 MiB by default):
   * the broker refuses a partition's batch above it, and one organisation's events all go to one
   * partition.
   */
  maxSendBytes: numeric(positive.min(64 * 1024)).default(768 * 1024),
  /** TLS to the brokers: `true` trusts the system's CAs; `{ ca }` a PEM file of a private CA. */
  ssl: z.union([flag, strictObject({ ca: z.string().min(1) })], { error: 'expected true or false (or 1/0, yes/no), or { ca: <PEM file> }' }).default(false),
  /** SASL authentication (managed Kafka: MSK, Confluent Cloud, Aiven…); unset: none. */
  sasl: strictObject({
    mechanism: z.enum(['plain', 'scram-sha-256', 'scram-sha-512']),
    username: z.string().min(1),
    password: z.string().min(1),
  }).optional(),
});
export type KafkaUsageConfig = z.infer<typeof kafkaUsageSchema>;

export const outboxSchema = strictObject({
  /** Directory of the producer's durable outbox; '' means `<gateway.dataDir>/outbox/<service>`. */
  dir: z.string().default(''),
  /** When the outbox holds this much, publishing fails loudly instead of filling the disk. */
  maxBytes: positiveInt.default(1024 * 1024 * 1024),
  segmentBytes: positiveInt.default(16 * 1024 * 1024),
  /** How often a non-empty outbox retries Kafka. */
  replayIntervalMs: positiveMs.default(1_000),
});
export type OutboxConfig = z.infer<typeof outboxSchema>;

export const clickhouseSchema = strictObject({
  /** A ClickHouse server (`http(s)://[user:password@]host:8123`). Empty means the embedded engine (chDB). */
  url: z.string().default(''),
  /** Credentials, when not given in the URL. */
  username: z.string().default(''),
  password: z.string().default(''),
  /** chDB data directory; '' means `<gateway.dataDir>/clickhouse`, ':memory:' a throw-away one. */
  embedded: strictObject({ path: z.string().default('') }).prefault({}),
  database: ClickHouseIdentifier.default('openrouter'),
  requestTimeoutMs: positiveMs.default(30_000),
  /** Raw usage events are kept this long; the daily rollups are kept for good. At most 50 years (DateTime range). */
  retentionDays: numeric(positive.max(18_250)).default(400),
})
  .superRefine((c, ctx) => {
    if (c.url !== '' && !/^https?:\/\/[^\s]+$/.test(c.url)) ctx.addIssue({ code: 'custom', path: ['url'], message: 'must be an http(s) URL or empty for the embedded engine' });
  });
export type ClickHouseConfig = z.infer<typeof clickhouseSchema>;

export const usageConsumerSchema = strictObject({
  /**
   * Messages per ClickHouse insert, at most (a Kafka fetch may bring fewer). Chunks of partitions
   * consumed at the same time are stored together up to this many.
   */
  batchMaxEvents: positiveInt.default(30_000),
  /** When no insert runs, how long the first partition's chunk waits for the others of its fetch. */
  coalesceLingerMs: nonNegativeMs.default(5),
  /** Kafka fetch tuning: wait up to this long for `minBytes` so inserts are large. */
  maxWaitMs: positiveMs.default(1_000),
  minBytes: positiveInt.default(1024 * 1024),
  maxBytesPerPartition: positiveInt.default(8 * 1024 * 1024),
  partitionsConsumedConcurrently: positiveInt.default(3),
  /** Backoff between retries of a failed insert (the batch is retried until it succeeds). */
  retryInitialMs: positiveMs.default(200),
  retryMaxMs: positiveMs.default(10_000),
});
export type UsageConsumerConfig = z.infer<typeof usageConsumerSchema>;

/** The usage pipeline: how ingress publishes usage events and how billing stores them. */
export const usageSchema = strictObject({
  /** `in-process` (embedded mode: ingress and billing in one process) or `kafka`. */
  bus: z.enum(['in-process', 'kafka']).default('in-process'),
  kafka: kafkaUsageSchema.prefault({}),
  outbox: outboxSchema.prefault({}),
  clickhouse: clickhouseSchema.prefault({}),
  consumer: usageConsumerSchema.prefault({}),
  /**
   * What the usage records keep of a request's end user (`x-openrouter-user`, `user`,
   * `safety_identifier`), often an e-mail address: `raw` as sent; `pseudonymized`, a keyed digest
   * per organisation (`endUserSecret`), the same for the same user, useless without the secret;
   * `dropped`, nothing (docs/usage-pipeline.md#end-users-in-usage-records).
   */
  endUsers: z.enum(['raw', 'pseudonymized', 'dropped']).default('raw'),
  /** The key of the end users' digests with `endUsers: pseudonymized` (`${VAR}`); at least 32 characters. */
  endUserSecret: z.string().default(''),
})
  .superRefine((u, ctx) => {
    if (u.endUsers === 'pseudonymized' && u.endUserSecret.length < 32) ctx.addIssue({ code: 'custom', path: ['endUserSecret'], message: 'set a secret of at least 32 characters (`openssl rand -hex 32`) with usage.endUsers: pseudonymized' });
    if (u.bus === 'kafka' && u.kafka.brokers.length === 0) ctx.addIssue({ code: 'custom', path: ['kafka', 'brokers'], message: 'name at least one broker when usage.bus is kafka' });
  });
export type UsageConfig = z.infer<typeof usageSchema>;
