import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { apiError } from '../support/api-error';
import { RedisServer } from '../support/infra/redis';
import { startTestGateway, type TestGateway } from '../support/test-gateway';

/**
 * A Redis outage under stored responses: a response answered while Redis is away still goes
 * out, saying `store: false` (it has been served and billed; counted and logged), while reading a
 * stored response or continuing one answers 503 `response_store_unavailable` (retryable, in
 * OpenAI's shape), never a 500. Once Redis is back (its data kept on disk, as a production Redis
 * keeps it) the conversation goes on where it was.
 */
describe('stored responses through a Redis outage', () => {
  let dir: string;
  let redis: RedisServer;
  let gw: TestGateway;
  const persistent = (): { args: string[] } => ({ args: ['--appendonly', 'yes', '--appendfsync', 'always', '--dir', dir] });
  const failedToStore = async (): Promise<number> => {
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    return Number(/^openrouter_responses_stored_total\{[^}]*outcome="failed"[^}]*\} (\d+)$/m.exec(metrics)?.[1] ?? 0);
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'redis-outage-'));
    redis = await RedisServer.start(undefined, persistent());
    gw = await startTestGateway({
      configure: (doc) => {
        doc['access'] = { ...(doc['access'] as object), redis: { url: redis.url, keyPrefix: 'responses-outage:' } };
      },
    });
  });
  afterAll(async () => {
    await gw?.close();
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers unstored while Redis is away, refuses to read or continue with 503, and continues once it is back', async () => {
    const client = gw.client();
    const first = await client.responses.create({ model: 'gpt-4o-mini', input: 'Before the outage' });
    expect(first).toMatchObject({ store: true });
    expect(await failedToStore()).toBe(0);

    await redis.stop();
    const during = await client.responses.create({ model: 'gpt-4o-mini', input: 'During the outage' });
    expect(during).toMatchObject({ status: 'completed', store: false });
    expect(during.output_text.length).toBeGreaterThan(0);
    expect(await failedToStore()).toBe(1);
    const streamed = await client.responses.stream({ model: 'gpt-4o-mini', input: 'Streamed during the outage' }).finalResponse();
    expect(streamed).toMatchObject({ status: 'completed', store: false });
    expect(await failedToStore()).toBe(2);

    const before = gw.sim.requests().length;
    for (const call of [() => client.responses.retrieve(first.id), () => client.responses.create({ model: 'gpt-4o-mini', previous_response_id: first.id, input: 'Still there?' })]) {
      const error = await apiError(call);
      expect(error).toBeInstanceOf(OpenAI.InternalServerError);
      expect([error.status, error.code]).toEqual([503, 'response_store_unavailable']);
    }
    expect(gw.sim.requests().length).toBe(before);

    redis = await RedisServer.start(redis.port, persistent());
    const after = await client.responses.create({ model: 'gpt-4o-mini', previous_response_id: first.id, input: 'After the outage' }, { maxRetries: 10 });
    expect(after).toMatchObject({ store: true, previous_response_id: first.id });
    expect((gw.sim.requests().at(-1)?.body as { messages: Array<{ content: unknown }> }).messages.map((m) => m.content)).toEqual(['Before the outage', first.output_text, 'After the outage']);
    expect((await client.responses.retrieve(after.id)).output_text).toBe(after.output_text);
  });
});
