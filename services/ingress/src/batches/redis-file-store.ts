import type { Redis } from 'ioredis';
import { z } from 'zod';
import { sealBytes, SealKeys, type StoreSecrets } from '../access/sealed-text';
import { fileSealKey, TOMBSTONE_MS, type FileListQuery, type FileStore, type StoredFile } from './file-store';
import { openSealedSlices, SLICE_BYTES, stageSealed } from './sealed-slices';

/** A file's record as kept in Redis: read back through this schema, never trusted as it is. */
const storedFileSchema = z.object({
  id: z.string(),
  owner: z.string(),
  bytes: z.number().int().nonnegative(),
  createdAt: z.number(),
  filename: z.string(),
  purpose: z.enum(['batch', 'batch_output']),
  expiresAt: z.number(),
});

/**
 * The end of both writes of a file (whole, or staged in slices): its record, and its id in its
 * owner's list (scored by creation time), which expires with the last file it lists. KEYS[1]: the
 * record, KEYS[3]: the list. ARGV[1]: record JSON, ARGV[3]: expiry (Unix ms), ARGV[4]: creation
 * time (score), ARGV[5]: id.
 */
const RECORD_AND_LIST = `
redis.call('SET', KEYS[1], ARGV[1])
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[5])
local ttl = redis.call('PTTL', KEYS[3])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
if ttl < 0 or now + ttl < tonumber(ARGV[3]) then redis.call('PEXPIREAT', KEYS[3], ARGV[3]) end
return 1
`;

/**
 * Stores a file: its record and sealed content, each expiring at the file's expiry, and its id in
 * its owner's list (scored by creation time), which expires with the last file it lists.
 * KEYS: record, content, owner's list. ARGV: record JSON, sealed content, expiry (Unix ms),
 * creation time (score), id.
 */
const PUT = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('PEXPIREAT', KEYS[2], ARGV[3])
` + RECORD_AND_LIST;

/**
 * `PUT` for a file whose sealed content was written in slices to a staging key (`putLarge`): its
 * tag is written in its place, and the staging key becomes the content; nothing is kept when the
 * id exists already. KEYS: record, content, owner's list, staging. ARGV: record JSON, tag, expiry
 * (Unix ms), creation time (score), id.
 */
const PUT_STAGED = `
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[4]) == 0 then
  redis.call('DEL', KEYS[4])
  return 0
