import type { usagev1 } from '@openrouter/contracts';

/** One usage event on the bus: the protobuf payload, keyed by organisation, with headers. */
export interface UsageMessage {
  key: string;
  value: Buffer;
  /** `content-type`, `schema`, and trace context (`traceparent`, `tracestate`) when there is one. */
  headers: Record<string, string>;
  /** Where a consumed message came from (Kafka), for dead letters and logs. */
  origin?: { topic: string; partition: number; offset: string };
  /** Set by a source that could not read the message (an undecodable batch): why it can never be stored. */
  poison?: string;
  /**
   * The event itself, when the message never left the process (the embedded mode's bus):
   * consumers read it (`readUsageMessage`) instead of decoding `value`, which is then encoded
   * only if something asks for the bytes (a dead letter). It is a copy taken when the event was
   * published (`inProcessUsageMessage`), which nobody changes.
   */
  event?: usagev1.UsageEvent;
}

export interface PublishOptions {
  /** Extra message headers, e.g. W3C trace context. */
  headers?: Record<string, string>;
}

export interface PublisherStatus {
  /** `direct`: events go to the bus; `outbox`: the bus is unreachable and events wait on disk. */
  mode: 'direct' | 'outbox';
  /** Events accepted but not yet on the bus (batching, outbox). */
  pending: number;
  outboxBytes: number;
}

/**
 * Where ingress sends usage events. `publish` resolves once the event is durable: acknowledged by
 * the bus, or (when the bus is unreachable) fsynced to the local outbox. The event is taken as it
 * is when `publish` is called (encoded, or copied in process): what the caller changes in its
 * object afterwards is not recorded. `close` flushes.
 */
export interface UsagePublisher {
  publish(event: usagev1.UsageEvent, options?: PublishOptions): Promise<void>;
  status(): PublisherStatus;
  close(): Promise<void>;
}

/**
 * Handles one batch of messages; resolving means the batch is stored and may be committed,
 * throwing means nothing of it is committed and the same batch comes again.
 */
export type UsageBatchHandler = (messages: UsageMessage[]) => Promise<void>;

/** Where billing reads usage events from. */
export interface UsageSource {
  start(handler: UsageBatchHandler): Promise<void>;
  /** Messages on the bus not yet committed by this consumer (summed over partitions). */
  lag(): Promise<number>;
  close(): Promise<void>;
}

/** Where messages that can never be stored go, with the reason. */
export interface DeadLetterSink {
  send(messages: Array<{ message: UsageMessage; reason: string }>): Promise<void>;
  close(): Promise<void>;
}
