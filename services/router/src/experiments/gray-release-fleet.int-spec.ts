import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { createLogger } from '@openrouter/observability';
import { configWith, ManualClock, TWO_MODELS } from '../routing/test-engine.testing';
import { latencyBin } from '../stats/sliding-window';
import type { GatewayConfig } from '@openrouter/config';
import { emptyArmCounts, type ArmCounts, type CountBatch } from './fleet-counts';
import { GrayReleases, type Rollback } from './gray-release';
import { GrayReleaseSync, RedisGrayReleaseStore, sharedCountsKeys, type CountedRelease, type GrayReleaseStore, type KeptRelease } from './gray-release-sync';

/** The redis-server the integration project's global setup started. */
function redisUrl(): string {
  const url = process.env['OPENROUTER_TEST_REDIS_URL'];
  if (!url) throw new Error('OPENROUTER_TEST_REDIS_URL is not set: run this suite through jest\'s integration project');
  return url;
}

async function until(condition: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((done) => setTimeout(done, 20));
  }
}

const WINDOW_MS = 300_000;
const BUCKET_MS = WINDOW_MS / 20;
const REQUESTS = '0';
const ERRORS = '1';

function releasesConfig(minRequests: number, ids: readonly string[] = ['gr']): GatewayConfig['routing']['grayReleases'] {
  const targets = [
    { target: 'cheap', baseline: 'cheap', canary: 'premium' },
    { target: 'premium', baseline: 'premium', canary: 'cheap' },
  ];
  return configWith(TWO_MODELS, {
    grayReleases: ids.map((id, i) => ({ id, ...targets[i], steps: [{ afterMinutes: 0, percent: 50 }], rollback: { minRequests, errorRateMargin: 0.1, p95LatencyMargin: 0.5, windowMs: WINDOW_MS } })),
  }).routing.grayReleases;
}

interface Replica {
  releases: GrayReleases;
  sync: GrayReleaseSync;
  redis: Redis;
  logs: Array<{ level: number; msg: string; release?: string; reason?: string; droppedCalls?: Record<string, number> }>;
}

/** Redis's answers to a replica's batches lost on the way back, when asked: the batch was applied all the same. */
class AnswerLost implements GrayReleaseStore {
  loseNext = false;

  constructor(private readonly store: RedisGrayReleaseStore) {}

  claimStart(id: string, startAt: number): Promise<number> {
    return this.store.claimStart(id, startAt);
  }

  keepRollback(id: string, rollback: Rollback): Promise<void> {
    return this.store.keepRollback(id, rollback);
  }

  read(ids: readonly string[]): Promise<Map<string, KeptRelease>> {
    return this.store.read(ids);
  }

  async shareCounts(release: CountedRelease, batch: CountBatch, buckets: { oldest: number; newest: number }): Promise<ArmCounts> {
    const fleet = await this.store.shareCounts(release, batch, buckets);
    if (this.loseNext) {
      this.loseNext = false;
      throw new Error('Command timed out');
    }
    return fleet;
  }

  close(): Promise<void> {
    return this.store.close();
  }
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

  async function replica(clock: ManualClock, minRequests = 10, options: { ids?: readonly string[]; store?: (store: RedisGrayReleaseStore) => GrayReleaseStore } = {}): Promise<Replica> {
    const logs: Replica['logs'] = [];
    const logger = createLogger('gray-release-fleet-spec', 'info', {
      write: (line: string) => {
        logs.push(JSON.parse(line));
      },
    });
    const redis = new Redis(redisUrl(), { lazyConnect: true, maxRetriesPerRequest: 1 });
    const releases = new GrayReleases(releasesConfig(minRequests, options.ids), clock);
    const store = new RedisGrayReleaseStore(redis, keyPrefix);
    const sync = new GrayReleaseSync(releases, options.store ? options.store(store) : store, logger, 3_600_000);
    await sync.start();
    const started = { releases, sync, redis, logs };
    replicas.push(started);
    return started;
  }

  const release = (r: Replica, id = 'gr') => {
    const found = r.releases.byId(id);
    if (!found) throw new Error(`gray release ${id} is not configured`);
    return found;
  };

