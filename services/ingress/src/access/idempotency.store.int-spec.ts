import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { RedisIdempotencyStore } from './idempotency.store';
import { IdempotentResponses } from './idempotent-responses';

/** The redis-server the integration project's global setup started. */
function redisUrl(): string {
  const url = process.env['OPENROUTER_TEST_REDIS_URL'];
  if (!url) throw new Error("OPENROUTER_TEST_REDIS_URL is not set: run this suite through jest's integration project");
  return url;
}

interface Answer {
  status: number;
  body: unknown;
}

describe('idempotent admin answers on Redis (redis-server), shared by two replicas', () => {
  const connections: Redis[] = [];
  const prefix = `idem-spec-${randomBytes(4).toString('hex')}:`;
  /** A replica: its own connection, the shared prefix and secret. */
  const replica = (): { responses: IdempotentResponses<Answer>; redis: Redis } => {
    const redis = new Redis(redisUrl());
    connections.push(redis);
    return { responses: new IdempotentResponses<Answer>(new RedisIdempotencyStore(redis, prefix), 'shared-hash-secret'), redis };
  };

  afterAll(() => {
    for (const redis of connections) redis.disconnect();
  });

  it('replays on one replica the answer the other stored, refuses it while in progress there, and keeps it 24 h, sealed', async () => {
    const [a, b] = [replica(), replica()];
    const answer: Answer = { status: 201, body: { object: 'api_key', id: 'key_9', key: 'sk-or-v1-secret-in-the-answer-0000000' } };
    const attempt = await a.responses.begin('ops', 'retry-me', 'fp');
    if (attempt.kind !== 'first') throw new Error('expected the first attempt');
    await expect(b.responses.begin('ops', 'retry-me', 'fp')).rejects.toMatchObject({ kind: 'conflict', code: 'idempotency_key_in_use' });

    await attempt.complete(answer);
    await expect(b.responses.begin('ops', 'retry-me', 'fp')).resolves.toEqual({ kind: 'replay', answer });
    await expect(b.responses.begin('ops', 'retry-me', 'another-body')).rejects.toMatchObject({ kind: 'bad_request', code: 'idempotency_key_reused' });

    const keys = await b.redis.keys(`${prefix}idempotency:*`);
    expect(keys).toHaveLength(1);
    const stored = await b.redis.get(keys[0] as string);
    expect(stored).not.toContain('secret-in-the-answer');
    expect(stored).not.toContain('retry-me');
    const ttl = await b.redis.pttl(keys[0] as string);
    expect(ttl).toBeGreaterThan(23 * 3_600_000);
    expect(ttl).toBeLessThanOrEqual(24 * 3_600_000);
  });

  it('lets a retry on the other replica run again once a failed request released its key; a claim holds only its lease', async () => {
    const [a, b] = [replica(), replica()];
    const failed = await a.responses.begin('ops', 'failed-once', 'fp');
    if (failed.kind !== 'first') throw new Error('expected the first attempt');
    await failed.release();
    expect((await b.responses.begin('ops', 'failed-once', 'fp')).kind).toBe('first');
    const keys = await a.redis.keys(`${prefix}idempotency:*`);
    const ttls = await Promise.all(keys.map((k) => a.redis.pttl(k)));
    // The claim just taken expires with its lease (a minute), not in a day.
    expect(Math.min(...ttls)).toBeLessThanOrEqual(60_000);
  });
});
