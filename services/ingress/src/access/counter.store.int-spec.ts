import { randomBytes } from 'node:crypto';
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import { RedisCounterStore, TakeReleasedError, type CounterCharge } from './counter.store';
import { RateLimiter, type ApplicableLimit } from './rate-limiter';
import { connectRedis } from './redis-connection';

/** The redis-server the integration project's global setup started. */
function redisUrl(): string {
  const url = process.env['OPENROUTER_TEST_REDIS_URL'];
  if (!url) throw new Error("OPENROUTER_TEST_REDIS_URL is not set: run this suite through jest's integration project");
  return url;
}

const perMinute = (key: string, limit: number, cost = 1): CounterCharge => ({ key, limit, windowMs: 60_000, cost });
/** Hourly: what refills while a test runs is less than a unit, so what is left reads exactly. */
const hourly = (key: string, limit: number, cost: number, until?: number): CounterCharge => ({ key, limit, windowMs: 3_600_000, cost, ...(until === undefined ? {} : { until }) });

/**
 * A TCP hop between a client and Redis that can hold Redis's answers back: what the client sends
 * still reaches Redis and runs, but the client hears nothing until `deliver` (an answer lost to a
 * slow network, which the client's command timeout gives up on).
 */
class AnswerHoldingProxy {
  private holding = false;
  private readonly held: Array<{ to: Socket; data: Buffer }> = [];
  private readonly sockets: Socket[] = [];

  private constructor(private readonly server: Server) {}

  static async start(target: string): Promise<AnswerHoldingProxy> {
    const { hostname, port } = new URL(target);
    const server = createServer();
    const proxy = new AnswerHoldingProxy(server);
    server.on('connection', (client) => {
      const upstream = connect(Number(port), hostname);
      proxy.sockets.push(client, upstream);
      client.pipe(upstream);
      upstream.on('data', (data: Buffer) => (proxy.holding ? proxy.held.push({ to: client, data }) : client.write(data)));
      client.on('error', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get url(): string {
    return `redis://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  hold(): void {
    this.holding = true;
  }

  /** Passes on what was held, in order, and everything from then on. */
  deliver(): void {
    this.holding = false;
    for (const { to, data } of this.held.splice(0)) to.write(data);
  }

  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

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

  describe('a take named by its request', () => {
    const requests = hourly('rl:key:k:requests', 10, 1);
    const tokens = hourly('rl:key:k:tokens', 1000, 400);
    /** What is left of each limit, read with a take of nothing. */
    const left = async (store: RedisCounterStore): Promise<number[]> => (await store.take([{ ...requests, cost: 0 }, { ...tokens, cost: 0 }])).map((o) => o.remaining);

    it('gives back what a take charged when it is released after it ran, once', async () => {
      const { store } = replica(prefix());
      await store.take([requests, tokens], 'req-1:a');
      expect(await left(store)).toEqual([9, 600]);
      await store.release('req-1:a', [requests, tokens]);
      expect(await left(store)).toEqual([10, 1000]);
      // Released again (a retry after its answer was lost), it gives back nothing more.
      await store.take([requests, tokens], 'req-2:b');
      await store.release('req-1:a', [requests, tokens]);
      expect(await left(store)).toEqual([9, 600]);
    });

    it('charges nothing for a take that arrives after its release, and says so', async () => {
      const { store } = replica(prefix());
      await store.release('req-1:a', [requests, tokens]);
      await expect(store.take([requests, tokens], 'req-1:a')).rejects.toBeInstanceOf(TakeReleasedError);
      expect(await left(store)).toEqual([10, 1000]);
    });

    it('answers a take sent again as made, and charges it once', async () => {
      const { store } = replica(prefix());
      const first = await store.take([requests, tokens], 'req-1:a');
      const again = await store.take([requests, tokens], 'req-1:a');
      expect(again.map((o) => [o.allowed, o.nextTat])).toEqual(first.map((o) => [true, o.nextTat]));
      expect(await left(store)).toEqual([9, 600]);
    });

    it('settles a take once, whatever sends the settle again', async () => {
      const { store } = replica(prefix());
      const [, reserved] = await store.take([requests, tokens], 'req-1:a');
      // It used 100 of its 400: 300 come back, once.
      const refund = hourly(tokens.key, 1000, -300, reserved?.nextTat);
      await store.settle('req-1:a', [refund]);
      await store.settle('req-1:a', [refund]);
      expect(await left(store)).toEqual([9, 900]);
      // Nor does a release after the settle give anything back.
      await store.release('req-1:a', [requests, tokens]);
      expect(await left(store)).toEqual([9, 900]);
    });
  });

  it('gives back a take that Redis ran but whose answer the limiter gave up on, under fail-open', async () => {
    const proxy = await AnswerHoldingProxy.start(redisUrl());
    // The service's own connection: its 1 s command timeout is what gives up on the answer.
    const redis = connectRedis({ url: proxy.url });
    const store = new RedisCounterStore(redis, prefix());
    const failures: unknown[] = [];
    try {
      if (redis.status !== 'ready') await new Promise((resolve) => redis.once('ready', resolve));
      const limiter = new RateLimiter(store, 'open', (error) => failures.push(error));
      // Per minute, as the limiter counts: a request refills in 12 s, a token in 6 s, far longer than the test.
      const limits: ApplicableLimit[] = [
        { scope: 'key', id: 'k', kind: 'requests', perMinute: 5 },
        { scope: 'key', id: 'k', kind: 'tokens', perMinute: 10 },
      ];
      const demand = { prompt: 8, output: 0, outputAsked: true };
      // Loads the script on Redis first, so the take below runs as it is sent.
      await store.take([perMinute('warm-up', 1)]);
      proxy.hold();
      const admitted = await limiter.admit(limits, demand);
      // Served unlimited, the store's trouble reported, as fail-open says.
      expect(admitted.headers).toEqual({});
      expect(failures).toEqual([expect.objectContaining({ message: expect.stringContaining('timed out') })]);
      proxy.deliver();
      // Redis answers a connection's commands in order: once it answers this, the take and what
      // the limiter sent after it have run.
      await redis.ping();
      const next = await limiter.admit(limits, { ...demand, prompt: 1 });
      expect(next.headers).toMatchObject({ 'x-ratelimit-remaining-requests': '4', 'x-ratelimit-remaining-tokens': '9' });
    } finally {
      redis.disconnect();
      await proxy.stop();
    }
  });

  it('admits no more than the limit to concurrent requests from several replicas', async () => {
    const shared = prefix();
    const replicas = [replica(shared), replica(shared), replica(shared)];
    const hourly: CounterCharge = { key: 'shared', limit: 10, windowMs: 3_600_000, cost: 1 };
    const outcomes = await Promise.all(replicas.flatMap(({ store }) => Array.from({ length: 12 }, () => store.take([hourly]))));
    expect(outcomes.filter(([o]) => o?.allowed)).toHaveLength(10);
  });
});
