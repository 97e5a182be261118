import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '@openrouter/observability';
import { configWith, ManualClock, TWO_MODELS } from '../routing/test-engine.testing';
import { addCount, ARMS, emptyArmCounts, type ArmCounts, type CountBatch } from './fleet-counts';
import { GrayReleases, type Rollback } from './gray-release';
import { FileGrayReleaseStore, GrayReleaseSync, SharedCountsRefused, type CountedRelease, type GrayReleaseStore, type KeptRelease } from './gray-release-sync';

const logger = createLogger('gray-release-sync-spec', 'silent');
const releaseConfig = configWith(TWO_MODELS, {
  grayReleases: [{ id: 'gr', target: 'cheap', baseline: 'cheap', canary: 'premium', steps: [{ afterMinutes: 0, percent: 10 }, { afterMinutes: 60, percent: 50 }, { afterMinutes: 120, percent: 100 }], rollback: { minRequests: 5, errorRateMargin: 0.1 } }],
}).routing.grayReleases;

/** Drives the release to a rollback: the baseline healthy, the canary failing. */
function failCanary(releases: GrayReleases): void {
  const release = releases.byId('gr');
  for (let i = 0; i < 5; i++) release?.record('baseline', true, 100);
  for (let i = 0; i < 5; i++) release?.record('canary', false, 100);
}

describe('gray release state kept in a file (a router that runs alone)', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'gray-release-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  async function router(clock: ManualClock): Promise<{ releases: GrayReleases; sync: GrayReleaseSync }> {
    const releases = new GrayReleases(releaseConfig, clock);
    const sync = new GrayReleaseSync(releases, await FileGrayReleaseStore.open(join(dir, 'router', 'gray-releases.json')), logger, 60_000);
    await sync.start();
    return { releases, sync };
  }

  it('keeps the first start across restarts, so the schedule goes on where it was', async () => {
    const clock = new ManualClock();
    const first = await router(clock);
    await first.sync.close();
    clock.advance(61 * 60_000);
    const restarted = await router(clock);
    expect(restarted.releases.byId('gr')?.state()).toMatchObject({ status: 'active', canaryPercent: 50, step: 2 });
    await restarted.sync.close();
  });

  it('judges on its own calls: the file is not shared, so nothing is counted for a fleet', async () => {
    const { releases, sync } = await router(new ManualClock());
    releases.byId('gr')?.record('canary', false, 0);
    await sync.sync();
    expect(releases.byId('gr')?.countsToShare()).toBeUndefined();
    expect(releases.byId('gr')?.state()).toMatchObject({ statsScope: 'replica', statsReadAtMs: 0, canaryStats: { requests: 1, errors: 1 } });
    await sync.close();
  });

  it('keeps a rollback across restarts: the canary does not come back', async () => {
    const clock = new ManualClock();
    const first = await router(clock);
    failCanary(first.releases);
    expect(first.releases.byId('gr')?.status()).toBe('rolled_back');
    await first.sync.sync();
    await first.sync.close();
    const reason = first.releases.byId('gr')?.state().rollbackReason;

    clock.advance(5_000);
    const restarted = await router(clock);
    expect(restarted.releases.byId('gr')?.state()).toMatchObject({ status: 'rolled_back', canaryPercent: 0, rollbackReason: reason, rolledBackAtMs: clock.now() - 5_000 });
    await restarted.sync.close();
    expect(JSON.parse(readFileSync(join(dir, 'router', 'gray-releases.json'), 'utf8'))).toEqual({ releases: { gr: { startAt: clock.now() - 5_000, rollback: { at: clock.now() - 5_000, reason } } } });
  });

  it('keeps a rollback whose first write failed once the disk takes it', async () => {
    const path = join(dir, 'router', 'gray-releases.json');
    const store = await FileGrayReleaseStore.open(path);
    // `router` is a file for now, so the state file cannot be written.
    writeFileSync(join(dir, 'router'), 'in the way');
    const rollback = { at: 1, reason: 'canary error rate 50.0% exceeds baseline 0.0% by more than 10.0%' };
    await expect(store.keepRollback('gr', rollback)).rejects.toThrow();
    rmSync(join(dir, 'router'));
    await store.keepRollback('gr', rollback);
    await store.close();
    expect((await (await FileGrayReleaseStore.open(path)).read(['gr'])).get('gr')).toEqual({ rollback });
  });

  it('refuses a file that is not its own, naming it, rather than forgetting a rollback', async () => {
    const path = join(dir, 'gray-releases.json');
    for (const text of ['{"releases": {"gr": {"rollback": {"at": "soon"}}}}', 'not json']) {
      writeFileSync(path, text);
      await expect(FileGrayReleaseStore.open(path)).rejects.toThrow(`${path} is not a gray release state file; move it away to start the releases over`);
    }
  });
});

/** A store that can be taken down, as Redis can. */
class FlakyStore implements GrayReleaseStore {
  down = false;
  readonly kept = new Map<string, KeptRelease>();

  async claimStart(id: string, startAt: number): Promise<number> {
    this.check();
    const release = this.kept.get(id) ?? {};
    release.startAt ??= startAt;
    this.kept.set(id, release);
    return release.startAt;
  }

