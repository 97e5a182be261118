import { TOMBSTONE_MS, type FileListQuery, type FileStore, type StoredFile } from './file-store';

interface Held {
  file: StoredFile;
  content: Buffer;
  /** Deleted: kept (without its content) until then, in ms, only for its place in the list. */
  deletedUntil?: number | undefined;
}

/**
 * The files of a gateway without Redis: in this process (gone when it stops). A file past its
 * `expiresAt` is dropped when it is next looked at or listed. Listed by creation time, files
 * created in the same second by id, as the Redis store lists them; a deleted file keeps its place
 * (a cursor may name it) for `TOMBSTONE_MS`, as in the Redis store.
 */
export class MemoryFileStore implements FileStore {
  private readonly files = new Map<string, Held>();

  /** `now` in milliseconds. */
  constructor(private readonly now: () => number = Date.now) {}

  async put(file: StoredFile, content: Buffer): Promise<void> {
    if (this.files.has(file.id)) throw new Error(`file ${file.id} exists already`);
    // A copy: the caller's buffer may be reused, and what is read back must not alter what is kept.
    this.files.set(file.id, { file: { ...file }, content: Buffer.from(content) });
  }

  async get(owner: string, id: string): Promise<StoredFile | undefined> {
    const held = this.live(owner, id);
    return held && { ...held.file };
  }

  async content(owner: string, id: string): Promise<Buffer | undefined> {
    const held = this.live(owner, id);
    return held && Buffer.from(held.content);
  }

  async list(owner: string, query: FileListQuery): Promise<{ data: StoredFile[]; hasMore: boolean }> {
    const now = this.now();
    const mine: Held[] = [];
    for (const [id, held] of this.files) {
      if (held.file.expiresAt * 1000 <= now || (held.deletedUntil !== undefined && held.deletedUntil <= now)) this.files.delete(id);
      else if (held.file.owner === owner) mine.push(held);
    }
    mine.sort(query.order === 'asc' ? (a, b) => byCreation(a.file, b.file) : (a, b) => byCreation(b.file, a.file));
    // The cursor is found among all the owner's files (it may be of another purpose, or deleted); one that is gone ends the list.
    const start = query.after === undefined ? 0 : mine.findIndex((h) => h.file.id === query.after) + 1;
    if (start === 0 && query.after !== undefined) return { data: [], hasMore: false };
    const rest = mine
      .slice(start)
      .filter((h) => h.deletedUntil === undefined)
      .map((h) => h.file)
      .filter((f) => query.purpose === undefined || f.purpose === query.purpose);
    return { data: rest.slice(0, query.limit).map((f) => ({ ...f })), hasMore: rest.length > query.limit };
  }

  async delete(owner: string, id: string): Promise<boolean> {
    const held = this.live(owner, id);
    if (!held) return false;
    this.files.set(id, { file: held.file, content: Buffer.alloc(0), deletedUntil: Math.min(held.file.expiresAt * 1000, this.now() + TOMBSTONE_MS) });
    return true;
  }

  async close(): Promise<void> {
    this.files.clear();
  }

  /** The file when it is the owner's and not expired (an expired one is dropped). */
  private live(owner: string, id: string): Held | undefined {
    const held = this.files.get(id);
    if (!held || held.deletedUntil !== undefined) return undefined;
    if (held.file.expiresAt * 1000 <= this.now()) {
      this.files.delete(id);
      return undefined;
    }
    return held.file.owner === owner ? held : undefined;
  }
}

/** Oldest first; files of the same second by id. */
export function byCreation(a: StoredFile, b: StoredFile): number {
  return a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}
