import { MemoryClaims } from '../claims';
import type { ResponseJson, StoredResponse } from './response-store';

/**
 * Where a background response stands until it ends: `queued` (no replica has started it),
 * `in_progress`, or `cancelling` (cancelled while queued or running: the replica that holds it
 * stops it and stores it `cancelled`).
 */
export type PendingState = 'queued' | 'in_progress' | 'cancelling';

/** A background response that has not ended (docs/responses-api.md#background-responses). */
export interface BackgroundJob {
  /** The response as a retrieval shows it until it ends (status `queued`, no output), with its input items and conversation. */
  record: StoredResponse;
  /** The key that created it: it runs as that key, at its limits and budgets. */
  keyId: string;
  /** The Responses request as the client sent it, without `background`. */
  request: ResponseJson;
  /** The creating request's headers that steer it (`x-openrouter-tags`, `-app`, `-user`, `-route`, `-models`, `-cache`, `-cache-ttl`), given to its run. */
  headers: Record<string, string>;
}

/**
 * Background responses until they end, shared by every replica that runs them. A response is
 * `active` from its creation until `finish`; the replica running it holds a claim that it
 * renews, and another replica takes it over when the claim lapses. Once it ends its record is a
 * stored response like any other (`ResponseStore`), and `finish` drops it here.
 */
export interface BackgroundStore {
  /**
   * Queues a new background response, kept until `expiresAtMs` at most (Unix ms): false, and
   * nothing stored, when `maxPending` are queued or running already.
   */
  create(job: BackgroundJob, expiresAtMs: number, maxPending: number): Promise<boolean>;
  /** The owner's pending response and its state, or undefined (none, ended, another owner's). */
  get(owner: string, id: string): Promise<{ job: BackgroundJob; state: PendingState } | undefined>;
  /** The pending response, whoever owns it (its runner's read), or undefined. */
  byId(id: string): Promise<{ job: BackgroundJob; state: PendingState } | undefined>;
  /** The ids of the pending responses, oldest first, at most `limit`. */
  active(limit: number): Promise<string[]>;
  /** How many responses are pending. */
  count(): Promise<number>;
  /** When the oldest pending response was queued (Unix ms), or undefined when none is. */
  oldest(): Promise<number | undefined>;
  /** Claims a pending response for `holder` for `ms`, when no one holds it; true when claimed. One that expired is dropped from the active ones. */
  claim(id: string, holder: string, ms: number): Promise<boolean>;
  /** Extends `holder`'s claim; false when it is no longer its own. */
  renew(id: string, holder: string, ms: number): Promise<boolean>;
  release(id: string, holder: string): Promise<void>;
  /** `queued` becomes `in_progress`; the state after (undefined when the response is no longer pending). */
  start(id: string): Promise<PendingState | undefined>;
  /** `queued` or `in_progress` becomes `cancelling`; the state after (undefined when the response is no longer pending). */
  cancel(id: string): Promise<PendingState | undefined>;
  /** The state, or undefined when the response is no longer pending. */
  state(id: string): Promise<PendingState | undefined>;
  /** The response has ended (its record is stored) or expired: it is dropped, with its claim. */
  finish(id: string): Promise<void>;
  close(): Promise<void>;
}

/** Keeps the pending responses in this process: for a gateway without Redis (one replica; gone when it stops). */
export class MemoryBackgroundStore implements BackgroundStore {
  private readonly jobs = new Map<string, { job: BackgroundJob; state: PendingState; expiresAtMs: number; queuedAtMs: number }>();
  private readonly claims: MemoryClaims;

  constructor(private readonly now: () => number = Date.now) {
    this.claims = new MemoryClaims(now);
  }

  async create(job: BackgroundJob, expiresAtMs: number, maxPending: number): Promise<boolean> {
    if ((await this.count()) >= maxPending) return false;
    if (this.jobs.has(job.record.id)) throw new Error(`background response ${job.record.id} exists already`);
    this.jobs.set(job.record.id, { job: structuredClone(job), state: 'queued', expiresAtMs, queuedAtMs: this.now() });
    return true;
  }

  async get(owner: string, id: string): Promise<{ job: BackgroundJob; state: PendingState } | undefined> {
    const found = await this.byId(id);
    return found && found.job.record.owner === owner ? found : undefined;
  }

  async byId(id: string): Promise<{ job: BackgroundJob; state: PendingState } | undefined> {
    const entry = this.live(id);
    return entry && { job: structuredClone(entry.job), state: entry.state };
  }

  async active(limit: number): Promise<string[]> {
    this.dropExpired();
    return [...this.jobs.keys()].slice(0, limit);
  }

  async count(): Promise<number> {
    this.dropExpired();
    return this.jobs.size;
  }

  async oldest(): Promise<number | undefined> {
    this.dropExpired();
    const [first] = this.jobs.values();
    return first && first.queuedAtMs;
  }

  async claim(id: string, holder: string, ms: number): Promise<boolean> {
    return this.live(id) !== undefined && this.claims.claim(id, holder, ms);
  }

  async renew(id: string, holder: string, ms: number): Promise<boolean> {
    return this.claims.renew(id, holder, ms);
  }

  async release(id: string, holder: string): Promise<void> {
    this.claims.release(id, holder);
  }

  async start(id: string): Promise<PendingState | undefined> {
    const entry = this.live(id);
    if (entry?.state === 'queued') entry.state = 'in_progress';
    return entry?.state;
  }

  async cancel(id: string): Promise<PendingState | undefined> {
    const entry = this.live(id);
    if (entry) entry.state = 'cancelling';
    return entry?.state;
  }

  async state(id: string): Promise<PendingState | undefined> {
    return this.live(id)?.state;
  }

  async finish(id: string): Promise<void> {
    this.jobs.delete(id);
    this.claims.drop(id);
  }

  async close(): Promise<void> {}

  private live(id: string): { job: BackgroundJob; state: PendingState; expiresAtMs: number; queuedAtMs: number } | undefined {
    const entry = this.jobs.get(id);
    if (entry && entry.expiresAtMs <= this.now()) {
      this.jobs.delete(id);
      this.claims.drop(id);
      return undefined;
    }
    return entry;
  }

  private dropExpired(): void {
    for (const id of [...this.jobs.keys()]) this.live(id);
  }
}
