import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { batchesSchema } from '@openrouter/config';
import { createLogger } from '@openrouter/observability';
import { InternalCallCredential } from '../access/internal-call';
import { BatchRunner } from './batch-runner';
import { batchRecord, until } from './batch-store.cases.testing';
import { MemoryFileStore } from './memory-file-store';
import type { OwnApiResponse } from './own-api';
import { RedisBatchStore } from './redis-batch-store';

/** The redis-server the integration project's global setup started. */
function testRedisUrl(): string {
  const url = process.env['OPENROUTER_TEST_REDIS_URL'];
  if (!url) throw new Error("OPENROUTER_TEST_REDIS_URL is not set: run this suite through jest's integration project");
  return url;
}

const RETENTION_MS = 30 * 86_400_000;

describe('BatchRunner on a real Redis', () => {
  let redis: Redis;

  beforeAll(() => {
    redis = new Redis(testRedisUrl());
  });
  afterAll(async () => {
    await redis?.quit();
  });

  it('ends a batch whose input no longer opens (sealed under a secret dropped since) failed at once, input_missing: not tried again every lease for a day and a half', async () => {
    const prefix = `batch-runner-spec:${randomBytes(6).toString('hex')}:`;
    const batch = batchRecord('acme/search', 0);
    const input = Buffer.from(['r0', 'r1'].map((id) => JSON.stringify({ custom_id: id, method: 'POST', url: '/v1/chat/completions', body: { model: 'm', messages: [] } })).join('\n'));
    await new RedisBatchStore(redis, prefix, 'a secret dropped since', RETENTION_MS).create(batch, input);
    const store = new RedisBatchStore(redis, prefix, 'the secret now', RETENTION_MS);
    let calls = 0;
    const api = async (): Promise<OwnApiResponse> => {
      calls++;
      return { statusCode: 200, headers: {}, body: '{}' };
    };
    // A lease far longer than the wait: a run that stopped on an error would not be taken up again within it.
    const runner = new BatchRunner(batchesSchema.parse({ enabled: true, pollMs: 50, leaseMs: 60_000 }), store, new MemoryFileStore(), api, new InternalCallCredential(), createLogger('ingress', 'silent'));
    runner.start();
    try {
      await until(async () => (await store.active()).length === 0, 'the batch to end');
    } finally {
      await runner.close();
    }
    expect(await store.byId(batch.id)).toMatchObject({ status: 'failed', failedAt: expect.any(Number), errors: [{ code: 'input_missing', message: expect.stringContaining('no longer accepts'), param: null, line: null }] });
    expect(calls).toBe(0);
    // Its input, results and claim are gone with it.
    expect((await redis.keys(`${prefix}*`)).sort()).toEqual([`${prefix}batch:${batch.id}`, `${prefix}batches:owner:acme/search`]);
  });
});
