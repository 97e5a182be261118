import { mkdir, open, readdir, readFile, rename, rm, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import type { Logger } from '@openrouter/observability';
import type { UsageMessage } from '../bus/usage-bus';
import { OutboxLock } from './outbox-lock';
import { unusableDirectory } from '../unusable-directory';

export interface FileOutboxOptions {
  /** Appends that would grow the outbox past this many bytes fail with `OutboxFullError`. */
  maxBytes: number;
  /** A segment file is closed and a new one started once it reaches this size. */
  segmentBytes: number;
  /**
   * A lock on the directory left by a process that cannot be asked whether it still runs (another
   * host, container or boot) is taken over when it has not been renewed for this long (10 s).
   */
  lockStaleMs?: number;
  /** Where the directory lock reports renewals that fail and a lock lost to another process. */
  logger?: Logger;
}

export class OutboxFullError extends Error {
  constructor(readonly bytes: number) {
    super(`the usage outbox is full (${bytes} bytes pending): Kafka has been unreachable too long`);
    this.name = 'OutboxFullError';
  }
}

/** Oldest pending records, and where they end so `ack` can move past them. */
export interface OutboxPeek {
  records: UsageMessage[];
  /** Byte offset (in the head segment) just after each record. */
  ends: number[];
  segment: number;
}

interface Cursor {
  segment: number;
  offset: number;
}

const HEADER_BYTES = 8;
const SEGMENT = /^segment-(\d{12})\.log$/;
const READ_CHUNK = 4 * 1024 * 1024;

/**
 * A durable, append-only, bounded queue of usage messages on local disk, for when Kafka is
 * unreachable. Records are framed `[u32 length][u32 crc32][payload]` in numbered segment files;
 * an append resolves only after the data is fsynced. A cursor file (replaced atomically) says how
 * far delivery has got; fully delivered segments are deleted. After a crash, a torn last record
 * is cut off, and records delivered but not yet acknowledged are delivered again (consumers
 * count an event once, by its id). Bytes that no longer read as records with records after them
 * (the disk damaged them) are copied aside to a `damaged-…` file, logged, and skipped, so the
 * records after them are still delivered. One process at a time: the directory is locked
 * (`OutboxLock`).
 *
 * The state in memory changes only once the file system did what it describes: a segment is
 * known once its file exists, and a delivered segment stays known until its file is deleted (a
 * deletion that failed is tried again with the next one, and at start-up).
 */
export class FileOutbox {
  /** Segment files on disk, oldest first; those before the cursor's are delivered, left to delete. */
  private segments: number[] = [];
  /** Sizes of the segments no longer appended to. */
  private readonly sizes = new Map<number, number>();
  private cursor: Cursor = { segment: 1, offset: 0 };
  private nextSegment = 1;
  private active: FileHandle | undefined;
  private activeSize = 0;
  private pendingRecords = 0;
  private pendingBytes = 0;
  /** Damaged byte ranges `[from, to)` skipped in each segment; records follow each one. */
  private readonly damaged = new Map<number, Array<[number, number]>>();
  private inFlightAppends = 0;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(
    readonly dir: string,
    private readonly options: FileOutboxOptions,
    private readonly lock: OutboxLock,
  ) {}

  /** Opens the outbox in `dir`; fails with `OutboxLockedError` when another process has it open. */
  static async open(dir: string, options: FileOutboxOptions): Promise<FileOutbox> {
    await mkdir(dir, { recursive: true }).catch((error: unknown) => {
      throw unusableDirectory('usage.outbox.dir (OPENROUTER_OUTBOX_DIR; empty: under gateway.dataDir, OPENROUTER_DATA_DIR)', 'the usage outbox', dir, error);
    });
    const lock = await OutboxLock.acquire(dir, { staleMs: options.lockStaleMs ?? 10_000, logger: options.logger });
    const outbox = new FileOutbox(dir, options, lock);
    try {
      await outbox.recover();
    } catch (error) {
      await outbox.active?.close().catch(() => undefined);
      await lock.release().catch(() => undefined);
      throw error;
    }
    return outbox;
  }

  /** Records written and not yet acknowledged (appends in progress count too). */
  get size(): number {
    return this.pendingRecords + this.inFlightAppends;
  }

  get bytes(): number {
    return this.pendingBytes;
  }

  isEmpty(): boolean {
    return this.size === 0;
  }

  /** Appends the records in order and fsyncs them; rejects with `OutboxFullError` when full. */
  append(records: UsageMessage[]): Promise<void> {
    if (records.length === 0) return Promise.resolve();
    this.inFlightAppends += records.length;
    return this.serialize(async () => {
      try {
        this.assertUsable();
        const frames = records.map(encodeRecord);
        const total = frames.reduce((n, f) => n + f.length, 0);
        if (this.pendingBytes + total > this.options.maxBytes) throw new OutboxFullError(this.pendingBytes);
        const file = await this.activeSegment();
        const data = Buffer.concat(frames);
        try {
          await writeWhole(file, data, this.activeSize);
          await file.datasync();
        } catch (error) {
          // Nothing of this append counts: what reached the file is cut off (and the next append
          // writes over it at the same offset in any case), so no torn frame sits between records.
          await file.truncate(this.activeSize).catch(() => undefined);
          throw error;
        }
        this.activeSize += data.length;
        this.pendingBytes += total;
        this.pendingRecords += records.length;
      } finally {
        this.inFlightAppends -= records.length;
      }
    });
  }

  /** Up to `max` of the oldest pending records, in append order (from one segment). */
  peek(max: number): Promise<OutboxPeek> {
    return this.serialize(async () => {
      this.assertUsable();
      const empty: OutboxPeek = { records: [], ends: [], segment: this.cursor.segment };
      while (this.pendingRecords > 0) {
        const segment = this.cursor.segment;
        const path = this.segmentPath(segment);
        const size = this.sizeOf(segment);
        if (this.cursor.offset >= size) {
          if (segment === this.current()) return empty;
          await this.dropHead();
          continue;
        }
        const handle = await open(path, 'r');
        try {
          const peek: OutboxPeek = { records: [], ends: [], segment };
          let offset = this.cursor.offset;
          while (peek.records.length < max && offset < size) {
            const skipTo = this.damagedEnd(segment, offset);
            if (skipTo !== undefined) {
              offset = skipTo;
              continue;
            }
            const length = Math.min(READ_CHUNK, size - offset);
            const buffer = Buffer.alloc(length);
            await handle.read(buffer, 0, length, offset);
            let at = 0;
            for (;;) {
              if (peek.records.length >= max || this.damagedEnd(segment, offset + at) !== undefined) break;
              const frame = decodeFrame(buffer, at);
              if (typeof frame === 'string') break;
              at += frame.length;
              peek.records.push(frame.record);
              peek.ends.push(offset + at);
            }
            if (at === 0 && this.damagedEnd(segment, offset) === undefined) {
              // No record where one must start (the disk changed what was written, or a record
              // larger than a read): set aside, so the records after it are still delivered.
              await this.setAside(segment, handle, offset, size);
              continue;
            }
            offset += at;
          }
          return peek;
        } finally {
          await handle.close();
        }
      }
      return empty;
    });
  }

  /**
   * Marks the first `count` records of `peek` delivered. Rejects when the file system fails on the
   * way (the cursor file, deleting a delivered segment): what is delivered stays delivered, and
   * what failed is done again by the next call.
   */
  ack(peek: OutboxPeek, count: number): Promise<void> {
    if (count === 0) return Promise.resolve();
    return this.serialize(async () => {
      this.assertUsable();
      const end = peek.ends[count - 1];
      if (end === undefined || peek.segment !== this.cursor.segment || end <= this.cursor.offset) {
        throw new Error('usage outbox: acknowledgement does not match the pending head');
      }
      const bytes = end - this.cursor.offset;
      this.cursor = { segment: peek.segment, offset: end };
      this.pendingRecords -= count;
      this.pendingBytes -= bytes;
      if (this.pendingRecords === 0) {
        // Everything is delivered: start over with an empty segment.
        await this.reset();
        return;
      }
      if (peek.segment !== this.current() && end >= this.sizeOf(peek.segment)) await this.dropHead();
      else await this.writeCursor(this.cursor);
    });
  }

  /** The end of the damaged range of `segment` that `offset` lies in, if it does. */
  private damagedEnd(segment: number, offset: number): number | undefined {
    return this.damaged.get(segment)?.find(([from, to]) => from <= offset && offset < to)?.[1];
  }

  /**
   * Bytes at `from` that are no record (found while delivering): everything up to the next record,
   * or to the segment's end, is set aside, and the records still pending are counted again (how
   * many the damage took is not known otherwise).
   */
  private async setAside(segment: number, handle: FileHandle, from: number, size: number): Promise<void> {
    const rest = Buffer.alloc(size - from);
    await handle.read(rest, 0, rest.length, from);
    const next = nextFrame(rest, 1) ?? rest.length;
    await this.keepDamaged(segment, from, rest.subarray(0, next));
    this.pendingRecords = await this.countPending();
  }

  /** Copies a damaged range aside for an operator, logs it, and skips it from now on. */
  private async keepDamaged(segment: number, from: number, bytes: Buffer): Promise<void> {
    const name = `damaged-${String(segment).padStart(12, '0')}-${from}.bin`;
    const ranges = this.damaged.get(segment) ?? [];
    ranges.push([from, from + bytes.length]);
    this.damaged.set(segment, ranges);
    const copied = await writeFile(join(this.dir, name), bytes).then(
      () => true,
      () => false,
    );
    this.options.logger?.error(
      { dir: this.dir, segment: this.segmentPath(segment), offset: from, bytes: bytes.length, copy: copied ? name : undefined },
      'usage outbox: bytes that read as no record skipped (damaged on disk, or an append a crash left half written); the records after them are still delivered',
    );
  }

  /** Records from the cursor on, read from the segments (damaged ranges skipped). */
  private async countPending(): Promise<number> {
    let records = 0;
    for (const segment of this.segments.filter((s) => s >= this.cursor.segment)) {
      const data = await readFile(this.segmentPath(segment));
      const size = Math.min(this.sizeOf(segment), data.length);
      let at = segment === this.cursor.segment ? this.cursor.offset : 0;
      while (at < size) {
        const skipTo = this.damagedEnd(segment, at);
        if (skipTo !== undefined) {
          at = skipTo;
          continue;
        }
        const frame = decodeFrame(data.subarray(0, size), at);
        if (typeof frame === 'string') break;
        records++;
        at += frame.length;
      }
    }
    return records;
  }

  /** Closes the files and releases the directory; the outbox takes nothing afterwards. */
  async close(): Promise<void> {
    await this.serialize(async () => {
      if (this.closed) return;
      this.closed = true;
      try {
        await this.closeActive();
      } finally {
        await this.lock.release();
      }
    });
  }

  private serialize<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work, work);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private assertUsable(): void {
    if (this.closed) throw new Error(`the usage outbox ${this.dir} is closed`);
    if (!this.lock.held) throw new Error(`the usage outbox ${this.dir} was taken over by another process (its lock file is no longer this one's)`);
  }

  private current(): number | undefined {
    return this.segments[this.segments.length - 1];
  }

  private sizeOf(segment: number): number {
    if (segment === this.current()) return this.activeSize;
    const size = this.sizes.get(segment);
    if (size === undefined) throw new Error(`usage outbox: segment ${segment} is not known`);
    return size;
  }

  private segmentPath(segment: number): string {
    return join(this.dir, `segment-${String(segment).padStart(12, '0')}.log`);
  }

  /** The segment appends go to; a new one when the current one is full (or closed). */
  private async activeSegment(): Promise<FileHandle> {
    if (this.active && this.activeSize < this.options.segmentBytes) return this.active;
    await this.closeActive();
    const next = this.nextSegment;
    const path = this.segmentPath(next);
    // Written at explicit offsets (never O_APPEND, which ignores them): an append that failed half
    // way is overwritten by the next, so the frames stay contiguous. 'w+' may only truncate a file
    // of this process's own that never held a record (the directory is locked).
    const handle = await open(path, 'w+');
    // Nothing pending: the cursor moves to the new segment, as recovery would find it.
    const cursor = this.pendingRecords === 0 && this.cursor.segment !== next ? { segment: next, offset: 0 } : undefined;
    try {
      await this.syncDir();
      if (cursor) await this.writeCursor(cursor);
    } catch (error) {
      // Not a segment: the outbox stays as it was, and the next append tries again.
      await handle.close().catch(() => undefined);
      await rm(path, { force: true }).catch(() => undefined);
      throw error;
    }
    const previous = this.current();
    if (previous !== undefined) this.sizes.set(previous, this.activeSize);
    this.segments.push(next);
    this.nextSegment = next + 1;
    this.active = handle;
    this.activeSize = 0;
    if (cursor) this.cursor = cursor;
    return handle;
  }

  /** Closes the segment appended to; appends after it open a new one. */
  private async closeActive(): Promise<void> {
    const active = this.active;
    if (!active) return;
    try {
      await active.close();
    } finally {
      this.active = undefined;
    }
  }

  /** The cursor moves past the head segment, which is wholly delivered, and the file goes. */
  private async dropHead(): Promise<void> {
    const next: Cursor = { segment: this.segments.find((s) => s > this.cursor.segment) ?? this.nextSegment, offset: 0 };
    await this.writeCursor(next);
    this.cursor = next;
    await this.removeDelivered();
  }

  private async reset(): Promise<void> {
    await this.closeActive();
    // The cursor moves to a fresh segment number first, so it never points into a reused file.
    const fresh: Cursor = { segment: this.nextSegment, offset: 0 };
    await this.writeCursor(fresh);
    this.cursor = fresh;
    this.pendingBytes = 0;
    this.pendingRecords = 0;
    await this.removeDelivered();
    this.activeSize = 0;
  }

  /** Deletes the segment files before the cursor's; each is forgotten once its file is gone. */
  private async removeDelivered(): Promise<void> {
    for (const segment of this.segments.filter((s) => s < this.cursor.segment)) {
      await rm(this.segmentPath(segment), { force: true });
      this.segments = this.segments.filter((s) => s !== segment);
      this.sizes.delete(segment);
      this.damaged.delete(segment);
    }
  }

  private async writeCursor(cursor: Cursor): Promise<void> {
    const path = join(this.dir, 'cursor.json');
    const temp = `${path}.tmp`;
    const handle = await open(temp, 'w');
    try {
      await handle.writeFile(JSON.stringify(cursor));
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
  }

  private async syncDir(): Promise<void> {
    const handle = await open(this.dir, 'r');
    try {
      await handle.sync();
    } catch {
      // Some file systems cannot fsync a directory; the data files are synced regardless.
    } finally {
      await handle.close();
    }
  }

  /** Reads the segments left by an earlier run, cutting a torn last record. */
  private async recover(): Promise<void> {
    const names = await readdir(this.dir);
    this.segments = names
      .map((n) => SEGMENT.exec(n)?.[1])
      .filter((n): n is string => n !== undefined)
      .map(Number)
      .sort((a, b) => a - b);
    const cursor = await readFile(join(this.dir, 'cursor.json'), 'utf8').then(
      (text) => asCursor(JSON.parse(text)),
      () => undefined,
    );
    const last = this.segments[this.segments.length - 1] ?? 0;
    this.nextSegment = Math.max(last + 1, cursor ? (cursor.offset === 0 ? cursor.segment : cursor.segment + 1) : 1);
    if (cursor) {
      // Segments before the cursor's were delivered: a deletion that failed, or a process killed
      // before it (also after everything was delivered, when the cursor names a segment not yet
      // made). They go now; delivery goes on at the first segment from the cursor's on.
      this.cursor = { segment: cursor.segment, offset: 0 };
      await this.removeDelivered();
      const first = this.segments[0];
      this.cursor = first === undefined ? { segment: this.nextSegment, offset: 0 } : first === cursor.segment ? cursor : { segment: first, offset: 0 };
    } else {
      this.cursor = { segment: this.segments[0] ?? this.nextSegment, offset: 0 };
    }
    if (this.segments.length === 0) return;
    for (const segment of this.segments) {
      const path = this.segmentPath(segment);
      const data = await readFile(path);
      let at = 0;
      let records = 0;
      let pendingFrom = segment === this.cursor.segment ? this.cursor.offset : 0;
      for (;;) {
        const frame = decodeFrame(data, at);
        if (typeof frame === 'string') {
          // Records after bytes that are none (the disk damaged what was written, or a crash kept
          // part of an append and not what came before it): the records are kept, the bytes set
          // aside. A tail with no record after it is an append a crash cut short (cut off below).
          const next = at < data.length ? nextFrame(data, at + 1) : undefined;
          if (next === undefined) break;
          await this.keepDamaged(segment, at, data.subarray(at, next));
          at = next;
          continue;
        }
        if (at >= pendingFrom) records++;
        at += frame.length;
      }
      if (at < data.length) {
        // A torn tail: the append never completed, so it was never acknowledged.
        this.options.logger?.warn({ segment: path, offset: at, bytes: data.length - at }, 'usage outbox: a torn last append cut off');
        const handle = await open(path, 'r+');
        await handle.truncate(at);
        await handle.sync();
        await handle.close();
      }
      pendingFrom = Math.min(pendingFrom, at);
      this.pendingRecords += records;
      this.pendingBytes += at - pendingFrom;
      if (segment === this.current()) this.activeSize = at;
      else this.sizes.set(segment, at);
    }
    const current = this.current();
    if (current !== undefined) this.active = await open(this.segmentPath(current), 'r+');
    if (this.pendingRecords === 0) await this.reset();
  }
}

function asCursor(value: unknown): Cursor | undefined {
  const { segment, offset } = (value ?? {}) as Partial<Cursor>;
  return Number.isSafeInteger(segment) && Number.isSafeInteger(offset) ? { segment: segment as number, offset: offset as number } : undefined;
}

/** Writes all of `data` at `position`: a write may take less than it was given (a disk filling up). */
async function writeWhole(file: FileHandle, data: Buffer, position: number): Promise<void> {
  for (let done = 0; done < data.length; ) {
    const { bytesWritten } = await file.write(data, done, data.length - done, position + done);
    if (bytesWritten === 0) throw new Error('usage outbox: the disk took no more bytes');
    done += bytesWritten;
  }
}

function encodeRecord(record: UsageMessage): Buffer {
  const payload = Buffer.from(JSON.stringify({ k: record.key, h: record.headers, v: record.value.toString('base64') }));
  const frame = Buffer.alloc(HEADER_BYTES + payload.length);
  frame.writeUInt32BE(payload.length, 0);
  frame.writeUInt32BE(crc32(payload), 4);
  payload.copy(frame, HEADER_BYTES);
  return frame;
}

function decodeFrame(buffer: Buffer, at: number): { record: UsageMessage; length: number } | 'short' | 'corrupt' {
  if (buffer.length - at < HEADER_BYTES) return 'short';
  const length = buffer.readUInt32BE(at);
  if (buffer.length - at - HEADER_BYTES < length) return 'short';
  const payload = buffer.subarray(at + HEADER_BYTES, at + HEADER_BYTES + length);
  if (crc32(payload) !== buffer.readUInt32BE(at + 4)) return 'corrupt';
  let parsed: unknown;
  try {
    parsed = JSON.parse(payload.toString('utf8'));
  } catch {
    return 'corrupt';
  }
  const { k, h, v } = (parsed ?? {}) as { k?: unknown; h?: unknown; v?: unknown };
  if (typeof k !== 'string' || typeof v !== 'string' || typeof h !== 'object' || h === null) return 'corrupt';
  return { record: { key: k, headers: h as Record<string, string>, value: Buffer.from(v, 'base64') }, length: HEADER_BYTES + length };
}

/** The first offset from `from` on where a whole record starts, if any. */
function nextFrame(buffer: Buffer, from: number): number | undefined {
  for (let at = from; at + HEADER_BYTES <= buffer.length; at++) {
    if (typeof decodeFrame(buffer, at) !== 'string') return at;
  }
  return undefined;
}
