import { GatewayError } from '@openrouter/errors';
import { MemoryClaims } from '../claims';
import { FINAL_STATUSES, type BatchRecord } from './batch-record';

export const BATCH_STORE = Symbol('BATCH_STORE');

/**
 * Batches, their input and the results of their lines, shared by every replica that runs them.
 * A batch is `active` from its creation (unless it failed validation) until `finish`; the replica
 * running it holds a claim that it renews, and another replica takes it over when the claim
 * lapses, skipping the lines whose results are stored.
 */
export interface BatchStore {
  /** Stores a new batch (and, when it will run, a copy of its input: the file may be deleted meanwhile). */
  create(batch: BatchRecord, input: Buffer | undefined): Promise<void>;
  /** The batch of that owner, or undefined. */
  get(owner: string, id: string): Promise<BatchRecord | undefined>;
  /** The batch, whoever owns it (for the admin API), or undefined. */
  byId(id: string): Promise<BatchRecord | undefined>;
  /** Newest first. */
  list(owner: string, query: { limit: number; after?: string | undefined }): Promise<{ data: BatchRecord[]; hasMore: boolean }>;
  /**
   * Changes a batch as one step against concurrent changes (a cancel while its runner counts):
   * `change` gets the stored batch and returns the new one, or undefined to leave it. The batch as
   * stored after, or undefined when there is none.
   */
  update(id: string, change: (batch: BatchRecord) => BatchRecord | undefined): Promise<BatchRecord | undefined>;
  /** The ids of the batches still to run or to finish. */
  active(): Promise<string[]>;
  /** Claims an active batch for `holder` for `ms`, when no one holds it; true when claimed. */
  claim(id: string, holder: string, ms: number): Promise<boolean>;
  /** Extends `holder`'s claim; false when it is no longer its own. */
  renew(id: string, holder: string, ms: number): Promise<boolean>;
  release(id: string, holder: string): Promise<void>;
  /** The input kept at creation; undefined when it is gone, or no longer opens (as if gone). */
  input(id: string): Promise<Buffer | undefined>;
  /**
   * Keeps the result of line `index` (its output or error line, JSON) while the batch is active:
   * after `finish` (another replica ended it, this one's claim having lapsed) it is dropped.
   */
  saveResult(id: string, index: number, result: string): Promise<void>;
  /** The results kept, by line index; one that no longer opens is left out, as if never kept (its line runs again). */
  results(id: string): Promise<Map<number, string>>;
  /** The batch has ended: its input and results go, and it is no longer active. */
  finish(id: string): Promise<void>;
  close(): Promise<void>;
}

/** Keeps everything in this process: for a gateway without Redis (one replica; gone when it stops). */
export class MemoryBatchStore implements BatchStore {
  private readonly batches = new Map<string, BatchRecord>();
  private readonly inputs = new Map<string, Buffer>();
  private readonly resultsOf = new Map<string, Map<number, string>>();
  private readonly claims: MemoryClaims;
  private readonly activeIds = new Set<string>();

  constructor(now: () => number = Date.now) {
    this.claims = new MemoryClaims(now);
  }

  async create(batch: BatchRecord, input: Buffer | undefined): Promise<void> {
    this.batches.set(batch.id, structuredClone(batch));
    if (input) {
      this.inputs.set(batch.id, Buffer.from(input));
      this.activeIds.add(batch.id);
    }
  }

  async get(owner: string, id: string): Promise<BatchRecord | undefined> {
    const batch = this.batches.get(id);
    return batch && batch.owner === owner ? structuredClone(batch) : undefined;
  }

  async byId(id: string): Promise<BatchRecord | undefined> {
    const batch = this.batches.get(id);
    return batch && structuredClone(batch);
  }

  async list(owner: string, query: { limit: number; after?: string | undefined }): Promise<{ data: BatchRecord[]; hasMore: boolean }> {
    const mine = [...this.batches.values()].filter((b) => b.owner === owner).reverse();
    const start = query.after === undefined ? 0 : mine.findIndex((b) => b.id === query.after) + 1;
    if (query.after !== undefined && start === 0) return { data: [], hasMore: false };
    const page = mine.slice(start, start + query.limit);
    return { data: page.map((b) => structuredClone(b)), hasMore: start + query.limit < mine.length };
  }

  async update(id: string, change: (batch: BatchRecord) => BatchRecord | undefined): Promise<BatchRecord | undefined> {
    const stored = this.batches.get(id);
    if (!stored) return undefined;
    const next = change(structuredClone(stored));
    if (next) this.batches.set(id, structuredClone(next));
    return structuredClone(this.batches.get(id));
  }

  async active(): Promise<string[]> {
    return [...this.activeIds];
  }

  async claim(id: string, holder: string, ms: number): Promise<boolean> {
    return this.claims.claim(id, holder, ms);
  }

  async renew(id: string, holder: string, ms: number): Promise<boolean> {
    return this.claims.renew(id, holder, ms);
  }

  async release(id: string, holder: string): Promise<void> {
    this.claims.release(id, holder);
  }

  async input(id: string): Promise<Buffer | undefined> {
    return this.inputs.get(id);
  }

  async saveResult(id: string, index: number, result: string): Promise<void> {
    if (!this.activeIds.has(id)) return;
    let results = this.resultsOf.get(id);
    if (!results) this.resultsOf.set(id, (results = new Map()));
    results.set(index, result);
  }

  async results(id: string): Promise<Map<number, string>> {
    return new Map(this.resultsOf.get(id));
  }

  async finish(id: string): Promise<void> {
    this.activeIds.delete(id);
    this.inputs.delete(id);
    this.resultsOf.delete(id);
    this.claims.drop(id);
  }

  async close(): Promise<void> {}
}

/**
 * Cancels a batch that has not ended (`cancelling`: its runner starts no line after, and ends it
 * `cancelled`); a batch cancelled already is answered as it is; one that has ended otherwise, or is
 * being finalized, is 409.
 */
export async function cancelBatch(store: BatchStore, id: string, now: number): Promise<BatchRecord | undefined> {
  const updated = await store.update(id, (b) => (b.status === 'validating' || b.status === 'in_progress' ? { ...b, status: 'cancelling', cancellingAt: now } : undefined));
  if (updated && updated.status !== 'cancelling' && updated.status !== 'cancelled') {
    throw new GatewayError('conflict', `Cannot cancel a batch with status '${updated.status}'.`, { param: 'id', code: FINAL_STATUSES.has(updated.status) ? 'batch_ended' : 'batch_finalizing' });
  }
  return updated;
}
