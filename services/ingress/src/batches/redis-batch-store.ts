import { createHmac } from 'node:crypto';
import type { Redis } from 'ioredis';
import { sealBytes, SealKeys, sealText, type StoreSecrets } from '../access/sealed-text';
import { isBatchId, parseBatchRecord, type BatchRecord } from './batch-record';
import type { BatchStore } from './batch-store';
import { openSealedSlices, SLICE_BYTES, stageSealed } from './sealed-slices';

/** Renews a claim only while it is the holder's. */
const RENEW = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0`;
/** Writes a batch only while it is as it was read. */
const SWAP = `if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL') return 1 end return 0`;
/**
 * Keeps a line's result only while its batch is active: a replica whose claim lapsed, writing a
 * result after another ended the batch (and dropped its results), would otherwise keep a results
 * hash for days that nothing removes. KEYS: results, active set. ARGV: id, index, sealed result,
 * how long the results are kept (ms).
 */
const SAVE_RESULT = `
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
`;
/** Releases a claim only while it is the holder's. */
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

/**
 * `create` for a batch whose sealed input was written in slices to a staging key: its tag is
 * written in its place, the staging key becomes the input, and the batch is stored and made active,
 * all at once, so that neither a reader nor a runner sees the batch before its input is whole.
 * Nothing is stored when the staging key is gone (expired). KEYS: batch, owner's list, input,
 * staging, active set. ARGV: batch JSON, tag, expiry (Unix ms), score, id.
 */
const CREATE_STAGED = `
if redis.call('EXISTS', KEYS[4]) == 0 then return 0 end
redis.call('SETRANGE', KEYS[4], 12, ARGV[2])
redis.call('RENAME', KEYS[4], KEYS[3])
redis.call('PEXPIREAT', KEYS[3], ARGV[3])
redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[5])
redis.call('PEXPIREAT', KEYS[2], ARGV[3])
redis.call('SADD', KEYS[5], ARGV[5])
return 1
`;

/** The key batches' inputs and results are sealed under, derived from `access.keyHashSecret`. */
function batchSealKey(keyHashSecret: string): Buffer {
  return createHmac('sha256', keyHashSecret).update('batches\0seal').digest();
}

/**
 * Batches in the access store's Redis, shared by every ingress replica:
 * - `batch:{id}` the batch (JSON), kept `retentionMs` after its creation (at least a day past its window);
 * - `batches:owner:{owner}` its owner's batches by creation time, for listing;
 * - `batches:active` the batches to run or finish; `batch:{id}:claim` the replica running one;
 * - `batch:{id}:input` and `batch:{id}:results` (line index → result) sealed, since they hold
 *   prompts and answers: AES-256-GCM under a key derived from `access.keyHashSecret`, each value
 *   with its batch and line as context.
 */