end
redis.call('SETRANGE', KEYS[4], 12, ARGV[2])
redis.call('RENAME', KEYS[4], KEYS[2])
redis.call('PEXPIREAT', KEYS[2], ARGV[3])
` + RECORD_AND_LIST;

/**
 * Deletes a file, leaving a tombstone: its record is replaced by `TOMBSTONE` (expiring at ARGV[2],
 * Unix ms), its content goes, and its id stays in its owner's list. 1 when it was a file, 0 when
 * it was gone already (deleted by another request meanwhile: that one reports it).
 * KEYS: record, content. ARGV: tombstone, its expiry.
 */
const DELETE = `
local record = redis.call('GET', KEYS[1])
if not record or record == ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[2])
redis.call('DEL', KEYS[2])
return 1
`;

/** What a deleted file's record becomes. */
const TOMBSTONE = '{"deleted":true}';

/** Ids read from an owner's list per round trip while a page is gathered. */
const SCAN_CHUNK = 1_000;

/**
 * The files of a gateway with Redis (the access store's, `access.redis`), shared by every ingress
 * replica: `<prefix>file:<id>` holds the file's record (JSON), `<prefix>file:<id>:content` its
 * content sealed under a key derived from `access.keyHashSecret` with the id as context, and
 * `<prefix>files:<owner>` the owner's ids scored by creation time. Every key expires when its file
 * does (the list with its last file); an id whose record has expired is dropped from the list when
 * a listing meets it. Listed by creation time, files of the same second by id. A deleted file's
 * record is a tombstone for `TOMBSTONE_MS` (or until the file would have expired, if sooner): the
 * listing skips its id, and takes it as a cursor, until it expires and is dropped as any other.
 */
export class RedisFileStore implements FileStore {
  private readonly sealKeys: SealKeys;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    /** `access.keyHashSecret`, and the previous ones while it is rotated: what was sealed under those still opens. */
    secrets: StoreSecrets | string,
    private readonly now: () => number = Date.now,
  ) {
    this.sealKeys = new SealKeys(fileSealKey, secrets);
  }

  async put(file: StoredFile, content: Buffer): Promise<void> {
    if (content.length > SLICE_BYTES) return this.putLarge(file, content);
    const sealed = sealBytes(this.sealKeys.current, content, file.id);
    const stored = await this.redis.eval(
      PUT,
      3,
      this.recordKey(file.id),
      this.contentKey(file.id),
      this.listKey(file.owner),
      JSON.stringify(file),
      sealed,
      String(Math.round(file.expiresAt * 1000)),
      String(file.createdAt),
      file.id,
    );
    if (stored !== 1) throw new Error(`file ${file.id} exists already`);
  }

  /**
   * A large file, sealed as `sealBytes` seals (IV, tag, ciphertext: read back the same way) a
   * slice at a time: its IV and a placeholder for the tag, then each slice's ciphertext appended to
   * a staging key, and last the tag, the record and the list at once (`PUT_STAGED`), so that no
   * reader sees the file before its content is whole. Small files are sent whole: appending grows
   * a Redis string with room to spare, up to twice its size below a megabyte.
   */
  private async putLarge(file: StoredFile, content: Buffer): Promise<void> {
    const staging = `${this.contentKey(file.id)}:staging`;
    let stored: unknown;
    try {
      const tag = await stageSealed(this.redis, staging, this.sealKeys.current, content, file.id);
      stored = await this.redis.eval(
        PUT_STAGED,
        4,
        this.recordKey(file.id),
        this.contentKey(file.id),
        this.listKey(file.owner),
        staging,
        JSON.stringify(file),
        tag,
        String(Math.round(file.expiresAt * 1000)),
        String(file.createdAt),
        file.id,
      );
    } catch (error) {
      // Best effort: what is left expires with the staging key anyway.
      await this.redis.del(staging).catch(() => undefined);
      throw error;
    }
    if (stored !== 1) throw new Error(`file ${file.id} exists already`);
  }

  async get(owner: string, id: string): Promise<StoredFile | undefined> {
    const file = this.parse(await this.redis.get(this.recordKey(id)));
    return file && this.isLive(file, owner) ? file : undefined;
  }

  async content(owner: string, id: string): Promise<Buffer | undefined> {
    // The record, and the content's size and first slice, at once: a larger content's other slices
    // are read after (a content is never changed, only deleted; one deleted meanwhile reads as gone).
    const replies = await this.redis.multi().get(this.recordKey(id)).strlen(this.contentKey(id)).getrangeBuffer(this.contentKey(id), 0, SLICE_BYTES - 1).exec();
    const [record, length, first] = (replies ?? []).map(([error, value]) => {
      if (error) throw error;
      return value;
    });
    const file = this.parse(typeof record === 'string' ? record : null);
    if (!file || !this.isLive(file, owner) || file.id !== id || typeof length !== 'number' || length === 0 || !Buffer.isBuffer(first)) return undefined;
    // Sealed under a secret no longer known (dropped after a rotation), or damaged: it will never
    // open, as if gone. Redis failing while the other slices are read is thrown (a 503, not a 404).
    if (first.length !== length) return openSealedSlices(this.redis, this.contentKey(id), first, length, this.sealKeys.keys, id);
    try {
      return this.sealKeys.openBytes(first, id);
    } catch {
      return undefined;
    }
  }

  async list(owner: string, query: FileListQuery): Promise<{ data: StoredFile[]; hasMore: boolean }> {
    const key = this.listKey(owner);
    const asc = query.order === 'asc';
    let start = 0;
    if (query.after !== undefined) {
      const rank = asc ? await this.redis.zrank(key, query.after) : await this.redis.zrevrank(key, query.after);
      // A cursor that is gone (never there, expired, or deleted over TOMBSTONE_MS ago) ends the list.
      if (rank === null) return { data: [], hasMore: false };
      start = rank + 1;
    }
    const found: StoredFile[] = [];
    const stale: string[] = [];
    // One more than the page: whether there is more.
    while (found.length <= query.limit) {
      const want = Math.min(SCAN_CHUNK, query.limit + 1 - found.length);
      const stop = start + want - 1;
      const ids = asc ? await this.redis.zrange(key, String(start), String(stop)) : await this.redis.zrevrange(key, start, stop);
      if (ids.length === 0) break;
      start += ids.length;
      const records = await this.redis.mget(ids.map((id) => this.recordKey(id)));
      ids.forEach((id, i) => {
        const record = records[i] ?? null;
        // A deleted file keeps its place (a cursor may name it) until its tombstone expires.
        if (record === TOMBSTONE) return;
        const file = this.parse(record);
        if (!file || !this.isLive(file, owner) || file.id !== id) stale.push(id);
        else if (query.purpose === undefined || file.purpose === query.purpose) found.push(file);
      });
    }
    if (stale.length > 0) await this.redis.zrem(key, ...stale);
    return { data: found.slice(0, query.limit), hasMore: found.length > query.limit };
  }

  async delete(owner: string, id: string): Promise<boolean> {
    const file = await this.get(owner, id);
    if (!file) return false;
    const tombstoneUntil = Math.min(Math.round(file.expiresAt * 1000), this.now() + TOMBSTONE_MS);
    return Number(await this.redis.eval(DELETE, 2, this.recordKey(id), this.contentKey(id), TOMBSTONE, String(tombstoneUntil))) === 1;
  }

  async close(): Promise<void> {
    // The connection is the access store's: its owner closes it.
  }

  private recordKey(id: string): string {
    return `${this.prefix}file:${id}`;
  }

  private contentKey(id: string): string {
    return `${this.prefix}file:${id}:content`;
  }

  private listKey(owner: string): string {
    return `${this.prefix}files:${owner}`;
  }

  private parse(record: string | null): StoredFile | undefined {
    if (record === null) return undefined;
    let value: unknown;
    try {
      value = JSON.parse(record);
    } catch {
      return undefined;
    }
    const parsed = storedFileSchema.safeParse(value);
    return parsed.success ? parsed.data : undefined;
  }

  /** The owner's and not past its expiry (Redis expires it within a moment of that). */
  private isLive(file: StoredFile, owner: string): boolean {
    return file.owner === owner && file.expiresAt * 1000 > this.now();
  }
}
