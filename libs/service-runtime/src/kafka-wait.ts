import type { UsageConfig } from '@openrouter/config';
import type { Logger } from '@openrouter/observability';
import { createKafka, ensureUsageTopics } from '@openrouter/usage';
import { DependencyWait } from './dependency-wait';

/** The setting that says where the brokers are (its key, and the variable the shipped configurations read it from). */
export const KAFKA_SETTING = 'usage.kafka.brokers / KAFKA_BROKERS';

/** Socket failures that pass by themselves: nothing listens yet, a name not in DNS yet, a connection broken. */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE', 'ECONNABORTED']);

/** kafkajs's errors of a cluster that is away or still electing its controller and leaders. */
const AWAY = new Set(['KafkaJSConnectionClosedError', 'KafkaJSRequestTimeoutError', 'KafkaJSBrokerNotFound', 'KafkaJSMetadataNotLoaded', 'KafkaJSLockTimeout']);

/**
 * Why a failure to reach the brokers (or to create the usage topics on them) passes by itself, in a
 * few words; undefined when it does not: a refused credential, a certificate the client rejects, a
 * topic setting the cluster refuses. kafkajs wraps the failure of its last retry
 * (`KafkaJSNumberOfRetriesExceeded`): the causes say why. Read by name and shape, as
 * `clickHouseOutage` reads its client's errors.
 */
export function kafkaOutage(error: unknown): string | undefined {
  for (let current = error, depth = 0; typeof current === 'object' && current !== null && depth < 5; depth++) {
    const { name, code, type, retriable, message = '', cause } = current as { name?: unknown; code?: unknown; type?: unknown; retriable?: unknown; message?: string; cause?: unknown };
    if (name === 'KafkaJSConnectionError') {
      // A TLS failure is a connection error too, with the certificate's code: not an outage.
      if (typeof code === 'string') return NETWORK_CODES.has(code) ? message : undefined;
      return message === 'Connection timeout' ? message : undefined;
    }
    if (typeof name === 'string' && AWAY.has(name)) return message || name;
    // A broker's answer: retriable ones (LEADER_NOT_AVAILABLE, a coordinator loading) pass by themselves.
    if (name === 'KafkaJSProtocolError') return retriable === true ? message || String(type) : undefined;
    if (cause === undefined || cause === current) return undefined;
    current = cause;
  }
  return undefined;
}

export interface KafkaWaitOptions {
  /** Backoff between tries: doubled after each, from `initialDelayMs` up to `maxDelayMs`. */
  initialDelayMs: number;
  maxDelayMs: number;
  /** Aborted when the service is told to stop while it starts: the wait stops. */
  signal?: AbortSignal | undefined;
}

/**
 * Waits for the Kafka brokers and creates the usage topics on them (`ensureUsageTopics`), as billing
 * and alerting need before they consume: brokers not reachable yet (a Kafka started, or restarted,
 * alongside the service) are tried again with backoff, the service not ready meanwhile and its
 * readiness naming the setting, instead of failing the start once kafkajs gives up on its own
 * retries, which on Kubernetes restarted the service into a growing CrashLoopBackOff delay that
 * outlasted the broker's outage. A configuration error (a refused credential or certificate) ends
 * the wait. Its own client (`<clientName>-setup`), with kafkajs's log lines at debug: each try
 * fails in several of them, and the wait logs the outage once.
 */
export function waitForUsageBus(config: UsageConfig, clientName: string, logger: Logger, options: KafkaWaitOptions): DependencyWait<void> {
  const kafka = createKafka(config.kafka, logger, `${clientName}-setup`, { quiet: () => true });
  return new DependencyWait({
    what: 'the usage bus (Kafka)',
    location: config.kafka.brokers.join(','),
    setting: KAFKA_SETTING,
    // A try takes kafkajs's own retries (seconds) to fail; a stop does not wait for it to.
    attempt: () => untilAborted(ensureUsageTopics(kafka, config.kafka), options.signal),
    outage: kafkaOutage,
    logger,
    initialDelayMs: options.initialDelayMs,
    maxDelayMs: options.maxDelayMs,
    signal: options.signal,
  });
}

/** `work`, or a rejection as soon as `signal` aborts (`work` goes on, its outcome ignored). */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return work;
  return new Promise<T>((resolve, reject) => {
    const abort = (): void => reject(new Error('stopped'));
    if (signal.aborted) abort();
    signal.addEventListener('abort', abort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', abort));
  });
}
