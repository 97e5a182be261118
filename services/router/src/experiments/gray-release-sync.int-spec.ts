import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { GatewayConfig } from '@openrouter/config';
import { createLogger } from '@openrouter/observability';
import { configWith, ManualClock, TWO_MODELS } from '../routing/test-engine.testing';
import { GrayReleases } from './gray-release';
import { startGrayReleaseSync, type GrayReleaseSync } from './gray-release-sync';

const logger = createLogger('gray-release-redis-spec', 'silent');

/** The redis-server the integration project's global setup started. */
function redisUrl(): string {
  const url = process.env['OPENROUTER_TEST_REDIS_URL'];
  if (!url) throw new Error('OPENROUTER_TEST_REDIS_URL is not set: run this suite through jest\'s integration project');
  return url;
}

async function until(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((done) => setTimeout(done, 20));
  }
}

describe('gray releases shared by router replicas through Redis (redis-server)', () => {
  const base = configWith(TWO_MODELS, {
    grayReleases: [{ id: 'gr', target: 'cheap', baseline: 'cheap', canary: 'premium', steps: [{ afterMinutes: 0, percent: 10 }, { afterMinutes: 60, percent: 50 }, { afterMinutes: 120, percent: 100 }], rollback: { minRequests: 5, errorRateMargin: 0.1 } }],
  });
  const keyPrefix = `gray-${randomBytes(4).toString('hex')}:`;
  const config: GatewayConfig = { ...base, access: { ...base.access, redis: { url: redisUrl(), keyPrefix } }, routing: { ...base.routing, grayReleaseSyncMs: 50 } };
  const syncs: GrayReleaseSync[] = [];

  async function replica(clock: ManualClock): Promise<GrayReleases> {
    const releases = new GrayReleases(config.routing.grayReleases, clock);
    const sync = await startGrayReleaseSync(config, releases, logger);
    if (sync) syncs.push(sync);
    return releases;
  }

  afterAll(async () => {
    await Promise.all(syncs.map((s) => s.close()));
  });

  it('runs every replica on the first one’s schedule, spreads a rollback to all, and a restarted replica starts rolled back', async () => {
    const clock = new ManualClock();
    const a = await replica(clock);
    clock.advance(61 * 60_000);
    const b = await replica(clock);
    expect(b.byId('gr')?.state()).toMatchObject({ status: 'active', canaryPercent: 50 });

    const release = a.byId('gr');
    for (let i = 0; i < 5; i++) release?.record('baseline', true, 100);
    for (let i = 0; i < 5; i++) release?.record('canary', false, 100);
    expect(release?.status()).toBe('rolled_back');
    // B hears of it at its next read of the shared state, without a call of its own.
    await until(() => b.byId('gr')?.status() === 'rolled_back', "replica B's rollback");
    expect(b.byId('gr')?.state()).toMatchObject({ canaryPercent: 0, rollbackReason: release?.state().rollbackReason, rolledBackAtMs: release?.state().rolledBackAtMs });
    // And the calls A judged on, shared: B's stats are the fleet's, A's calls among them.
    await until(() => b.byId('gr')?.state().canaryStats?.requests === 5, "A's calls in B's stats");
    expect(b.byId('gr')?.state()).toMatchObject({ statsScope: 'fleet', baselineStats: { requests: 5, errors: 0 }, canaryStats: { requests: 5, errors: 5 } });

    const restarted = await replica(clock);
    expect(restarted.byId('gr')?.state()).toMatchObject({ status: 'rolled_back', rollbackReason: release?.state().rollbackReason });

    const redis = new Redis(redisUrl());
    try {
      expect(await redis.hgetall(`${keyPrefix}router:gray-release:gr`)).toEqual({ startAt: String(clock.now() - 61 * 60_000), rolledBackAt: String(clock.now()), reason: release?.state().rollbackReason });
    } finally {
      redis.disconnect();
    }
  });

  it('runs a release whose kept start was set by hand in another form on its own start, and still hears of rollbacks', async () => {
    const prefix = `gray-${randomBytes(4).toString('hex')}:`;
    const own: GatewayConfig = { ...config, access: { ...config.access, redis: { url: redisUrl(), keyPrefix: prefix } } };
    const redis = new Redis(redisUrl());
    try {
      await redis.hset(`${prefix}router:gray-release:gr`, 'startAt', '2025-06-01T09:00:00Z');
      const releases = new GrayReleases(own.routing.grayReleases, new ManualClock());
      const sync = await startGrayReleaseSync(own, releases, logger);
      if (sync) syncs.push(sync);
      expect(releases.byId('gr')?.state()).toMatchObject({ status: 'active', canaryPercent: 10 });
      await redis.hset(`${prefix}router:gray-release:gr`, 'rolledBackAt', '1748768400000', 'reason', 'rolled back by hand');
      await until(() => releases.byId('gr')?.status() === 'rolled_back', 'the rollback read');
      expect(releases.byId('gr')?.state()).toMatchObject({ rollbackReason: 'rolled back by hand', rolledBackAtMs: 1748768400000 });
    } finally {
      redis.disconnect();
    }
  });

  it('goes on with the other releases when one release’s kept state is a key of another type, says so once, and keeps it once the key is fixed', async () => {
    const prefix = `gray-${randomBytes(4).toString('hex')}:`;
    const gr = config.routing.grayReleases[0];
    if (!gr) throw new Error('the spec config has a release');
    const other = { ...gr, id: 'other', target: 'premium', baseline: 'premium', canary: 'cheap' };
    const own: GatewayConfig = { ...config, access: { ...config.access, redis: { url: redisUrl(), keyPrefix: prefix } }, routing: { ...config.routing, grayReleases: [gr, other] } };
    const lines: Array<{ level: number; msg: string; release?: string; reason?: string }> = [];
    const logged = createLogger('gray-release-redis-spec', 'info', { write: (line: string) => void lines.push(JSON.parse(line)) });
    const redis = new Redis(redisUrl());
    try {
      await redis.set(`${prefix}router:gray-release:gr`, 'set by hand');
      const clock = new ManualClock();
      const releases = new GrayReleases(own.routing.grayReleases, clock);
      const sync = await startGrayReleaseSync(own, releases, logged);
      if (sync) syncs.push(sync);
      // The other release's start is kept, and a rollback of it heard.
      expect(await redis.hget(`${prefix}router:gray-release:other`, 'startAt')).toBe(String(clock.now()));
      await redis.hset(`${prefix}router:gray-release:other`, 'rolledBackAt', '1748768400000', 'reason', 'rolled back by hand');
      await until(() => releases.byId('other')?.status() === 'rolled_back', "the other release's rollback read");
      // The release whose key is in the way runs on this router's start, and rolls back here.
      expect(releases.byId('gr')?.state()).toMatchObject({ status: 'active', canaryPercent: 10 });
      const release = releases.byId('gr');
      for (let i = 0; i < 5; i++) release?.record('baseline', true, 100);
      for (let i = 0; i < 5; i++) release?.record('canary', false, 100);
      expect(release?.status()).toBe('rolled_back');
      await sync?.sync();
      await sync?.sync();
      // Said once, for that release, with Redis's reason; nothing said about reaching Redis.
      expect(lines.filter((l) => /refused|unreachable/.test(l.msg))).toEqual([expect.objectContaining({ level: 40, release: 'gr', reason: expect.stringContaining('WRONGTYPE'), msg: expect.stringContaining('gray release state refused') })]);

      await redis.del(`${prefix}router:gray-release:gr`);
      await until(() => lines.some((l) => l.msg === 'gray release state taken again'), 'the release kept again');
      expect(await redis.hgetall(`${prefix}router:gray-release:gr`)).toEqual({ startAt: String(clock.now()), rolledBackAt: String(release?.rollback()?.at), reason: release?.rollback()?.reason });
    } finally {
      redis.disconnect();
    }
  });

  it('starts and serves while Redis cannot be reached, on its own schedule', async () => {
    const unreachable: GatewayConfig = { ...config, access: { ...config.access, redis: { url: 'redis://127.0.0.1:9', keyPrefix } } };
    const releases = new GrayReleases(config.routing.grayReleases, new ManualClock());
    const sync = await startGrayReleaseSync(unreachable, releases, logger);
    if (sync) syncs.push(sync);
    expect(releases.byId('gr')?.state()).toMatchObject({ status: 'active', canaryPercent: 10 });
  });
});
