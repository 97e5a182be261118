import { GatewayError } from '@openrouter/errors';
import { newFileId, orUnavailable, type FileListQuery, type FilePurpose, type FileStore, type StoredFile } from './file-store';

const DAY_SECONDS = 86_400;

/** The 404 of a file that is not there for this owner (unknown, another owner's, expired or deleted): the same for each. */
export function fileNotFound(id: string): GatewayError {
  return new GatewayError('not_found', `No such File object: ${id}`, { param: 'id', code: 'file_not_found' });
}

/**
 * The Files API's logic over a {@link FileStore}: a new file gets its id, creation time and expiry
 * (`batches.fileRetentionDays` later); a file that is not the owner's is not found.
 */
export class FilesService {
  constructor(
    readonly store: FileStore,
    private readonly retentionDays: number,
    /** Milliseconds. */
    private readonly now: () => number = Date.now,
  ) {}

  async create(owner: string, upload: { filename: string; purpose: FilePurpose; content: Buffer; expiresAfterSeconds?: number | undefined }): Promise<StoredFile> {
    const createdAt = Math.floor(this.now() / 1000);
    const file: StoredFile = {
      id: newFileId(),
      owner,
      bytes: upload.content.length,
      createdAt,
      filename: upload.filename,
      purpose: upload.purpose,
      // The file's own expiry, when asked, if sooner than the retention.
      expiresAt: createdAt + Math.min(upload.expiresAfterSeconds ?? Infinity, this.retentionDays * DAY_SECONDS),
    };
    await orUnavailable(this.store.put(file, upload.content));
    return file;
  }

  async get(owner: string, id: string): Promise<StoredFile> {
    const file = await orUnavailable(this.store.get(owner, id));
    if (!file) throw fileNotFound(id);
    return file;
  }

  async content(owner: string, id: string): Promise<{ file: StoredFile; content: Buffer }> {
    const [file, content] = await orUnavailable(Promise.all([this.store.get(owner, id), this.store.content(owner, id)]));
    if (!file || !content) throw fileNotFound(id);
    return { file, content };
  }

  list(owner: string, query: FileListQuery): Promise<{ data: StoredFile[]; hasMore: boolean }> {
    return orUnavailable(this.store.list(owner, query));
  }

  async delete(owner: string, id: string): Promise<void> {
    if (!(await orUnavailable(this.store.delete(owner, id)))) throw fileNotFound(id);
  }
}
