import { readFileSync } from 'node:fs';
import { Kafka, logLevel, type Admin, type KafkaConfig, type LogEntry, type SASLOptions } from 'kafkajs';
import type { KafkaUsageConfig } from '@openrouter/config';
import type { Logger } from '@openrouter/observability';
import { fixRequestQueueTimer } from './request-queue-timer';

export interface KafkaLogOptions {
  /**
   * While true, kafkajs's warnings and errors are logged at debug: an outage its owner knows of and
   * reports itself, rate-limited (the usage publisher while its outbox is active). kafkajs logs two
   * lines for each failed try of a connection, and retries each connection several times.
   */
  quiet?: () => boolean;
  /**
   * The client's idempotent producer caps its retries on purpose (see `KafkaUsagePublisher`):
   * kafkajs's warning about that, at each producer it makes, is logged at debug. Without this,
   * a producer that caps them by mistake still warns.
   */
  cappedIdempotentRetries?: boolean;
}

/** What kafkajs warns, at creation, of an idempotent producer whose `retry.retries` is not unbounded. */
export const CAPPED_IDEMPOTENT_RETRIES = 'Limiting retries for the idempotent producer may invalidate EoS guarantees';

/** A kafkajs client whose log lines go to the service logger (warnings and errors only). */
export function createKafka(config: KafkaUsageConfig, logger: Logger, clientSuffix: string, logOptions: KafkaLogOptions = {}): Kafka {
  fixRequestQueueTimer();
  return new Kafka({
    clientId: `${config.clientId}-${clientSuffix}`,
    brokers: config.brokers,
    connectionTimeout: config.connectionTimeoutMs,
    ...kafkaSecurity(config),
    logLevel: logLevel.WARN,
    logCreator:
      () =>
      ({ namespace, level, log }: LogEntry) => {
        const { message, ...extra } = log;
        const fields = { kafka: namespace, broker: extra['broker'], error: extra['error'] };
        if (level > logLevel.WARN) return;
        const expected = logOptions.cappedIdempotentRetries === true && namespace === 'Producer' && message === CAPPED_IDEMPOTENT_RETRIES;
        logger[expected || logOptions.quiet?.() ? 'debug' : 'warn'](fields, `kafka: ${message}`);
      },
  });
}

/** The TLS and SASL settings of a Kafka client; a CA file that cannot be read fails the start, naming it. */
export function kafkaSecurity(config: Pick<KafkaUsageConfig, 'ssl' | 'sasl'>): Pick<KafkaConfig, 'ssl' | 'sasl'> {
  let ssl: KafkaConfig['ssl'];
  if (typeof config.ssl === 'object') {
    try {
      ssl = { ca: [readFileSync(config.ssl.ca, 'utf8')] };
    } catch (error) {
      throw new Error(`usage.kafka.ssl.ca: cannot read ${config.ssl.ca}: ${(error as Error).message}`);
    }
  } else if (config.ssl) ssl = true;
  return { ...(ssl ? { ssl } : {}), ...(config.sasl ? { sasl: saslOptions(config.sasl) } : {}) };
}

function saslOptions({ mechanism, username, password }: NonNullable<KafkaUsageConfig['sasl']>): SASLOptions {
  switch (mechanism) {
    case 'plain':
      return { mechanism, username, password };
    case 'scram-sha-256':
      return { mechanism, username, password };
    case 'scram-sha-512':
      return { mechanism, username, password };
  }
}

/**
 * Creates the usage topic and its dead-letter topic when they are missing, with `retentionMs`: an
 * event still unstored when the broker deletes it (its default is 7 days) would be skipped
 * silently. Topics that exist keep their settings.
 */
export async function ensureUsageTopics(kafka: Kafka, config: KafkaUsageConfig): Promise<void> {
  const admin: Admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const configEntries = [{ name: 'retention.ms', value: String(config.retentionMs) }];
    const topics = [config.topic, config.dlqTopic]
      .filter((topic) => !existing.has(topic))
      .map((topic) => ({ topic, numPartitions: topic === config.topic ? config.partitions : 1, replicationFactor: config.replicationFactor, configEntries }));
    if (topics.length > 0) await admin.createTopics({ topics, waitForLeaders: true });
  } finally {
    await admin.disconnect();
  }
}

/** Rejects with a timeout error when `promise` has not settled within `ms`. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * A header value as kafkajs decodes it. Its types (`IHeaders` of kafkajs) say bytes or text, but a header sent
 * without a value (any producer may send one) arrives as `null`, alone or among repeats of its name.
 */
export type HeaderValue = Buffer | string | ReadonlyArray<Buffer | string | null> | null | undefined;

/**
 * A consumed record's headers as text; Kafka allows a name to repeat, and the first with a value
 * counts. A header without a value is left out: it says nothing, and turning it into text would
 * throw inside the consumer, which then retries the same record for good.
 */
export function headerText(headers: Readonly<Record<string, HeaderValue>> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers ?? {})) {
    const first = firstHeader(value);
    if (first !== undefined) out[name] = first.toString();
  }
  return out;
}

/** One header's value as Kafka hands it (bytes or text): the first with a value when the name repeats; undefined when none has one. */
export function firstHeader(value: HeaderValue): Buffer | string | undefined {
  const values: ReadonlyArray<Buffer | string | null | undefined> = isList(value) ? value : [value];
  return values.find((v): v is Buffer | string => v !== null && v !== undefined);
}

function isList(value: HeaderValue): value is ReadonlyArray<Buffer | string | null> {
  return Array.isArray(value);
}
