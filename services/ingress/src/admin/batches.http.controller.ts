import { Controller, Get, HttpCode, Inject, Optional, Param, Post, Query, Req, UseGuards } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { GatewayError } from '@openrouter/errors';
import { inScope, outOfScope } from '../access/admin-scope';
import { nowSeconds, toOpenAIBatch, type BatchRecord } from '../batches/batch-record';
import { BATCH_STORE, cancelBatch, type BatchStore } from '../batches/batch-store';
import { ownerParts } from '../access/owner';
import { batchesDisabled, orUnavailable } from '../batches/file-store';
import { AdminGuard, adminOf, Roles } from './admin.guard';
import { parseInput } from './admin-input';

export const adminBatchesQuery = z
  .strictObject({
    org: z.string().min(1).max(256),
    project: z.string().min(1).max(256).optional(),
    key: z.string().min(1).max(256).optional().describe('A key in no project: the batches it owns alone'),
    limit: z.coerce.number().int().min(1).max(100).default(20),
    after: z.string().min(1).optional(),
  })
  .refine((q) => (q.project === undefined) !== (q.key === undefined), { message: 'name either a project or a key (of a key in no project)', path: ['project'] });

const count = z.number().int().nonnegative();

/** A batch as the admin API shows it (and the OpenAPI document describes it): OpenAI's Batch object, and whose it is. */
export const adminBatchViewSchema = z.strictObject({
  id: z.string(),
  object: z.literal('batch'),
  org: z.string(),
  project: z.string().nullable().describe('The project that owns it (null: the key is in no project, and owns it alone)'),
  key_id: z.string().describe('The key that created it, whose limits and budgets its lines run under'),
  endpoint: z.string(),
  status: z.enum(['validating', 'failed', 'in_progress', 'finalizing', 'completed', 'expired', 'cancelling', 'cancelled']),
  input_file_id: z.string(),
  completion_window: z.string(),
  output_file_id: z.string().nullable(),
  error_file_id: z.string().nullable(),
  errors: z.strictObject({ object: z.literal('list'), data: z.array(z.strictObject({ code: z.string(), message: z.string(), param: z.string().nullable(), line: z.number().nullable() })) }).nullable(),
  created_at: count,
  in_progress_at: count.nullable(),
  expires_at: count,
  finalizing_at: count.nullable(),
  completed_at: count.nullable(),
  failed_at: count.nullable(),
  expired_at: count.nullable(),
  cancelling_at: count.nullable(),
  cancelled_at: count.nullable(),
  request_counts: z.strictObject({ total: count, completed: count, failed: count }),
  usage: z
    .strictObject({
      input_tokens: count,
      input_tokens_details: z.strictObject({ cached_tokens: count }),
      output_tokens: count,
      output_tokens_details: z.strictObject({ reasoning_tokens: count }),
      total_tokens: count,
    })
    .optional(),
  metadata: z.record(z.string(), z.string()).nullable(),
});
export type AdminBatchView = z.infer<typeof adminBatchViewSchema>;

export function adminBatchView(batch: BatchRecord): AdminBatchView {
  const { org, project } = ownerParts(batch.owner);
  const { id, object, ...rest } = toOpenAIBatch(batch);
  return { id, object, org, project, key_id: batch.keyId, ...rest };
}

/**
 * Batches across the gateway's tenants (docs/batches.md): a project's batches, every batch running
 * or waiting to run now, and a cancel for any of them (a runaway job stopped without its project's
 * key). A key scoped to an org or a project sees and cancels only its own; another is 404.
 */
@Controller('admin/v1/batches')
@UseGuards(AdminGuard)
export class AdminBatchesHttpController {
  constructor(@Optional() @Inject(BATCH_STORE) private readonly batches?: BatchStore) {}

  @Get()
  @Roles('viewer', 'project')
  async list(@Req() req: FastifyRequest, @Query() query: unknown): Promise<{ object: 'list'; data: AdminBatchView[]; first_id: string | null; last_id: string | null; has_more: boolean }> {
    const store = this.store();
    const { org, project, key, limit, after } = parseInput(adminBatchesQuery, query);
    // A key in no project owns its batches alone: a project-scoped admin key does not reach them.
    if (!inScope(adminOf(req), org, project ?? '')) throw outOfScope();
    const page = await orUnavailable(store.list(project !== undefined ? `${org}/${project}` : `${org}/key:${key}`, { limit, after }));
    const data = page.data.map(adminBatchView);
    return { object: 'list', data, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null, has_more: page.hasMore };
  }

  /** Every batch running, waiting to run or being cancelled now, oldest first (those within the caller's scope). */
  @Get('active')
  @Roles('viewer', 'project')
  async active(@Req() req: FastifyRequest): Promise<{ object: 'list'; data: AdminBatchView[] }> {
    const store = this.store();
    const scope = adminOf(req);
    const ids = await orUnavailable(store.active());
    const found = await orUnavailable(Promise.all(ids.map((id) => store.byId(id))));
    const data = found
      .filter((b): b is BatchRecord => b !== undefined && this.visible(scope, b))
      .sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id))
      .map(adminBatchView);
    return { object: 'list', data };
  }

  @Get(':id')
  @Roles('viewer', 'project')
  async retrieve(@Req() req: FastifyRequest, @Param('id') id: string): Promise<AdminBatchView> {
    return adminBatchView(await this.visibleBatch(req, id));
  }

  @Post(':id/cancel')
  @HttpCode(200)
  @Roles('project')
  async cancel(@Req() req: FastifyRequest, @Param('id') id: string): Promise<AdminBatchView> {
    const batch = await this.visibleBatch(req, id);
    const updated = await orUnavailable(cancelBatch(this.store(), batch.id, nowSeconds()));
    if (!updated) throw notFound(id);
    return adminBatchView(updated);
  }

  private async visibleBatch(req: FastifyRequest, id: string): Promise<BatchRecord> {
    const batch = await orUnavailable(this.store().byId(id));
    if (!batch || !this.visible(adminOf(req), batch)) throw notFound(id);
    return batch;
  }

  private visible(scope: Parameters<typeof inScope>[0], batch: BatchRecord): boolean {
    const { org, project } = ownerParts(batch.owner);
    return inScope(scope, org, project ?? '');
  }

  private store(): BatchStore {
    if (!this.batches) throw batchesDisabled('Batch');
    return this.batches;
  }
}

function notFound(id: string): GatewayError {
  return new GatewayError('not_found', `No such Batch object: ${id}`, { param: 'id', code: 'batch_not_found' });
}
