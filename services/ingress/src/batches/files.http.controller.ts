import { Controller, Delete, Get, HttpCode, Inject, Optional, Param, Post, Query, Req, Res, UseGuards } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { GatewayError } from '@openrouter/errors';
import { isAudioUpload, isFormBody } from '@openrouter/openai-wire';
import { parseInput } from '../admin/admin-input';
import { requestContextOf, UnmeteredApiKeyGuard } from '../auth/api-key.guard';
import { ownerOf } from '../access/owner';
import { batchesDisabled, type FilePurpose, type StoredFile } from './file-store';
import { FilesService } from './files.service';

/** OpenAI's FileObject. */
export interface OpenAIFile {
  id: string;
  object: 'file';
  bytes: number;
  created_at: number;
  filename: string;
  purpose: FilePurpose;
  status: 'processed';
  expires_at: number;
  status_details: null;
}

export function toOpenAIFile(file: StoredFile): OpenAIFile {
  return {
    id: file.id,
    object: 'file',
    bytes: file.bytes,
    created_at: file.createdAt,
    filename: file.filename,
    purpose: file.purpose,
    status: 'processed',
    expires_at: file.expiresAt,
    status_details: null,
  };
}

/** The purposes OpenAI's Files API takes on upload; this gateway keeps `batch` files only. */
const OPENAI_PURPOSES = ['assistants', 'batch', 'fine-tune', 'vision', 'user_data', 'evals'];

const listQuery = z.object({
  // Any purpose may be asked for: one this gateway does not keep lists nothing.
  purpose: z.string().min(1).max(64).optional(),
  limit: z.coerce.number().int().min(1).max(10_000).default(10_000),
  after: z.string().min(1).max(128).optional(),
  order: z.enum(['asc', 'desc']).default('desc'),
});

const required = (param: string, what: string): GatewayError => new GatewayError('bad_request', `Missing required parameter: '${param}' (${what}).`, { param, code: 'missing_required_parameter' });

/** The uploaded file and its purpose, from the multipart form of `POST /v1/files`. */
function uploadOf(body: unknown): { filename: string; purpose: 'batch'; content: Buffer; expiresAfterSeconds?: number | undefined } {
  if (!isFormBody(body) || typeof body !== 'object' || body === null) {
    throw new GatewayError('bad_request', "The request body must be multipart/form-data, with the file in the 'file' field and its 'purpose'.", { param: 'file', code: 'invalid_content_type' });
  }
  const form = body as Record<string, unknown>;
  const file = form['file'];
  const purpose = form['purpose'];
  if (file === undefined) throw required('file', 'the file to upload');
  if (!isAudioUpload(file)) throw new GatewayError('bad_request', "Invalid type for 'file': expected one file.", { param: 'file', code: 'invalid_type' });
  if (purpose === undefined || purpose === '') throw required('purpose', "'batch'");
  if (typeof purpose !== 'string') throw new GatewayError('bad_request', "Invalid type for 'purpose': expected one text value.", { param: 'purpose', code: 'invalid_type' });
  if (purpose !== 'batch') {
    const known = OPENAI_PURPOSES.includes(purpose);
    throw new GatewayError(
      'bad_request',
      known ? `Files with purpose '${purpose}' are not kept by this gateway: only batch files are (purpose 'batch').` : `Invalid value for 'purpose': '${purpose}'. This gateway keeps batch files only (purpose 'batch').`,
      { param: 'purpose', code: known ? 'unsupported_value' : 'invalid_value' },
    );
  }
  if (file.data.length === 0) throw new GatewayError('bad_request', "Invalid value for 'file': the file is empty.", { param: 'file', code: 'invalid_value' });
  // The name comes back in the download's Content-Disposition header, twice: a long one would make a header clients refuse to read.
  if ((file.filename ?? '').length > MAX_FILENAME_LENGTH) {
    throw new GatewayError('bad_request', `Invalid value for 'file': its filename is longer than ${MAX_FILENAME_LENGTH} characters.`, { param: 'file', code: 'invalid_value' });
  }
  return { filename: file.filename || 'file', purpose, content: Buffer.from(file.data.buffer, file.data.byteOffset, file.data.byteLength), expiresAfterSeconds: expiresAfterOf(form) };
}

