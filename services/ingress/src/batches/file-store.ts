import { GatewayError } from '@openrouter/errors';
import { createHmac } from 'node:crypto';
import { storeFailureAs } from '../store-failure';
import { randomId } from './batch-record';

/**
 * Files uploaded for batches (`POST /v1/files`, purpose `batch`) and the output and error files
 * batches write (purpose `batch_output`). A file belongs to the project of the key that uploaded
 * it (its owner, `org/project`): every key of that project sees it, no other does. Contents are
 * sealed (AES-256-GCM, `sealed-text`) under a key derived from `access.keyHashSecret`, with the
 * file's id as context, so the store alone reveals nothing and a content moved under another id
 * does not open.
 */
export type FilePurpose = 'batch' | 'batch_output';

export interface StoredFile {
  /** `file-` and 24 random base62 characters. */
  id: string;
  /** The project that owns it: `${orgId}/${projectId}`. */
  owner: string;
  bytes: number;
  /** Unix seconds. */
  createdAt: number;
  filename: string;
  purpose: FilePurpose;
  /** Unix seconds when the store drops it (`batches.fileRetentionDays` after its creation). */
  expiresAt: number;
}

export interface FileListQuery {
  purpose?: FilePurpose | undefined;
  /** 1 to 10 000. */
  limit: number;
  /** The id of the file the previous page ended with (in `order`). */
  after?: string | undefined;
  /** By creation time. */
  order: 'asc' | 'desc';
}

export interface FileStore {
  /** Stores a new file and its content (an id is never reused). */
  put(file: StoredFile, content: Buffer): Promise<void>;
  /** The file of that owner, or undefined (unknown, another owner's, expired or deleted). */
  get(owner: string, id: string): Promise<StoredFile | undefined>;
  /** Its content, or undefined as for `get`, or when it no longer opens (sealed under a hash secret dropped since). */
  content(owner: string, id: string): Promise<Buffer | undefined>;
  list(owner: string, query: FileListQuery): Promise<{ data: StoredFile[]; hasMore: boolean }>;
  /** True when it existed (and is now gone). */
  delete(owner: string, id: string): Promise<boolean>;
  close(): Promise<void>;
}

/**
 * How long a deleted file keeps its place in its owner's list: its id still works as a page's
 * `after` (a client deleting the files of each page as it lists them goes on to the next page).
 */
export const TOMBSTONE_MS = 3_600_000;

/** The Nest injection token of the gateway's {@link FileStore}. */
export const FILE_STORE = Symbol('FILE_STORE');

/** A new file id: `file-` and 24 random base62 characters (about 143 bits: not guessable, never reused). */
export function newFileId(): string {
  return randomId('file-');
}

/** The key file contents are sealed under, derived from `access.keyHashSecret` (as the response cache derives its own). */
export function fileSealKey(keyHashSecret: string): Buffer {
  return createHmac('sha256', keyHashSecret).update('batch-files\0seal').digest();
}

/** A failure of the files' or batches' store as a 503 `file_store_unavailable` (`storeFailureAs`). */
export const orUnavailable = storeFailureAs('file_store_unavailable', 'Files and batches cannot be stored or read right now. Please retry.');

/** The 404 of every route of the Files and Batch APIs while `batches.enabled` is false. */
export function batchesDisabled(api: 'Files' | 'Batch'): GatewayError {
  return new GatewayError('not_found', `The ${api} API is not enabled on this gateway (batches.enabled is false).`, { code: 'batches_disabled' });
}
