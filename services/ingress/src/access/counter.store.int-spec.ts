import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { RedisCounterStore, type CounterCharge } from './counter.store';

/** The redis-server the integration project's global setup started. */
function redisUrl(): string {
  const url = process.env['OPENROUTER_TEST_REDIS_URL'];
  if (!url) throw new Error("OPENROUTER_TEST_REDIS_URL is not set: run this suite through jest's integration project");
  return url;
}

const perMinute = (key: string, limit: number, cost = 1): CounterCharge => ({ key, limit, windowMs: 60_000, cost });

/** Redis's clock in whole milliseconds, as the script reads it. */
const ms = ([seconds, micros]: ReadonlyArray<number | string>): number => Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);

describe('the rate-limit counters on Redis (redis-server)', () => {
  const connections: Redis[] = [];
  /** A replica's store (its own connection) on the keys under `prefix`. */
  const replica = (prefix: string): { store: RedisCounterStore; redis: Redis } => {
    const redis = new Redis(redisUrl());
    connections.push(redis);
    return { store: new RedisCounterStore(redis, prefix), redis };
  };
  const prefix = (): string => `rl-spec-${randomBytes(4).toString('hex')}:`;

  afterAll(() => {
    for (const redis of connections) redis.disconnect();
  });

  it('reports what is left exactly, whatever the limit', async () => {
    const { store } = replica(prefix());
    const limits = Array.from({ length: 300 }, (_, i) => i + 1);
    const outcomes = await store.take(limits.map((limit) => perMinute(`k${limit}`, limit)));
    expect(limits.filter((limit, i) => outcomes[i]?.remaining !== limit - 1)).toEqual([]);
  });

  it('admits a burst of exactly the limit within one millisecond, and refuses the next', async () => {
    const { store, redis } = replica(prefix());
    // The burst's commands share one write (auto-pipelining); retried until Redis ran it within one millisecond.
    for (let attempt = 0; ; attempt++) {
      const key = `burst${attempt}`;
      const before = redis.time();
      const takes = Array.from({ length: 10 }, () => store.take([perMinute(key, 9)]));
      const after = redis.time();
      const [start, end, outcomes] = await Promise.all([before, after, Promise.all(takes)]);
      if (ms(start) !== ms(end) && attempt < 200) continue;
      expect(outcomes.map(([o]) => o?.allowed)).toEqual([...Array<boolean>(9).fill(true), false]);
      expect(outcomes.map(([o]) => o?.remaining)).toEqual([8, 7, 6, 5, 4, 3, 2, 1, 0, 0]);
      return;
    }
  });

  it('ignores a correction that is not a finite number: the limit stays as charged', async () => {
    const { store } = replica(prefix());
    // Hourly: what refills while the test runs is less than a unit.
    const hourly = (cost: number): CounterCharge => ({ key: 'tokens', limit: 100, windowMs: 3_600_000, cost });
    await store.take([hourly(60)]);
    await store.adjust([hourly(Number.NaN), hourly(Number.POSITIVE_INFINITY), hourly(Number.NEGATIVE_INFINITY)]);
    const [refused] = await store.take([hourly(41)]);
    expect(refused).toMatchObject({ allowed: false, remaining: 40 });
  });

  it('admits no more than the limit to concurrent requests from several replicas', async () => {
    const shared = prefix();
    const replicas = [replica(shared), replica(shared), replica(shared)];
    const hourly: CounterCharge = { key: 'shared', limit: 10, windowMs: 3_600_000, cost: 1 };
    const outcomes = await Promise.all(replicas.flatMap(({ store }) => Array.from({ length: 12 }, () => store.take([hourly]))));
    expect(outcomes.filter(([o]) => o?.allowed)).toHaveLength(10);
  });
});
