import type { Logger, UsageConsumerMetrics } from '@openrouter/observability';
import { readUsageMessage, type DeadLetterSink, type UsageMessage } from '@openrouter/usage';
import type { EncodedUsageRow, UsageEventRepository } from './usage-event.repository';

export interface IngestStats {
  stored: number;
  duplicates: number;
  deadLettered: number;
  batches: number;
}

/** Messages decoded, validated and encoded as rows: the CPU part of storing them. */
export interface PreparedUsage {
  /** The encoded row per event id, each id once. */
  readonly rows: Map<string, EncodedUsageRow>;
  readonly poison: Array<{ message: UsageMessage; reason: string }>;
  /** Repeats of an event id within the messages. */
  readonly duplicates: number;
  /** How many messages were prepared. */
  readonly size: number;
}

/**
 * Stores usage messages so each event is counted once: poison messages (undecodable or invalid)
 * go to the dead letters with the reason; of the rest, events already stored and repeats are
 * dropped by event id; the others are inserted in one write.
 *
 * Two stages, so a consumer can overlap them: `prepare` decodes and encodes (CPU, synchronous),
 * `store` looks up the stored ids and writes (I/O, one at a time). Throwing from `store` means
 * nothing may be committed: the same messages come again, and are safe to repeat.
 */
export class UsageIngestService {
  private readonly counters: IngestStats = { stored: 0, duplicates: 0, deadLettered: 0, batches: 0 };

  constructor(
    private readonly repository: UsageEventRepository,
    private readonly deadLetters: DeadLetterSink,
    private readonly logger: Logger,
    /** Counts every event by what became of it (`openrouter_usage_events_consumed_total`). */
    private readonly metrics?: Pick<UsageConsumerMetrics, 'events'>,
  ) {}

  stats(): IngestStats {
    return { ...this.counters };
  }

  /** Both stages for one batch. */
  readonly handle = (messages: UsageMessage[]): Promise<void> => this.store([this.prepare(messages)]);

  readonly prepare = (messages: UsageMessage[]): PreparedUsage => {
    const rows = new Map<string, EncodedUsageRow>();
    const poison: PreparedUsage['poison'] = [];
    let duplicates = 0;
    for (const message of messages) {
      const decoded = readUsageMessage(message);
      if (!decoded.ok) poison.push({ message, reason: decoded.reason });
      else if (rows.has(decoded.event.eventId)) duplicates++;
      else rows.set(decoded.event.eventId, this.repository.encode(decoded.event));
    }
    return { rows, poison, duplicates, size: messages.length };
  };

  /** Stores prepared batches together, as one insert. */
  readonly store = async (batches: readonly PreparedUsage[]): Promise<void> => {
    const [first, ...rest] = batches;
    if (!first) return;
    let { rows, duplicates } = first;
    const poison = rest.length === 0 ? first.poison : batches.flatMap((b) => b.poison);
    if (rest.length > 0) {
      rows = new Map(rows);
      for (const batch of rest) {
        duplicates += batch.duplicates;
        for (const [id, row] of batch.rows) {
          if (rows.has(id)) duplicates++;
          else rows.set(id, row);
        }
      }
    }
    const stored = rows.size > 0 ? await this.repository.storedIds([...rows.keys()]) : new Set<string>();
    const fresh: EncodedUsageRow[] = [];
    for (const [id, row] of rows) if (!stored.has(id)) fresh.push(row);
    await this.repository.insertRows(fresh);
    if (poison.length > 0) {
      await this.deadLetters.send(poison);
      for (const p of poison) this.logger.warn({ reason: p.reason, origin: p.message.origin }, 'usage message sent to the dead-letter topic');
    }
    this.counters.stored += fresh.length;
    this.counters.duplicates += duplicates + stored.size;
    this.counters.deadLettered += poison.length;
    this.counters.batches++;
    if (this.metrics) {
      if (fresh.length > 0) this.metrics.events.inc({ result: 'stored' }, fresh.length);
      if (duplicates + stored.size > 0) this.metrics.events.inc({ result: 'duplicate' }, duplicates + stored.size);
      if (poison.length > 0) this.metrics.events.inc({ result: 'dead_letter' }, poison.length);
    }
  };
}