export class RedisBatchStore implements BatchStore {
  private readonly sealKeys: SealKeys;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    /** `access.keyHashSecret`, and the previous ones while it is rotated: what was sealed under those still opens. */
    secrets: StoreSecrets | string,
    private readonly retentionMs: number,
  ) {
    this.sealKeys = new SealKeys(batchSealKey, secrets);
  }

  private key(...parts: string[]): string {
    return `${this.prefix}${parts.join(':')}`;
  }

  private expiryOf(batch: BatchRecord): number {
    return Math.max(batch.createdAt * 1000 + this.retentionMs, batch.expiresAt * 1000 + 86_400_000);
  }

  async create(batch: BatchRecord, input: Buffer | undefined): Promise<void> {
    const expireAt = this.expiryOf(batch);
    if (input && input.length > SLICE_BYTES) return this.createLarge(batch, input, expireAt);
    const multi = this.redis
      .multi()
      .set(this.key('batch', batch.id), JSON.stringify(batch), 'PXAT', expireAt)
      .zadd(this.key('batches', 'owner', batch.owner), batch.createdAt * 1000 + (Date.now() % 1000), batch.id)
      .pexpireat(this.key('batches', 'owner', batch.owner), expireAt);
    if (input) {
      multi.set(this.key('batch', batch.id, 'input'), sealBytes(this.sealKeys.current, input, `${batch.id}:input`), 'PXAT', expireAt);
      multi.sadd(this.key('batches', 'active'), batch.id);
    }
    await multi.exec();
  }

  /**
   * A batch with a large input, sealed as `create` seals it and sent a slice at a time to a staging
   * key (`stageSealed`), then stored with the batch at once (`CREATE_STAGED`): sealed and sent whole,
   * a 100 MiB input was held four times more (the ciphertext, the sealed value, each command, and
   * the transaction ioredis writes).
   */
  private async createLarge(batch: BatchRecord, input: Buffer, expireAt: number): Promise<void> {
    const staging = this.key('batch', batch.id, 'input', 'staging');
    let stored: unknown;
    try {
      const tag = await stageSealed(this.redis, staging, this.sealKeys.current, input, `${batch.id}:input`);
      stored = await this.redis.eval(
        CREATE_STAGED,
        5,
        this.key('batch', batch.id),
        this.key('batches', 'owner', batch.owner),
        this.key('batch', batch.id, 'input'),
        staging,
        this.key('batches', 'active'),
        JSON.stringify(batch),
        tag,
        String(expireAt),
        String(batch.createdAt * 1000 + (Date.now() % 1000)),
        batch.id,
      );
    } catch (error) {
      // Best effort: what is left expires with the staging key anyway.
      await this.redis.del(staging).catch(() => undefined);
      throw error;
    }
    if (stored !== 1) throw new Error(`batch ${batch.id}: its input expired before it was stored`);
  }

  async get(owner: string, id: string): Promise<BatchRecord | undefined> {
    const batch = await this.byId(id);
    return batch && batch.owner === owner ? batch : undefined;
  }

  async byId(id: string): Promise<BatchRecord | undefined> {
    // Only an id the gateway gives: another (`<id>:claim`, `<id>:results`) would read another key of a batch.
    if (!isBatchId(id)) return undefined;
    const raw = await this.redis.get(this.key('batch', id));
    return raw === null ? undefined : parseBatchRecord(raw, id);
  }

  async list(owner: string, query: { limit: number; after?: string | undefined }): Promise<{ data: BatchRecord[]; hasMore: boolean }> {
    const index = this.key('batches', 'owner', owner);
    let start = 0;
    if (query.after !== undefined) {
      const rank = await this.redis.zrevrank(index, query.after);
      if (rank === null) return { data: [], hasMore: false };
      start = rank + 1;
    }
    // One more than asked tells whether there is more. Ids whose batch has expired are skipped,
    // and dropped from the index once the page is read (dropping them earlier would shift the ranks).
    const data: BatchRecord[] = [];
    const stale: string[] = [];
    while (data.length <= query.limit) {
      const ids = await this.redis.zrevrange(index, start, start + query.limit - data.length);
      if (ids.length === 0) break;
      start += ids.length;
      const raws = await this.redis.mget(ids.map((id) => this.key('batch', id)));
      ids.forEach((id, i) => {
        const raw = raws[i];
        const batch = raw === null || raw === undefined ? undefined : parseBatchRecord(raw, id);
        if (batch) data.push(batch);
        else if (raw === null || raw === undefined) stale.push(id);
      });
    }
    if (stale.length > 0) await this.redis.zrem(index, ...stale);
    return { data: data.slice(0, query.limit), hasMore: data.length > query.limit };
  }

  async update(id: string, change: (batch: BatchRecord) => BatchRecord | undefined): Promise<BatchRecord | undefined> {
    if (!isBatchId(id)) return undefined;
    const key = this.key('batch', id);
    // Compare and set: a change written meanwhile (a cancel while the runner counts) makes the
    // write fail, and the change is made again on what is stored now.
    for (let attempt = 0; attempt < 100; attempt++) {
      const raw = await this.redis.get(key);
      if (raw === null) return undefined;
      const stored = parseBatchRecord(raw, id);
      if (!stored) return undefined;
      const next = change(structuredClone(stored));
      if (!next) return stored;
      if (Number(await this.redis.eval(SWAP, 1, key, raw, JSON.stringify(next))) === 1) return next;
    }
    throw new Error(`batch ${id}: too many concurrent changes`);
  }

  async active(): Promise<string[]> {
    return this.redis.smembers(this.key('batches', 'active'));
  }

  async claim(id: string, holder: string, ms: number): Promise<boolean> {
    return (await this.redis.set(this.key('batch', id, 'claim'), holder, 'PX', ms, 'NX')) === 'OK';
  }

  async renew(id: string, holder: string, ms: number): Promise<boolean> {
    return Number(await this.redis.eval(RENEW, 1, this.key('batch', id, 'claim'), holder, String(ms))) === 1;
  }

  async release(id: string, holder: string): Promise<void> {
    await this.redis.eval(RELEASE, 1, this.key('batch', id, 'claim'), holder);
  }

  async input(id: string): Promise<Buffer | undefined> {
    const key = this.key('batch', id, 'input');
    // Its size and first slice at once; a larger input's other slices are read after (an input is
    // never changed, only deleted when its batch ends: one deleted meanwhile reads as gone).
    const replies = await this.redis.multi().strlen(key).getrangeBuffer(key, 0, SLICE_BYTES - 1).exec();
    const [length, first] = (replies ?? []).map(([error, value]) => {
      if (error) throw error;
      return value;
    });
    if (typeof length !== 'number' || length === 0 || !Buffer.isBuffer(first)) return undefined;
    // One that does not open (sealed under a secret no longer accepted, or damaged) never will: it
    // is as if gone, and its batch ends failed (`input_missing`) at once, rather than being tried
    // again every lease until it is given up. Redis away is thrown: the batch is tried again.
    if (first.length < length) return openSealedSlices(this.redis, key, first, length, this.sealKeys.keys, `${id}:input`);
    try {
      return this.sealKeys.openBytes(first, `${id}:input`);
    } catch {
      return undefined;
    }
  }

  async saveResult(id: string, index: number, result: string): Promise<void> {
    const sealed = sealText(this.sealKeys.current, result, `${id}:${index}`);
    await this.redis.eval(SAVE_RESULT, 2, this.key('batch', id, 'results'), this.key('batches', 'active'), id, String(index), sealed, String(7 * 86_400_000));
  }

  async results(id: string): Promise<Map<number, string>> {
    const raw = await this.redis.hgetall(this.key('batch', id, 'results'));
    const results = new Map<number, string>();
    for (const [index, sealed] of Object.entries(raw)) {
      try {
        results.set(Number(index), this.sealKeys.openText(sealed, `${id}:${index}`));
      } catch {
        // Does not open (sealed under a secret no longer accepted, or damaged): as if never kept,
        // its line is run again. (Its batch's input, sealed no later, no longer opens either, when
        // a secret was dropped: the batch then ends failed.)
      }
    }
    return results;
  }

  async finish(id: string): Promise<void> {
    await this.redis
      .multi()
      .srem(this.key('batches', 'active'), id)
      .del(this.key('batch', id, 'input'), this.key('batch', id, 'results'), this.key('batch', id, 'claim'))
      .exec();
  }

  async close(): Promise<void> {}
}
