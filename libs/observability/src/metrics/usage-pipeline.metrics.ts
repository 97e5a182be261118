import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { FAST_BUCKETS } from './metrics-registry';

/**
 * How long a scrape waits for the consumer lag. The read asks the broker, and a broker that does
 * not answer would hold the scrape past Prometheus's scrape timeout, losing every series with it.
 */
export const LAG_READ_TIMEOUT_MS = 1_000;

/** The value `read` resolves to within `ms`; undefined when it fails or takes longer (a metric read at scrape time that must not hold the scrape). */
export async function within<T>(read: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)));
  try {
    return await Promise.race([read.catch(() => undefined), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export interface PublisherReading {
  mode: 'direct' | 'outbox';
  pending: number;
  outboxBytes: number;
}

/** The producer side of the usage pipeline (ingress): outbox depth and lost events. */
export class UsageProducerMetrics {
  readonly errors: Counter<'stage'>;

  constructor(registry: Registry, read: () => PublisherReading) {
    const registers = [registry];
    this.errors = new Counter({ name: 'openrouter_usage_producer_errors_total', help: 'Usage events the producer could not make durable (neither Kafka nor the outbox took them).', labelNames: ['stage'], registers });
    new Gauge({
      name: 'openrouter_usage_outbox_depth',
      help: 'Usage events accepted and not yet on the bus (batching, or waiting in the outbox while Kafka is unreachable).',
      registers,
      collect() {
        this.set(read().pending);
      },
    });
    new Gauge({
      name: 'openrouter_usage_outbox_bytes',
      help: 'Bytes held in the durable usage outbox.',
      registers,
      collect() {
        this.set(read().outboxBytes);
      },
    });
    new Gauge({
      name: 'openrouter_usage_outbox_active',
      help: '1 while usage events go to the outbox because Kafka is unreachable.',
      registers,
      collect() {
        this.set(read().mode === 'outbox' ? 1 : 0);
      },
    });
  }
}

/** The consumer side (billing, alerting): lag and store writes. */
export class UsageConsumerMetrics {
  readonly insertDuration: Histogram<'table' | 'outcome'>;
  readonly events: Counter<'result'>;

  private lag: () => Promise<number> = async () => 0;
  private running: (() => boolean | undefined) | undefined;

  constructor(registry: Registry, consumer: string) {
    const read = (): Promise<number> => this.lag();
    const registers = [registry];
    this.insertDuration = new Histogram({ name: 'openrouter_clickhouse_insert_duration_seconds', help: 'ClickHouse insert latency, by table and outcome.', labelNames: ['table', 'outcome'], buckets: FAST_BUCKETS, registers });
    this.events = new Counter({ name: 'openrouter_usage_events_consumed_total', help: 'Usage events consumed, by result (stored, duplicate, dead_letter).', labelNames: ['result'], registers });
    new Gauge({
      name: 'openrouter_usage_consumer_lag',
      help: 'Usage messages on the bus not yet committed by this consumer group.',
      labelNames: ['group'],
      registers,
      async collect() {
        // The broker is unreachable or slow: the last value stays; readiness reports the outage.
        const lag = await within(read(), LAG_READ_TIMEOUT_MS);
        if (lag !== undefined) this.set({ group: consumer }, lag);
      },
    });
    const running = (): boolean | undefined => this.running?.();
    new Gauge({
      name: 'openrouter_usage_consumer_running',
      help: '1 while the Kafka consumer consumes; 0 while it is stopped after a non-retriable error (e.g. a batch it cannot decode) and fresh consumers are tried.',
      labelNames: ['group'],
      registers,
      collect() {
        const value = running();
        if (value === undefined) this.reset();
        else this.set({ group: consumer }, value ? 1 : 0);
      },
    });
  }

  /**
   * Where the running gauge reads from; without it (an in-process bus), or while it reads
   * undefined (a standby replica, which runs no consumer), the gauge has no series: no false 0.
   */
  readRunningFrom(running: () => boolean | undefined): void {
    this.running = running;
  }

  /** Where the lag gauge reads from at scrape time. */
  readLagFrom(lag: () => Promise<number>): void {
    this.lag = lag;
  }

  /** Times a store write, recording its outcome. */
  async timeInsert<T>(table: string, write: () => Promise<T>): Promise<T> {
    const end = this.insertDuration.startTimer({ table });
    try {
      const result = await write();
      end({ outcome: 'ok' });
      return result;
    } catch (error) {
      end({ outcome: 'error' });
      throw error;
    }
  }
}
