import { Controller, Get, HttpCode, Inject, Optional, Param, Post, Query, Req, UseGuards } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { BatchesConfig } from '@openrouter/config';
import { GatewayError } from '@openrouter/errors';
import { parseInput } from '../admin/admin-input';
import { requestContextOf, UnmeteredApiKeyGuard } from '../auth/api-key.guard';
import { checkBatchInput } from './batch-lines';
import { BATCH_ENDPOINTS, isBatchId, nowSeconds, randomId, toOpenAIBatch, type BatchRecord, type OpenAIBatch } from './batch-record';
import { BATCH_STORE, cancelBatch, type BatchStore } from './batch-store';
import { ownerOf } from '../access/owner';
import { batchesDisabled, FILE_STORE, orUnavailable, type FileStore } from './file-store';

export const BATCHES_CONFIG = Symbol('BATCHES_CONFIG');

/** `batches`, and the deepest nesting of a request body (`ingress.limits.jsonDepth`), which each line of an input file is held to. */
export type BatchesSettings = BatchesConfig & { jsonDepth: number };

/** A batch's window: OpenAI's only one. */
const WINDOW_SECONDS = 24 * 3600;

const createBody = z.object({
  input_file_id: z.string().min(1).max(256),
  endpoint: z.enum(BATCH_ENDPOINTS),
  completion_window: z.literal('24h'),
  metadata: z
    .record(z.string().min(1).max(64), z.string().max(512))
    .refine((m) => Object.keys(m).length <= 16, 'at most 16 pairs')
    .nullish(),
  output_expires_after: z.object({ anchor: z.literal('created_at'), seconds: z.number().int().min(3_600).max(2_592_000) }).nullish(),
});

const listQuery = z.object({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  after: z.string().min(1).optional(),
});

/**
 * OpenAI's Batch API (docs/batches.md): a batch runs the requests of an uploaded JSONL file
 * (`/v1/files`, purpose `batch`) within 24 hours, through the gateway's own API as the key that
 * created it, and writes their answers to an output file and their errors to an error file.
 * Batches belong to the key's project. The input is checked whole at creation: a file with any bad
 * line makes a batch that has `failed`, listing the problems, as at OpenAI.
 */
@Controller('v1/batches')
@UseGuards(UnmeteredApiKeyGuard)
export class BatchesHttpController {
  constructor(
    @Optional() @Inject(BATCH_STORE) private readonly batches?: BatchStore,
    @Optional() @Inject(FILE_STORE) private readonly fileStore?: FileStore,
    @Optional() @Inject(BATCHES_CONFIG) private readonly settings?: BatchesSettings,
  ) {}

  @Post()
  @HttpCode(200)
  async create(@Req() req: FastifyRequest): Promise<OpenAIBatch> {
    const { store, files, config } = this.enabled();
    const context = requestContextOf(req);
    const owner = ownerOf(context);
    const body = parseInput(createBody, req.body);
    const file = await orUnavailable(files.get(owner, body.input_file_id));
    if (!file) throw new GatewayError('bad_request', `No such File object: ${body.input_file_id}`, { param: 'input_file_id', code: 'invalid_value' });
    if (file.purpose !== 'batch') throw new GatewayError('bad_request', `The file ${file.id} has purpose '${file.purpose}'; a batch reads a file uploaded with purpose 'batch'.`, { param: 'input_file_id', code: 'invalid_value' });
    const content = await orUnavailable(files.content(owner, file.id));
    if (!content) throw new GatewayError('bad_request', `No such File object: ${body.input_file_id}`, { param: 'input_file_id', code: 'invalid_value' });
    // Only checked and counted here: its requests are read again by the batch's runner.
    const { count, errors } = await checkBatchInput(content, body.endpoint, config.maxLines, config.jsonDepth);
    const now = nowSeconds();
    const batch: BatchRecord = {
      id: randomId('batch_'),
      owner,
      keyId: context.keyId,
      endpoint: body.endpoint,
      inputFileId: file.id,
      completionWindow: '24h',
      status: errors.length > 0 ? 'failed' : 'validating',
      createdAt: now,
      expiresAt: now + WINDOW_SECONDS,
      ...(errors.length > 0 ? { failedAt: now, errors } : {}),
      requestCounts: { total: count, completed: 0, failed: 0 },
      metadata: body.metadata ?? null,
      outputExpiresAfterSeconds: body.output_expires_after?.seconds,
      app: context.appId || undefined,
      tags: requestTags(context.tags, req.apiKeyRecord?.tags ?? {}),
    };
    await orUnavailable(store.create(batch, errors.length > 0 ? undefined : content));
    return toOpenAIBatch(batch);
  }

  @Get()
  async list(@Req() req: FastifyRequest, @Query() query: unknown): Promise<{ object: 'list'; data: OpenAIBatch[]; first_id: string | null; last_id: string | null; has_more: boolean }> {
    const { store } = this.enabled();
    const { limit, after } = parseInput(listQuery, query);
    const page = await orUnavailable(store.list(ownerOf(requestContextOf(req)), { limit, after }));
    const data = page.data.map(toOpenAIBatch);
    return { object: 'list', data, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null, has_more: page.hasMore };
  }

  @Get(':id')
  async retrieve(@Req() req: FastifyRequest, @Param('id') id: string): Promise<OpenAIBatch> {
    return toOpenAIBatch(await this.mine(req, id));
  }

  /** Cancels a batch that has not ended: no line starts after, the lines in flight finish, and the batch ends `cancelled` with the answers it has. */
  @Post(':id/cancel')
  @HttpCode(200)
  async cancel(@Req() req: FastifyRequest, @Param('id') id: string): Promise<OpenAIBatch> {
    const batch = await this.mine(req, id);
    const updated = await orUnavailable(cancelBatch(this.enabled().store, batch.id, nowSeconds()));
    if (!updated) throw notFound(id);
    return toOpenAIBatch(updated);
  }

  private async mine(req: FastifyRequest, id: string): Promise<BatchRecord> {
    const { store } = this.enabled();
    // An id the gateway never gives is no batch (OpenAI's 404 too), and is not looked up.
    if (!isBatchId(id)) throw notFound(id);
    const batch = await orUnavailable(store.get(ownerOf(requestContextOf(req)), id));
    if (!batch) throw notFound(id);
    return batch;
  }

  /** The stores, when `batches.enabled`; else a 404. */
  private enabled(): { store: BatchStore; files: FileStore; config: BatchesSettings } {
    if (!this.batches || !this.fileStore || !this.settings?.enabled) throw batchesDisabled('Batch');
    return { store: this.batches, files: this.fileStore, config: this.settings };
  }
}

/**
 * The tags a batch gives its lines: the creating request's own, without those its key sets (the
 * key's tags are added again to each line's request, as they are now; sent along they would only
 * take room in the header the line's tags travel in).
 */
export function requestTags(contextTags: Record<string, string>, keyTags: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(contextTags).filter(([name]) => !Object.hasOwn(keyTags, name)));
}

function notFound(id: string): GatewayError {
  return new GatewayError('not_found', `No such Batch object: ${id}`, { param: 'id', code: 'batch_not_found' });
}
