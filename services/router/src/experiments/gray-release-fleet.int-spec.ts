import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { createLogger } from '@openrouter/observability';
import { configWith, ManualClock, TWO_MODELS } from '../routing/test-engine.testing';
import { latencyBin } from '../stats/sliding-window';
import { emptyArmCounts } from './fleet-counts';
import { GrayReleases } from './gray-release';
import { GrayReleaseSync, RedisGrayReleaseStore } from './gray-release-sync';

/** The redis-server the integration project's global setup started. */
function redisUrl(): string {
  const url = process.env['OPENROUTER_TEST_REDIS_URL'];
  if (!url) throw new Error('OPENROUTER_TEST_REDIS_URL is not set: run this suite through jest\'s integration project');
  return url;
}

const WINDOW_MS = 300_000;
const BUCKET_MS = WINDOW_MS / 20;
const REQUESTS = '0';
const ERRORS = '1';

function releasesConfig(minRequests: number) {
  return configWith(TWO_MODELS, {
    grayReleases: [{ id: 'gr', target: 'cheap', baseline: 'cheap', canary: 'premium', steps: [{ afterMinutes: 0, percent: 50 }], rollback: { minRequests, errorRateMargin: 0.1, p95LatencyMargin: 0.5, windowMs: WINDOW_MS } }],
  }).routing.grayReleases;
}

interface Replica {
  releases: GrayReleases;
  sync: GrayReleaseSync;
  redis: Redis;
  logs: Array<{ level: number; msg: string; droppedCalls?: Record<string, number> }>;
}

/**
 * Router replicas sharing one Redis, each with its own connection and its own sync, whose rounds
 * the tests run themselves (`sync.sync()`): the timer's interval is longer than any test.
 */
