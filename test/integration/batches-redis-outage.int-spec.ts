import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI, { toFile } from 'openai';
import { apiError } from '../support/api-error';
import { RedisServer } from '../support/infra/redis';
import { waitFor } from '../support/infra/wait-for';
import { startTestGateway, type TestGateway } from '../support/test-gateway';

const LINES = 10;

const chatLine = (customId: string): string =>
  JSON.stringify({ custom_id: customId, method: 'POST', url: '/v1/chat/completions', body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: `question ${customId}` }] } });

/**
 * A Redis outage in the middle of a batch: the Files and Batch APIs answer 503 (retryable, in
 * OpenAI's shape) while it lasts, never a 500, and once Redis is back (its data kept on disk, as a
 * production Redis keeps it) the batch runs on from the lines it has results for and ends with
 * every line answered once, but for the one in flight when Redis went, which may run again.
 */
describe('batches through a Redis outage', () => {
  let dir: string;
  let redis: RedisServer;
  let gw: TestGateway;
  const persistent = (): { args: string[] } => ({ args: ['--appendonly', 'yes', '--appendfsync', 'always', '--dir', dir] });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'redis-outage-'));
    redis = await RedisServer.start(undefined, persistent());
    gw = await startTestGateway({
      configure: (doc) => {
        doc['access'] = { ...(doc['access'] as object), redis: { url: redis.url, keyPrefix: 'batches-outage:' } };
        doc['batches'] = { pollMs: 50, concurrency: 1, leaseMs: 1_000 };
      },
    });
    gw.sim.configure({ latencyMs: 150 });
  });
  afterAll(async () => {
    await gw?.close();
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers 503 while Redis is away and finishes the batch once it is back, each line answered once but the one in flight', async () => {
    const client = gw.client();
    const lines = Array.from({ length: LINES }, (_, i) => chatLine(`line-${i}`));
    const file = await client.files.create({ file: await toFile(Buffer.from(`${lines.join('\n')}\n`), 'in.jsonl'), purpose: 'batch' });
    const { id } = await client.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
    await waitFor(async () => ((await client.batches.retrieve(id)).request_counts?.completed ?? 0) >= 2 || undefined, { timeoutMs: 30_000, intervalMs: 20, what: 'two lines answered' });

    await redis.stop();
    const files = await apiError(() => client.files.list());
    expect(files).toBeInstanceOf(OpenAI.InternalServerError);
    expect([files.status, files.code]).toEqual([503, 'file_store_unavailable']);
    const batches = await apiError(() => client.batches.retrieve(id));
    expect([batches.status, batches.code]).toEqual([503, 'file_store_unavailable']);

    redis = await RedisServer.start(redis.port, persistent());
    const batch = await waitFor(
      async () => {
        const found = await client.batches.retrieve(id).catch(() => undefined);
        return found?.status === 'completed' ? found : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 100, what: 'the batch to complete after the outage' },
    );
    expect(batch.request_counts).toEqual({ total: LINES, completed: LINES, failed: 0 });
    const output = (await (await client.files.content(batch.output_file_id as string)).text())
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { custom_id: string }).custom_id);
    expect(output).toEqual(lines.map((_, i) => `line-${i}`));
    const calls = gw.sim.requests().filter((r) => r.path === '/v1/chat/completions').length;
    expect(calls).toBeGreaterThanOrEqual(LINES);
    expect(calls).toBeLessThanOrEqual(LINES + 1);
  });
});
