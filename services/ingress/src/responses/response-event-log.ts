import { EventEmitter } from 'node:events';
import type { ResponseJson } from './response-store';

/** A stream event of a background response, as its clients read it: numbered from 0, in order. */
export type StreamEvent = ResponseJson & { type: string; sequence_number: number };

/** The events after which a response's stream has nothing more: it has ended. */
export const END_EVENTS: ReadonlySet<string> = new Set(['response.completed', 'response.incomplete', 'response.failed']);

/** Another writer appended to the log first (a run whose claim lapsed and was taken over): this one's events were not added. */
export class EventLogConflict extends Error {
  constructor(id: string, expected: number, found: number) {
    super(`the stream events of background response ${id} hold ${found} events, not the ${expected} its writer expected`);
  }
}

/**
 * The stream events of background responses created with `stream: true`
 * (docs/responses-api.md#streaming-a-background-response), kept so that a client can read the
 * stream from any replica, from its start or after the event it saw last. A response's events are
 * numbered 0, 1, 2…: the number is the event's `sequence_number`. One writer appends at a time
 * (the replica that created the response, then the one that runs it), and says where it expects
 * to append, so a writer that lost its claim cannot interleave with the one that took it over.
 */
export interface ResponseEventLog {
  /**
   * Appends `events` as numbers `from`, `from + 1`…, their `sequence_number` set so, all kept until
   * `expiresAtMs` (Unix ms); the number after the last. `EventLogConflict` when the log does not
   * hold exactly `from` events: nothing is appended.
   */
  append(id: string, from: number, events: ResponseJson[], expiresAtMs: number): Promise<number>;
  /** The events numbered above `after`, oldest first, at most `limit`. */
  read(id: string, after: number, limit: number): Promise<StreamEvent[]>;
  /** How many events the log holds (0 when there are none, or they expired). */
  length(id: string): Promise<number>;
  /**
   * Calls `listener` whenever events may have been appended to `id` (soon after they are, on any
   * replica; a notice lost is made up for by a look every `pollMs` at most), until the function
   * returned is called.
   */
  watch(id: string, listener: () => void): () => void;
  delete(id: string): Promise<void>;
  close(): Promise<void>;
}

/** The events of one response in this process. */
interface Log {
  events: StreamEvent[];
  expiresAtMs: number;
  /** Its events' size as JSON (UTF-8 bytes): what it holds of `maxBytes`. */
  bytes: number;
}

/**
 * The stream events in this process: for a gateway without Redis (one replica; gone when it
 * stops). Expired logs are dropped as they are next touched, and by a sweep (once a minute at most)
 * as logs are added; past `maxLogs` responses, the oldest response's log is dropped for a new one,
 * and past `maxBytes` of events in all, the oldest responses' logs but the one added to (a run whose
 * log is dropped goes on without it, see `EventLogConflict`).
 */
export class MemoryResponseEventLog implements ResponseEventLog {
  private readonly logs = new Map<string, Log>();
  private readonly appended = new EventEmitter();
  private sweptAtMs = 0;
  /** The sum of the logs' `bytes`. */
  private bytes = 0;

  constructor(
    private readonly now: () => number = Date.now,
    private readonly maxLogs = 10_000,
    private readonly maxBytes = Number.POSITIVE_INFINITY,
  ) {
    // One listener per stream being read: as many as there are readers.
    this.appended.setMaxListeners(0);
  }

  async append(id: string, from: number, events: ResponseJson[], expiresAtMs: number): Promise<number> {
    const log = this.live(id) ?? { events: [], expiresAtMs, bytes: 0 };
    if (log.events.length !== from) throw new EventLogConflict(id, from, log.events.length);
    if (log.events.length === 0) {
      this.sweep();
      // The oldest first (a Map keeps the order logs were added in).
      for (const oldest of this.logs.keys()) {
        if (this.logs.size < this.maxLogs) break;
        this.drop(oldest);
      }
      this.logs.set(id, log);
    }
    log.expiresAtMs = expiresAtMs;
    for (const event of events) {
      const added = numbered(structuredClone(event), log.events.length);
      log.events.push(added);
      const bytes = Buffer.byteLength(JSON.stringify(added), 'utf8');
      log.bytes += bytes;
      this.bytes += bytes;
    }
    for (const oldest of this.logs.keys()) {
      if (this.bytes <= this.maxBytes) break;
      if (oldest !== id) this.drop(oldest);
    }
    this.appended.emit(id);
    return log.events.length;
  }

  async read(id: string, after: number, limit: number): Promise<StreamEvent[]> {
    const events = this.live(id)?.events ?? [];
    const start = Math.max(0, Math.floor(after) + 1);
    return events.slice(start, start + limit).map((event) => structuredClone(event));
  }

  async length(id: string): Promise<number> {
    return this.live(id)?.events.length ?? 0;
  }

  watch(id: string, listener: () => void): () => void {
    this.appended.on(id, listener);
    return () => this.appended.off(id, listener);
  }

  async delete(id: string): Promise<void> {
    this.drop(id);
    this.appended.emit(id);
  }

  async close(): Promise<void> {
    this.logs.clear();
    this.bytes = 0;
  }

  private live(id: string): Log | undefined {
    const log = this.logs.get(id);
    if (log && log.expiresAtMs <= this.now()) {
      this.drop(id);
      return undefined;
    }
    return log;
  }

  private drop(id: string): void {
    const log = this.logs.get(id);
    if (!log) return;
    this.logs.delete(id);
    this.bytes -= log.bytes;
  }

  /** Drops the expired logs, once a minute at most. */
  private sweep(): void {
    if (this.now() - this.sweptAtMs < 60_000) return;
    this.sweptAtMs = this.now();
    for (const id of [...this.logs.keys()]) this.live(id);
  }
}

/**
 * How far the stream of `id` has gone: its number of events, and whether its last is an end event;
 * undefined when there is no stream (never streamed, or expired).
 */
export async function streamProgress(log: ResponseEventLog, id: string): Promise<{ length: number; ended: boolean } | undefined> {
  const length = await log.length(id);
  if (length === 0) return undefined;
  const [last] = await log.read(id, length - 2, 1);
  return { length, ended: last !== undefined && END_EVENTS.has(last.type) };
}

/** `event` numbered `sequence`, as the log keeps it. */
export function numbered(event: ResponseJson, sequence: number): StreamEvent {
  return { ...event, type: typeof event['type'] === 'string' ? event['type'] : 'error', sequence_number: sequence };
}
