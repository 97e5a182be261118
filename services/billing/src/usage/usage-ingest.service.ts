import type { usagev1 } from '@openrouter/contracts';
import type { Logger } from '@openrouter/observability';
import { decodeUsageMessage, type DeadLetterSink, type UsageMessage } from '@openrouter/usage';
import type { UsageEventRepository } from './usage-event.repository';

export interface IngestStats {
  stored: number;
  duplicates: number;
  deadLettered: number;
  batches: number;
}

/**
 * Stores a batch of usage messages so each event is counted once: poison messages (undecodable
 * or invalid) go to the dead letters with the reason; of the rest, events already stored and
 * repeats within the batch are dropped by event id; the others are inserted in one write.
 * Throwing means nothing may be committed: the same batch comes again, and is safe to repeat.
 */
export class UsageIngestService {
  private readonly counters: IngestStats = { stored: 0, duplicates: 0, deadLettered: 0, batches: 0 };

  constructor(
    private readonly repository: UsageEventRepository,
    private readonly deadLetters: DeadLetterSink,
    private readonly logger: Logger,
  ) {}

  stats(): IngestStats {
    return { ...this.counters };
  }

  readonly handle = async (messages: UsageMessage[]): Promise<void> => {
    const events = new Map<string, usagev1.UsageEvent>();
    const poison: Array<{ message: UsageMessage; reason: string }> = [];
    let duplicates = 0;
    for (const message of messages) {
      const decoded = decodeUsageMessage(message.value);
      if (!decoded.ok) poison.push({ message, reason: decoded.reason });
      else if (events.has(decoded.event.eventId)) duplicates++;
      else events.set(decoded.event.eventId, decoded.event);
    }
    const stored = events.size > 0 ? await this.repository.storedIds([...events.keys()]) : new Set<string>();
    const fresh = [...events.values()].filter((e) => !stored.has(e.eventId));
    await this.repository.insert(fresh);
    if (poison.length > 0) {
      await this.deadLetters.send(poison);
      for (const p of poison) this.logger.warn({ reason: p.reason, origin: p.message.origin }, 'usage message sent to the dead-letter topic');
    }
    this.counters.stored += fresh.length;
    this.counters.duplicates += duplicates + stored.size;
    this.counters.deadLettered += poison.length;
    this.counters.batches++;
  };
}
