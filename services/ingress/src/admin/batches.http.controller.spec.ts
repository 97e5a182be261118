import type { FastifyRequest } from 'fastify';
import { GatewayError } from '@openrouter/errors';
import type { BatchRecord } from '../batches/batch-record';
import { MemoryBatchStore } from '../batches/batch-store';
import type { AdminPrincipal } from './admin-auth';
import { AdminBatchesHttpController } from './batches.http.controller';

const batch = (id: string, owner: string, createdAt: number, status: BatchRecord['status'] = 'in_progress'): BatchRecord => ({
  id,
  owner,
  keyId: 'k',
  endpoint: '/v1/chat/completions',
  inputFileId: 'file-1',
  completionWindow: '24h',
  status,
  createdAt,
  expiresAt: createdAt + 86_400,
  requestCounts: { total: 1, completed: 0, failed: 0 },
  metadata: null,
  tags: {},
});

const as = (admin: Partial<AdminPrincipal>): FastifyRequest => ({ admin: { id: 'a', role: 'admin', ...admin } }) as unknown as FastifyRequest;

async function refusal(work: () => Promise<unknown>): Promise<GatewayError> {
  try {
    await work();
  } catch (error) {
    if (error instanceof GatewayError) return error;
    throw error;
  }
  throw new Error('expected a refusal');
}

describe('the admin API of batches', () => {
  let store: MemoryBatchStore;
  let controller: AdminBatchesHttpController;

  beforeEach(async () => {
    store = new MemoryBatchStore();
    controller = new AdminBatchesHttpController(store);
    const input = Buffer.from('{}');
    await store.create(batch('batch_search', 'acme/search', 300), input);
    await store.create(batch('batch_ads', 'acme/ads', 200), input);
    await store.create(batch('batch_solo', 'acme/key:solo', 100), input);
    await store.create(batch('batch_other', 'globex/web', 50), input);
    await store.create(batch('batch_failed', 'acme/search', 400, 'failed'), undefined);
  });

  it('lists every active batch to an unscoped key, oldest first, and only its own to a scoped one', async () => {
    expect((await controller.active(as({}))).data.map((b) => b.id)).toEqual(['batch_other', 'batch_solo', 'batch_ads', 'batch_search']);
    expect((await controller.active(as({ org: 'acme' }))).data.map((b) => b.id)).toEqual(['batch_solo', 'batch_ads', 'batch_search']);
    // A project key does not reach another project's batches, nor those a key in no project owns alone.
    expect((await controller.active(as({ role: 'project', org: 'acme', project: 'search' }))).data.map((b) => b.id)).toEqual(['batch_search']);
  });

  it("pages a project's batches, or a projectless key's, and answers another's as not found", async () => {
    expect((await controller.list(as({}), { org: 'acme', project: 'search' })).data.map((b) => [b.id, b.status])).toEqual([
      ['batch_failed', 'failed'],
      ['batch_search', 'in_progress'],
    ]);
    expect((await controller.list(as({}), { org: 'acme', key: 'solo' })).data).toEqual([expect.objectContaining({ id: 'batch_solo', org: 'acme', project: null })]);
    expect((await refusal(() => controller.list(as({}), { org: 'acme' }))).param).toBe('project');
    expect((await refusal(() => controller.list(as({}), { org: 'acme', project: 'search', key: 'solo' }))).param).toBe('project');
    expect((await refusal(() => controller.list(as({ role: 'project', org: 'acme', project: 'search' }), { org: 'acme', project: 'ads' }))).kind).toBe('not_found');
    expect((await refusal(() => controller.list(as({ role: 'project', org: 'acme', project: 'search' }), { org: 'acme', key: 'solo' }))).kind).toBe('not_found');
  });

  it('cancels a batch within the scope, answers one outside it as not found, and refuses one that has ended', async () => {
    expect((await refusal(() => controller.cancel(as({ org: 'globex' }), 'batch_search'))).kind).toBe('not_found');
    expect(await controller.cancel(as({ org: 'acme' }), 'batch_search')).toMatchObject({ id: 'batch_search', status: 'cancelling', cancelling_at: expect.any(Number) });
    expect((await controller.cancel(as({}), 'batch_search')).status).toBe('cancelling');
    expect(await refusal(() => controller.cancel(as({}), 'batch_failed'))).toMatchObject({ kind: 'conflict', code: 'batch_ended' });
    expect((await refusal(() => controller.retrieve(as({}), 'batch_missing'))).code).toBe('batch_not_found');
  });
});