  async keepRollback(id: string, rollback: Rollback): Promise<void> {
    this.check();
    const release = this.kept.get(id) ?? {};
    release.rollback ??= rollback;
    this.kept.set(id, release);
  }

  async read(ids: readonly string[]): Promise<Map<string, KeptRelease>> {
    this.check();
    return new Map(ids.map((id) => [id, { ...this.kept.get(id) }]));
  }

  async close(): Promise<void> {}

  private check(): void {
    if (this.down) throw new Error('store down');
  }
}

describe('gray release state shared by replicas', () => {
  it('runs one round at a time and lets rounds asked for meanwhile share the next, however slow the store', async () => {
    const store = new FlakyStore();
    let reads = 0;
    const answers: Array<() => void> = [];
    const read = store.read.bind(store);
    store.read = async (ids) => {
      reads++;
      await new Promise<void>((answer) => answers.push(answer));
      return read(ids);
    };
    const sync = new GrayReleaseSync(new GrayReleases(releaseConfig, new ManualClock()), store, logger, 60_000);
    const rounds = Array.from({ length: 50 }, () => sync.sync());
    await new Promise((done) => setImmediate(done));
    expect(reads).toBe(1);
    answers.shift()?.();
    await new Promise((done) => setImmediate(done));
    await new Promise((done) => setImmediate(done));
    expect(reads).toBe(2);
    answers.shift()?.();
    await Promise.all(rounds);
    expect(reads).toBe(2);
    // Once closed, nothing more is asked of the store.
    await sync.close();
    await sync.sync();
    expect(reads).toBe(2);
  });

  it("adopts the first replica's start and another replica's rollback", async () => {
    const store = new FlakyStore();
    const clock = new ManualClock();
    const a = new GrayReleases(releaseConfig, clock);
    const syncA = new GrayReleaseSync(a, store, logger, 60_000);
    await syncA.start();
    clock.advance(61 * 60_000);
    const b = new GrayReleases(releaseConfig, clock);
    const syncB = new GrayReleaseSync(b, store, logger, 60_000);
    await syncB.start();
    // B started an hour later, on A's schedule: both send the canary the same share.
    expect(b.byId('gr')?.state()).toMatchObject({ canaryPercent: 50 });
    expect(a.byId('gr')?.state()).toMatchObject({ canaryPercent: 50 });

    failCanary(a);
    await syncA.sync();
    expect(b.byId('gr')?.status()).toBe('active');
    await syncB.sync();
    expect(b.byId('gr')?.state()).toMatchObject({ status: 'rolled_back', rollbackReason: a.byId('gr')?.state().rollbackReason });
    await Promise.all([syncA.close(), syncB.close()]);
  });

  it('goes on while the store is down, and keeps its start and rollback once it is back', async () => {
    const store = new FlakyStore();
    store.down = true;
    const clock = new ManualClock();
    const releases = new GrayReleases(releaseConfig, clock);
    const sync = new GrayReleaseSync(releases, store, logger, 60_000);
    await sync.start();
    expect(releases.byId('gr')?.state()).toMatchObject({ status: 'active', canaryPercent: 10 });
    failCanary(releases);
    await sync.sync();
    expect(store.kept.size).toBe(0);

    store.down = false;
    await sync.sync();
    expect(store.kept.get('gr')).toEqual({ startAt: clock.now(), rollback: releases.byId('gr')?.rollback() });
    await sync.close();
  });
});

/** A store shared by replicas, as Redis is, that can refuse one release's batches. */
class SharingStore extends FlakyStore {
  readonly refuse = new Set<string>();
  /** Every batch taken, by release. */
  readonly taken: string[] = [];
  private readonly counts = new Map<string, ArmCounts>();

  async shareCounts(release: CountedRelease, batch: CountBatch): Promise<ArmCounts> {
    if (this.down) throw new Error('store down');
    if (this.refuse.has(release.id)) throw new SharedCountsRefused(release.id, 'the canary counters of bucket 1 are not a hash, so nothing of this replica\'s calls was added');
    this.taken.push(release.id);
    const fleet = this.counts.get(release.id) ?? emptyArmCounts();
    for (const arm of ARMS) for (const [bucket, fields] of batch.deltas[arm]) for (const [field, delta] of fields) addCount(fleet[arm], bucket, field, delta);
    this.counts.set(release.id, fleet);
    return fleet;
  }

  /** The calls of one arm of a release the store holds. */
  requests(id: string, arm: (typeof ARMS)[number]): number {
    return [...(this.counts.get(id)?.[arm].values() ?? [])].reduce((sum, fields) => sum + (fields.get(0) ?? 0), 0);
  }
}