  /** The key of a release's counters of one arm in the bucket of `at`. */
  const countersKey = (arm: 'baseline' | 'canary', at: number, id = 'gr'): string => sharedCountsKeys(keyPrefix, { id, windowMs: WINDOW_MS }).bucket(arm, Math.floor(at / BUCKET_MS));

  async function fleetCounters(arm: 'baseline' | 'canary', at: number, id = 'gr'): Promise<Record<string, string>> {
    const redis = new Redis(redisUrl());
    try {
      return await redis.hgetall(countersKey(arm, at, id));
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
    // Its last view of the fleet (five calls) plus its own five since, which it reports apart.
    expect(release(a).state()).toMatchObject({ statsScope: 'fleet', statsReadAtMs: readAt, canaryStats: { requests: 10, errors: 8 }, canaryUnshared: { requests: 5, errors: 3 } });
    await b.sync.sync();
    // B's view is fresher but lacks them: the admin view adds A's unshared calls to it.
    expect(release(b).state()).toMatchObject({ statsReadAtMs: clock.now(), canaryStats: { requests: 5, errors: 5 }, canaryUnshared: { requests: 0, errors: 0 } });

    await a.redis.connect();
    await a.sync.sync();
    expect(a.logs.filter((l) => l.level === 30).map((l) => l.msg)).toEqual(['gray release state reachable again']);
    await a.sync.sync();
    await b.sync.sync();
    for (const r of [a, b]) expect(release(r).state()).toMatchObject({ statsScope: 'fleet', statsReadAtMs: clock.now(), canaryStats: { requests: 10, errors: 8 }, canaryUnshared: { requests: 0 } });
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
      expect(await redis.pttl(sharedCountsKeys(keyPrefix, counted).bucket('canary', bucket))).toBeGreaterThan(WINDOW_MS);
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

  it('adds a batch Redis applied whose answer was lost once only, through the sync: the replica sends it again and judges on the fleet’s counts with it', async () => {
    const clock = new ManualClock();
    let lossy: AnswerLost | undefined;
    const a = await replica(clock, 10, { store: (store) => (lossy = new AnswerLost(store)) });
    const b = await replica(clock);
    for (let i = 0; i < 3; i++) release(a).record('canary', false, 0);
    if (!lossy) throw new Error('replica A has no lossy store');
    lossy.loseNext = true;
    await a.sync.sync();
    // Applied, but A cannot know: its view is the fleet's as read at its start (no call), plus its
    // three calls, all reported as not shared.
    expect(release(a).state()).toMatchObject({ statsScope: 'fleet', canaryStats: { requests: 3, errors: 3 }, canaryUnshared: { requests: 3 } });
    await b.sync.sync();
    expect(release(b).state().canaryStats).toMatchObject({ requests: 3, errors: 3 });

    release(a).record('canary', false, 0);
    await a.sync.sync();
    expect(release(a).state()).toMatchObject({ statsScope: 'fleet', canaryStats: { requests: 4, errors: 4 }, canaryUnshared: { requests: 1 } });
    await a.sync.sync();
    await b.sync.sync();
    for (const r of [a, b]) expect(release(r).state()).toMatchObject({ statsScope: 'fleet', canaryStats: { requests: 4, errors: 4 }, canaryUnshared: { requests: 0 } });
    expect(await fleetCounters('canary', clock.now())).toEqual({ [REQUESTS]: '4', [ERRORS]: '4' });
    expect(a.logs.filter((l) => l.level >= 30).map((l) => l.msg)).toEqual([expect.stringContaining('gray release state unreachable'), 'gray release state reachable again']);
  });

  it('shares its last calls when it closes', async () => {
    const clock = new ManualClock();
    const [a, b] = [await replica(clock), await replica(clock)];
    for (let i = 0; i < 2; i++) release(a).record('canary', false, 0);
    await a.sync.close();
    await b.sync.sync();
    expect(release(b).state().canaryStats).toMatchObject({ requests: 2, errors: 2 });
    expect(await fleetCounters('canary', clock.now())).toEqual({ [REQUESTS]: '2', [ERRORS]: '2' });
  });

  it('refuses a batch whole, once per attempt, when a counter it adds to is not an integer or a key is not a hash, and says so for that release', async () => {
    const clock = new ManualClock();
    const a = await replica(clock);
    const redis = new Redis(redisUrl());
    try {
      release(a).record('canary', false, 0);
      // The errors counter of the call's bucket, written by hand in another form.
      await redis.hset(countersKey('canary', clock.now()), ERRORS, 'many');
      for (let i = 0; i < 3; i++) await a.sync.sync();
      // Nothing of the batch was added, not its calls counter either, however many attempts.
      expect(await fleetCounters('canary', clock.now())).toEqual({ [ERRORS]: 'many' });
      expect(a.logs.filter((l) => l.level >= 40)).toEqual([
        expect.objectContaining({ release: 'gr', msg: expect.stringContaining('gray release calls not shared'), reason: expect.stringContaining(`the canary counters of bucket ${Math.floor(clock.now() / BUCKET_MS)} hold a counter ${ERRORS} that is not an integer`) }),
      ]);
      expect(release(a).state()).toMatchObject({ canaryStats: { requests: 1, errors: 1 }, canaryUnshared: { requests: 1 } });

      await redis.hdel(countersKey('canary', clock.now()), ERRORS);
      await a.sync.sync();
      expect(await fleetCounters('canary', clock.now())).toEqual({ [REQUESTS]: '1', [ERRORS]: '1' });
      expect(a.logs.filter((l) => l.level === 30)).toEqual([expect.objectContaining({ release: 'gr', msg: 'gray release calls shared again' })]);

      // A key of the window that is not a hash: refused whole too.
      await redis.set(countersKey('baseline', clock.now() - BUCKET_MS), 'not a hash');
      release(a).record('canary', false, 0);
      await a.sync.sync();
      expect(await fleetCounters('canary', clock.now())).toEqual({ [REQUESTS]: '1', [ERRORS]: '1' });
      expect(a.logs.filter((l) => l.level >= 40).at(-1)).toMatchObject({ release: 'gr', reason: expect.stringContaining(`the baseline counters of bucket ${Math.floor(clock.now() / BUCKET_MS) - 1} are not a hash`) });
      // Never "unreachable", and no key named in the log.
      expect(a.logs.map((l) => l.msg)).not.toContainEqual(expect.stringContaining('unreachable'));
      expect(JSON.stringify(a.logs)).not.toContain(keyPrefix);
    } finally {
      redis.disconnect();
    }
  });

  it('refuses a batch whole when this replica’s mark is not a batch number', async () => {
    const redis = new Redis(redisUrl());
    const store = new RedisGrayReleaseStore(redis, keyPrefix, 'replica-1');
    try {
      const counted = { id: 'gr', windowMs: WINDOW_MS };
      const deltas = emptyArmCounts();
      deltas.canary.set(1_000, new Map([[0, 1]]));
      const buckets = { oldest: 981, newest: 1_000 };
      const mark = sharedCountsKeys(keyPrefix, counted).applied('replica-1');
      for (const [written, why] of [[() => redis.set(mark, 'soon'), 'not a batch number'], [() => redis.hset(mark, 'seq', '1'), 'not a string']] as const) {
        await redis.del(mark);
        await written();
        await expect(store.shareCounts(counted, { seq: 1, deltas }, buckets)).rejects.toThrow(`gray release gr: this replica's applied-batch mark is ${why}`);
        expect(await redis.exists(sharedCountsKeys(keyPrefix, counted).bucket('canary', 1_000))).toBe(0);
      }
    } finally {
      await store.close();
    }
  });

  it('goes on sharing the other releases when Redis refuses one release’s batches', async () => {
    const clock = new ManualClock();
    const a = await replica(clock, 10, { ids: ['gr', 'other'] });
    const b = await replica(clock, 10, { ids: ['gr', 'other'] });
    const redis = new Redis(redisUrl());
    try {
      await redis.set(countersKey('canary', clock.now(), 'gr'), 'not a hash');
      for (const id of ['gr', 'other']) release(a, id).record('canary', false, 0);
      for (let i = 0; i < 2; i++) await a.sync.sync();
      await b.sync.sync();
      expect(release(b, 'other').state().canaryStats).toMatchObject({ requests: 1, errors: 1 });
      expect(release(a, 'other').state()).toMatchObject({ statsScope: 'fleet', canaryUnshared: { requests: 0 } });
      expect(a.logs.filter((l) => l.level >= 40)).toEqual([expect.objectContaining({ release: 'gr', reason: expect.stringContaining('are not a hash') })]);
    } finally {
      redis.disconnect();
    }
  });

  it('keeps each replica’s last batch in a key of its own that expires two windows after that replica’s last batch: replicas that left leave nothing behind', async () => {
    const redis = new Redis(redisUrl());
    try {
      // A short window, so that the marks of the replicas that left expire within the test; long
      // enough (their marks live two windows, 5 s) that all fifty are still there when counted on a busy machine.
      const counted = { id: 'gr', windowMs: 2_500 };
      const deltas = emptyArmCounts();
      deltas.canary.set(1_000, new Map([[0, 1]]));
      const buckets = { oldest: 981, newest: 1_000 };
      const departed = Array.from({ length: 50 }, (_, i) => `departed-${i}`);
      // All at once, as replicas share, and in a few round trips: little time passes before they are counted.
      await Promise.all(departed.map((id) => new RedisGrayReleaseStore(redis, keyPrefix, id).shareCounts(counted, { seq: 1, deltas }, buckets)));
      /** How many keys under the prefix name a departed replica, or hold a field named after one (read in three round trips). */
      const traces = async (): Promise<number> => {
        const keys = await redis.keys(`${keyPrefix}*`);
        const types = await Promise.all(keys.map((key) => redis.type(key)));
        const names = await Promise.all(keys.map(async (key, i) => (types[i] === 'hash' ? [key, ...(await redis.hkeys(key))] : [key])));
        return names.flat().filter((name) => departed.some((id) => name.endsWith(id))).length;
      };
      expect(await traces()).toBe(departed.length);
      // Another replica goes on sharing meanwhile: its batches keep its own mark, not the others'.
      const live = new RedisGrayReleaseStore(redis, keyPrefix, 'live');
      let seq = 0;
      await until(async () => {
        await live.shareCounts(counted, { seq: ++seq, deltas }, buckets);
        return (await traces()) === 0;
      }, "the marks of the replicas that left to expire", 30_000);
      const mark = sharedCountsKeys(keyPrefix, counted).applied('live');
      expect(await redis.get(mark)).toBe(String(seq));
      const ttl = await redis.pttl(mark);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(2 * counted.windowMs);
    } finally {
      redis.disconnect();
    }
  });

  it('keeps a release’s kept state apart from every release’s counters and marks, whatever the ids', async () => {
    const redis = new Redis(redisUrl());
    const store = new RedisGrayReleaseStore(redis, keyPrefix, 'replica-1');
    try {
      const bucket = 1_000;
      const deltas = emptyArmCounts();
      deltas.canary.set(bucket, new Map([[0, 1]]));
      const buckets = { oldest: bucket - 19, newest: bucket };
      const rollback = { at: 1_748_768_400_000, reason: 'rolled back by hand' };
      // Ids that name another release's counters or marks under a layout that put them beside the kept state.
      const ids = ['gr:batches', `gr:calls:${WINDOW_MS}:canary:${bucket}`, `gr:${WINDOW_MS}:applied:replica-1`];
      for (const id of ids) await store.keepRollback(id, rollback);
      await store.shareCounts({ id: 'gr', windowMs: WINDOW_MS }, { seq: 1, deltas }, buckets);
      expect(await store.read(ids)).toEqual(new Map(ids.map((id) => [id, { rollback }])));
      for (const id of ids) {
        expect(await redis.hgetall(`${keyPrefix}router:gray-release:${id}`)).toEqual({ rolledBackAt: String(rollback.at), reason: rollback.reason });
        expect(await redis.pttl(`${keyPrefix}router:gray-release:${id}`)).toBe(-1);
      }
      // Nor are one id's counters another's.
      const other = await store.shareCounts({ id: `gr:${WINDOW_MS}:canary`, windowMs: WINDOW_MS }, { seq: 1, deltas }, buckets);
      expect(other.canary.get(bucket)).toEqual(new Map([[0, 1]]));
    } finally {
      await store.close();
    }
  });
});