describe('a gray release judged on the fleet’s calls, shared through Redis (redis-server)', () => {
  const replicas: Replica[] = [];
  let keyPrefix: string;

  beforeEach(() => {
    keyPrefix = `gray-fleet-${randomBytes(4).toString('hex')}:`;
  });

  afterEach(async () => {
    await Promise.all(replicas.splice(0).map((r) => r.sync.close()));
  });

  async function replica(clock: ManualClock, minRequests = 10): Promise<Replica> {
    const logs: Replica['logs'] = [];
    const logger = createLogger('gray-release-fleet-spec', 'info', {
      write: (line: string) => {
        logs.push(JSON.parse(line));
      },
    });
    const redis = new Redis(redisUrl(), { lazyConnect: true, maxRetriesPerRequest: 1 });
    const releases = new GrayReleases(releasesConfig(minRequests), clock);
    const sync = new GrayReleaseSync(releases, new RedisGrayReleaseStore(redis, keyPrefix), logger, 3_600_000);
    await sync.start();
    const started = { releases, sync, redis, logs };
    replicas.push(started);
    return started;
  }

  const release = (r: Replica) => {
    const found = r.releases.byId('gr');
    if (!found) throw new Error('gray release gr is not configured');
    return found;
  };

  async function fleetCounters(arm: string, at: number): Promise<Record<string, string>> {
    const redis = new Redis(redisUrl());
    try {
      return await redis.hgetall(`${keyPrefix}router:gray-release:gr:calls:${WINDOW_MS}:${arm}:${Math.floor(at / BUCKET_MS)}`);
    } finally {
      redis.disconnect();
    }
  }

  it('rolls the canary back on every replica once the fleet’s calls cross minRequests and the margin, though no replica’s share does', async () => {
    const clock = new ManualClock();
    const [a, b, c] = [await replica(clock), await replica(clock), await replica(clock)];
    for (const r of [a, b, c]) {
      for (let i = 0; i < 3; i++) release(r).record('baseline', true, 100);
      for (let i = 0; i < 3; i++) release(r).record('canary', false, 0);
    }
    for (const r of [a, b, c, a, b]) await r.sync.sync();
    // Nine calls an arm in the fleet, three on each replica: below minRequests (10) everywhere.
    for (const r of [a, b, c]) {
      expect(release(r).state()).toMatchObject({ status: 'active', statsScope: 'fleet', statsReadAtMs: clock.now(), baselineStats: { requests: 9, errors: 0 }, canaryStats: { requests: 9, errors: 9 } });
    }

    // B's next calls make ten an arm in the fleet (four on B): B rolls back at its own call.
    release(b).record('baseline', true, 100);
    release(b).record('canary', false, 0);
    expect(release(b).state()).toMatchObject({ status: 'rolled_back', rollbackReason: expect.stringContaining('canary error rate 100.0%'), canaryStats: { requests: 10, errors: 10 } });
    await b.sync.sync();
    for (const r of [a, c]) {
      await r.sync.sync();
      expect(release(r).state()).toMatchObject({ status: 'rolled_back', rollbackReason: release(b).state().rollbackReason, canaryStats: { requests: 10, errors: 10 } });
    }
    expect(await fleetCounters('canary', clock.now())).toEqual({ [REQUESTS]: '10', [ERRORS]: '10' });
  });

  it('reads p95 from the fleet’s merged latency bins, and rolls back on it once the fleet’s calls cross minRequests', async () => {
    const clock = new ManualClock();
    const [a, b, c] = [await replica(clock, 20), await replica(clock, 20), await replica(clock, 20)];
    for (let i = 0; i < 10; i++) release(a).record('baseline', true, 100);
    for (let i = 0; i < 9; i++) release(a).record('canary', true, 100);
    release(a).record('canary', true, 1_000);
    for (let i = 0; i < 10; i++) release(b).record('baseline', true, 100);
    for (let i = 0; i < 10; i++) release(b).record('canary', true, 100);
    // A alone sees a canary p95 of 1 s (its 10th of 10 calls); the fleet's 19th of 20 is 100 ms.
    expect(release(a).stats('canary').p95LatencyMs).toBeGreaterThan(900);
    for (const r of [a, b, a]) await r.sync.sync();
    for (const r of [a, b]) {
      expect(release(r).state()).toMatchObject({ status: 'active', canaryStats: { requests: 20 }, baselineStats: { requests: 20 } });
      expect(Math.abs(release(r).stats('canary').p95LatencyMs - 100)).toBeLessThanOrEqual(3);
    }

    // C's canary calls are slow; C has no baseline call of its own, so alone it could not judge.
    for (let i = 0; i < 25; i++) release(c).record('canary', true, 400);
    expect(release(c).status()).toBe('active');
    await c.sync.sync();
    // The fleet's canary: 19 calls at 100 ms, 25 at 400, 1 at 1 s; the 43rd of 45 is at 400 ms.
    expect(release(c).state()).toMatchObject({ status: 'rolled_back', rollbackReason: expect.stringContaining('canary p95 latency'), canaryStats: { requests: 45 }, baselineStats: { requests: 20 } });
    expect(Math.abs(release(c).stats('canary').p95LatencyMs - 400)).toBeLessThanOrEqual(11);
    expect(Math.abs(release(c).stats('baseline').p95LatencyMs - 100)).toBeLessThanOrEqual(3);
    expect(await fleetCounters('canary', clock.now())).toMatchObject({ [String(2 + latencyBin(100))]: '19', [String(2 + latencyBin(400))]: '25', [String(2 + latencyBin(1_000))]: '1' });
  });

  it('keeps what a failed round could not share, judges on its last view plus its own calls meanwhile, and shares it once when Redis answers again', async () => {
    const clock = new ManualClock();
    const [a, b] = [await replica(clock), await replica(clock)];
    for (let i = 0; i < 5; i++) release(a).record('canary', false, 0);
    await a.sync.sync();
    const readAt = clock.now();

    a.redis.disconnect();
    clock.advance(1_000);
    for (let i = 0; i < 3; i++) release(a).record('canary', false, 0);
    await a.sync.sync();
    for (let i = 0; i < 2; i++) release(a).record('canary', true, 100);
    await a.sync.sync();
    expect(a.logs.filter((l) => l.level === 40).map((l) => l.msg)).toEqual([expect.stringContaining('gray release state unreachable')]);
    // Its last view of the fleet (five calls) plus its own ten since.
    expect(release(a).state()).toMatchObject({ statsScope: 'fleet', statsReadAtMs: readAt, canaryStats: { requests: 10, errors: 8 } });
    await b.sync.sync();
    expect(release(b).state().canaryStats).toMatchObject({ requests: 5, errors: 5 });

    await a.redis.connect();
    await a.sync.sync();
    expect(a.logs.filter((l) => l.level === 30).map((l) => l.msg)).toEqual(['gray release state reachable again']);
    await a.sync.sync();
    await b.sync.sync();
    for (const r of [a, b]) expect(release(r).state()).toMatchObject({ statsScope: 'fleet', statsReadAtMs: clock.now(), canaryStats: { requests: 10, errors: 8 } });
    expect(await fleetCounters('canary', clock.now())).toEqual({ [REQUESTS]: '10', [ERRORS]: '8', [String(2 + latencyBin(100))]: '2' });
  });

  it('adds a batch Redis applied once only, when it is sent again after its answer was lost', async () => {
    const redis = new Redis(redisUrl());
    const store = new RedisGrayReleaseStore(redis, keyPrefix, 'replica-1');
    try {
      const bucket = 1_000;
      const deltas = emptyArmCounts();
      deltas.canary.set(bucket, new Map([[0, 4], [1, 4]]));
      const buckets = { oldest: bucket - 19, newest: bucket };
      const counted = { id: 'gr', windowMs: WINDOW_MS };
      const first = await store.shareCounts(counted, { seq: 1, deltas }, buckets);
      const again = await store.shareCounts(counted, { seq: 1, deltas }, buckets);
      expect(again).toEqual(first);
      expect(again.canary.get(bucket)).toEqual(new Map([[0, 4], [1, 4]]));
      // The next batch, and another replica's first, are added.
      const next = await store.shareCounts(counted, { seq: 2, deltas }, buckets);
      expect(next.canary.get(bucket)).toEqual(new Map([[0, 8], [1, 8]]));
      const other = await new RedisGrayReleaseStore(redis, keyPrefix, 'replica-2').shareCounts(counted, { seq: 1, deltas }, buckets);
      expect(other.canary.get(bucket)).toEqual(new Map([[0, 12], [1, 12]]));
      expect(await redis.pttl(`${keyPrefix}router:gray-release:gr:calls:${WINDOW_MS}:canary:${bucket}`)).toBeGreaterThan(WINDOW_MS);
    } finally {
      await store.close();
    }
  });

  it('drops what could not be shared before it left the window, and says how many calls', async () => {
    const clock = new ManualClock();
    const [a, b] = [await replica(clock), await replica(clock)];
    a.redis.disconnect();
    release(a).record('canary', false, 0);
    release(a).record('canary', false, 0);
    await a.sync.sync();
    clock.advance(WINDOW_MS + BUCKET_MS);
    release(a).record('canary', false, 0);
    await a.sync.sync();
    await a.redis.connect();
    await a.sync.sync();
    expect(a.logs.filter((l) => l.level === 30)).toEqual([expect.objectContaining({ msg: 'gray release state reachable again', droppedCalls: { gr: 2 } })]);
    await b.sync.sync();
    expect(release(b).state().canaryStats).toMatchObject({ requests: 1, errors: 1 });
  });

  it('takes back a success shared in an earlier round in the bucket it was counted in', async () => {
    const clock = new ManualClock();
    const [a, b] = [await replica(clock), await replica(clock)];
    const calledAt = clock.now();
    const call = release(a).record('canary', true, 100);
    await a.sync.sync();
    expect(await fleetCounters('canary', calledAt)).toEqual({ [REQUESTS]: '1', [String(2 + latencyBin(100))]: '1' });

    clock.advance(2 * BUCKET_MS);
    release(a).failAfterSuccess(call);
    await a.sync.sync();
    await b.sync.sync();
    for (const r of [a, b]) expect(release(r).stats('canary')).toMatchObject({ requests: 1, errors: 1, p95LatencyMs: 0 });
    expect(await fleetCounters('canary', calledAt)).toEqual({ [REQUESTS]: '1', [ERRORS]: '1', [String(2 + latencyBin(100))]: '0' });
    expect(await fleetCounters('canary', clock.now())).toEqual({});
  });
});