describe('gray release calls shared by replicas', () => {
  const twoReleases = configWith(TWO_MODELS, {
    grayReleases: [
      { id: 'gr', target: 'cheap', baseline: 'cheap', canary: 'premium', steps: [{ afterMinutes: 0, percent: 10 }], rollback: { minRequests: 5, errorRateMargin: 0.1 } },
      { id: 'other', target: 'premium', baseline: 'premium', canary: 'cheap', steps: [{ afterMinutes: 0, percent: 10 }], rollback: { minRequests: 5, errorRateMargin: 0.1 } },
    ],
  }).routing.grayReleases;

  function logged(): { logger: ReturnType<typeof createLogger>; lines: Array<{ level: number; msg: string; release?: string; reason?: string; droppedCalls?: unknown }> } {
    const lines: Array<{ level: number; msg: string }> = [];
    return { lines, logger: createLogger('gray-release-sync-spec', 'info', { write: (line: string) => void lines.push(JSON.parse(line)) }) };
  }

  it('goes on sharing the other releases when the store refuses one release’s calls, and says which release and why, not that it is unreachable', async () => {
    const store = new SharingStore();
    store.refuse.add('gr');
    const { logger, lines } = logged();
    const releases = new GrayReleases(twoReleases, new ManualClock());
    const sync = new GrayReleaseSync(releases, store, logger, 60_000);
    await sync.start();
    releases.byId('gr')?.record('canary', false, 0);
    releases.byId('other')?.record('canary', false, 0);
    await sync.sync();
    await sync.sync();
    expect(store.taken.filter((id) => id === 'other').length).toBeGreaterThan(0);
    expect(releases.byId('other')?.state()).toMatchObject({ statsScope: 'fleet', canaryStats: { requests: 1 }, canaryUnshared: { requests: 0 } });
    expect(releases.byId('gr')?.state()).toMatchObject({ statsScope: 'replica', canaryStats: { requests: 1 }, canaryUnshared: { requests: 1 } });
    // Said once, for that release, with the reason; nothing said about reaching the store.
    expect(lines.filter((l) => l.level >= 40)).toEqual([expect.objectContaining({ release: 'gr', reason: expect.stringContaining('gray release gr: the canary counters of bucket 1 are not a hash'), msg: expect.stringContaining('gray release calls not shared') })]);

    store.refuse.delete('gr');
    await sync.sync();
    expect(releases.byId('gr')?.state()).toMatchObject({ statsScope: 'fleet', canaryStats: { requests: 1 }, canaryUnshared: { requests: 0 } });
    expect(lines.filter((l) => l.level === 30)).toEqual([expect.objectContaining({ release: 'gr', msg: 'gray release calls shared again' })]);
    await sync.close();
  });

  it('stops sending a release’s calls once it rolled back: its rounds no longer ask the store to share them', async () => {
    const store = new SharingStore();
    const releases = new GrayReleases(twoReleases, new ManualClock());
    const sync = new GrayReleaseSync(releases, store, logger, 60_000);
    await sync.start();
    failCanary(releases);
    expect(releases.byId('gr')?.status()).toBe('rolled_back');
    await sync.sync();
    const taken = store.taken.filter((id) => id === 'gr').length;
    for (let i = 0; i < 3; i++) {
      releases.byId('gr')?.record('baseline', true, 100);
      releases.byId('other')?.record('baseline', true, 100);
      await sync.sync();
    }
    expect(store.taken.filter((id) => id === 'gr').length).toBe(taken);
    // The other release, still judged, is shared at every round with calls.
    expect(store.taken.filter((id) => id === 'other').length).toBeGreaterThanOrEqual(3);
    expect(store.kept.get('gr')?.rollback).toEqual(releases.byId('gr')?.rollback());
    await sync.close();
  });

  it('keeps its rollback only once the calls it judged on are shared, so a replica that reads the rollback reads those calls with it', async () => {
    const store = new SharingStore();
    const clock = new ManualClock();
    const a = new GrayReleases(releaseConfig, clock);
    const b = new GrayReleases(releaseConfig, clock);
    const syncA = new GrayReleaseSync(a, store, logger, 60_000);
    const syncB = new GrayReleaseSync(b, store, logger, 60_000);
    await Promise.all([syncA.start(), syncB.start()]);
    // A's round after its rollback is held at its share of the calls until B has had a round.
    let letAShare: () => void = () => undefined;
    const held = new Promise<void>((go) => (letAShare = go));
    const share = store.shareCounts.bind(store);
    let holding = true;
    store.shareCounts = async (release, batch) => {
      if (holding && batch.seq > 0) await held;
      return share(release, batch);
    };
    failCanary(a);
    const roundA = syncA.sync();
    await syncB.sync();
    holding = false;
    letAShare();
    await roundA;
    await syncB.sync();
    expect(b.byId('gr')?.state()).toMatchObject({ status: 'rolled_back', statsScope: 'fleet', baselineStats: { requests: 5 }, canaryStats: { requests: 5, errors: 5 } });
    await Promise.all([syncA.close(), syncB.close()]);
  });

  it('shares the calls counted since the last round when it closes', async () => {
    const store = new SharingStore();
    const releases = new GrayReleases(twoReleases, new ManualClock());
    const sync = new GrayReleaseSync(releases, store, logger, 60_000);
    await sync.start();
    releases.byId('other')?.record('canary', false, 0);
    releases.byId('other')?.record('canary', false, 0);
    expect(store.requests('other', 'canary')).toBe(0);
    await sync.close();
    expect(store.requests('other', 'canary')).toBe(2);
  });
});