/** The longest filename an upload may carry (as most file systems allow). */
const MAX_FILENAME_LENGTH = 255;

/**
 * OpenAI's `expires_after` of an upload (`expires_after[anchor]=created_at`,
 * `expires_after[seconds]` from an hour to 30 days, as the SDK sends it in the form): how long
 * after its creation the file is dropped, at most `batches.fileRetentionDays`. Undefined when not sent.
 */
function expiresAfterOf(form: Record<string, unknown>): number | undefined {
  const anchor = form['expires_after[anchor]'];
  const seconds = form['expires_after[seconds]'];
  if (anchor === undefined && seconds === undefined) return undefined;
  if (anchor !== 'created_at') throw new GatewayError('bad_request', "Invalid value for 'expires_after.anchor': expected 'created_at'.", { param: 'expires_after.anchor', code: 'invalid_value' });
  const value = typeof seconds === 'string' && /^\d+$/.test(seconds) ? Number(seconds) : NaN;
  if (!(value >= 3_600 && value <= 2_592_000)) {
    throw new GatewayError('bad_request', "Invalid value for 'expires_after.seconds': expected a whole number of seconds from 3600 (an hour) to 2592000 (30 days).", { param: 'expires_after.seconds', code: 'invalid_value' });
  }
  return value;
}

/** `attachment` with the file's name: quoted in ASCII, and exactly (RFC 6266 `filename*`). */
function contentDisposition(filename: string): string {
  const ascii = filename.replace(/[^\x20-\x7e]|["\\]/g, '_');
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(filename)}`;
}

/**
 * OpenAI's Files API, for batches (`/v1/files`): a project's keys upload the input files of their
 * batches (purpose `batch`, a multipart form read up to `batches.maxFileBytes`), and list, read,
 * download and delete them and the output files batches write. A file is its project's: every key
 * of that project sees it, no other key does (another's file is not found). Authenticated and
 * charged to the key's request limits; nothing is metered. Off (`batches.enabled: false`): 404.
 */
@Controller('v1/files')
@UseGuards(UnmeteredApiKeyGuard)
export class FilesHttpController {
  constructor(@Optional() @Inject(FilesService) private readonly files?: FilesService) {}

  @Post()
  @HttpCode(200)
  async upload(@Req() req: FastifyRequest): Promise<OpenAIFile> {
    const files = this.enabled();
    const upload = uploadOf(req.body);
    return toOpenAIFile(await files.create(ownerOf(requestContextOf(req)), upload));
  }

  @Get()
  async list(@Req() req: FastifyRequest, @Query() query: unknown): Promise<{ object: 'list'; data: OpenAIFile[]; first_id: string | null; last_id: string | null; has_more: boolean }> {
    const files = this.enabled();
    const { purpose, limit, after, order } = parseInput(listQuery, query);
    const owner = ownerOf(requestContextOf(req));
    const page = purpose === undefined || purpose === 'batch' || purpose === 'batch_output' ? await files.list(owner, { purpose, limit, after, order }) : { data: [], hasMore: false };
    const data = page.data.map(toOpenAIFile);
    return { object: 'list', data, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null, has_more: page.hasMore };
  }

  @Get(':id')
  async retrieve(@Req() req: FastifyRequest, @Param('id') id: string): Promise<OpenAIFile> {
    return toOpenAIFile(await this.enabled().get(ownerOf(requestContextOf(req)), id));
  }

  @Get(':id/content')
  async content(@Req() req: FastifyRequest, @Param('id') id: string, @Res() reply: FastifyReply): Promise<void> {
    const { file, content } = await this.enabled().content(ownerOf(requestContextOf(req)), id);
    await reply.headers({ 'content-type': 'application/octet-stream', 'content-disposition': contentDisposition(file.filename), 'x-request-id': String(req.id) }).send(content);
  }

  @Delete(':id')
  async remove(@Req() req: FastifyRequest, @Param('id') id: string): Promise<{ id: string; object: 'file'; deleted: true }> {
    await this.enabled().delete(ownerOf(requestContextOf(req)), id);
    return { id, object: 'file', deleted: true };
  }

  private enabled(): FilesService {
    if (!this.files) throw batchesDisabled('Files');
    return this.files;
  }
}
