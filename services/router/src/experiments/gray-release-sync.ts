import { randomUUID } from 'node:crypto';
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { GatewayConfig } from '@openrouter/config';
import type { Logger } from '@openrouter/observability';
import { Coalesced, createRedisClient } from '@openrouter/service-runtime';
import { ARMS, emptyArmCounts, type ArmCounts, type CountBatch } from './fleet-counts';
import { ARM_COUNTERS, type GrayRelease, type GrayReleases, type Rollback } from './gray-release';

/** What is kept of a release beyond one router process. */
export interface KeptRelease {
  startAt?: number;
  rollback?: Rollback;
}

/** A release's shared call counters: which release, and the window they are bucketed for. */
export interface CountedRelease {
  id: string;
  windowMs: number;
}

/**
 * Where gray releases are kept: Redis, shared by every router replica, or a file for a router that
 * runs alone. A release's first start and first rollback stay: later ones are not written over.
 */
export interface GrayReleaseStore {
  /** The kept start of the release, after keeping `startAt` if none was. */
  claimStart(id: string, startAt: number): Promise<number>;
  keepRollback(id: string, rollback: Rollback): Promise<void>;
  read(ids: readonly string[]): Promise<Map<string, KeptRelease>>;
  /**
   * A store shared by replicas only: adds this replica's `batch` to the release's call counters
   * (unless it was added before: see `CountBatch`) and answers with the counters of the buckets
   * `oldest` to `newest`, the fleet's counts over the window.
   */
  shareCounts?(release: CountedRelease, batch: CountBatch, buckets: { oldest: number; newest: number }): Promise<ArmCounts>;
  close(): Promise<void>;
}

const CLAIM_START = `redis.call('HSETNX', KEYS[1], 'startAt', ARGV[1])
return redis.call('HGET', KEYS[1], 'startAt')`;
const KEEP_ROLLBACK = `if redis.call('HSETNX', KEYS[1], 'rolledBackAt', ARGV[1]) == 1 then redis.call('HSET', KEYS[1], 'reason', ARGV[2]) end
return 1`;

/**
 * Adds a replica's batch of deltas to a release's bucket counters, at most once per batch, then
 * reads the window's buckets. KEYS: the release's applied-batch marks (replica → its last batch
 * applied), then the `n` buckets the batch adds to, then the buckets to read. ARGV: replica,
 * batch seq, expiry (ms), n, then for each bucket added to its number of counters and the
 * counter, delta pairs.
 */
const SHARE_COUNTS = `local replica, seq, ttl, n = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
if n > 0 and tonumber(redis.call('HGET', KEYS[1], replica) or '0') < seq then
  local a = 5
  for k = 2, n + 1 do
    local fields = tonumber(ARGV[a])
    a = a + 1
    for _ = 1, fields do
      redis.call('HINCRBY', KEYS[k], ARGV[a], ARGV[a + 1])
      a = a + 2
    end
    redis.call('PEXPIRE', KEYS[k], ttl)
  end
  redis.call('HSET', KEYS[1], replica, seq)
  redis.call('PEXPIRE', KEYS[1], ttl)
end
local buckets = {}
for k = n + 2, #KEYS do buckets[#buckets + 1] = redis.call('HGETALL', KEYS[k]) end
return buckets`;

const bucketReplies = z.array(z.array(z.string()));

const keptInteger = z.coerce.number().int().nonnegative();

/** A kept start in another form than the store writes (set by hand): that release runs on this router's start. */
export class UnreadableStart extends Error {}

/**
 * Gray releases in Redis: a hash per release, `<keyPrefix>router:gray-release:<id>`; the fleet's
 * call counters a hash per release, window, arm and bucket (`…:<id>:calls:<windowMs>:<arm>:<bucket
 * index>`, one field per counter), and the last batch applied of each replica (`…:<id>:batches`).
 */
export class RedisGrayReleaseStore implements GrayReleaseStore {
  constructor(
    private readonly redis: Redis,
    private readonly keyPrefix: string,
    /** Tells this replica's batches from every other's: a new one for each process. */
    private readonly replica: string = randomUUID(),
  ) {}

  async claimStart(id: string, startAt: number): Promise<number> {
    const kept = keptInteger.safeParse(await this.redis.eval(CLAIM_START, 1, this.key(id), String(startAt)));
    if (!kept.success) throw new UnreadableStart(`${this.key(id)} holds a startAt that is not milliseconds since 1970; delete the field to start the release now`);
    return kept.data;
  }

  async keepRollback(id: string, rollback: Rollback): Promise<void> {
    await this.redis.eval(KEEP_ROLLBACK, 1, this.key(id), String(rollback.at), rollback.reason);
  }

  async read(ids: readonly string[]): Promise<Map<string, KeptRelease>> {
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.hmget(this.key(id), 'startAt', 'rolledBackAt', 'reason');
    const replies = (await pipeline.exec()) ?? [];
    const kept = new Map<string, KeptRelease>();
    ids.forEach((id, i) => {
      const [error, value] = replies[i] ?? [];
      if (error) throw error;
      const [startAt, rolledBackAt, reason] = z.array(z.string().nullable()).parse(value);
      // A field someone wrote by hand in another form is left out, not a failure of every release.
      const start = keptInteger.safeParse(startAt);
      const at = keptInteger.safeParse(rolledBackAt);
      kept.set(id, {
        ...(startAt && start.success ? { startAt: start.data } : {}),
        ...(rolledBackAt ? { rollback: { at: at.success ? at.data : 0, reason: reason ?? '' } } : {}),
      });
    });
    return kept;
  }

  /**
   * One round trip (a script, so the batch is added whole or not at all); its work is bounded by
   * the window's buckets and the counters per bucket, whatever the traffic and the replicas.
   * Counters expire two windows after their last change.
   */
  async shareCounts(release: CountedRelease, batch: CountBatch, buckets: { oldest: number; newest: number }): Promise<ArmCounts> {
    const calls = (arm: string, bucket: number): string => `${this.key(release.id)}:calls:${release.windowMs}:${arm}:${bucket}`;
    const added: string[] = [];
    const deltas: string[] = [];
    for (const arm of ARMS) {
      for (const [bucket, fields] of batch.deltas[arm]) {
        if (fields.size === 0) continue;
        added.push(calls(arm, bucket));
        deltas.push(String(fields.size));
        for (const [field, delta] of fields) deltas.push(String(field), String(delta));
      }
    }
    const read: Array<{ arm: (typeof ARMS)[number]; bucket: number; key: string }> = [];
    for (const arm of ARMS) for (let bucket = buckets.oldest; bucket <= buckets.newest; bucket++) read.push({ arm, bucket, key: calls(arm, bucket) });
    const reply = await this.redis.eval(SHARE_COUNTS, 1 + added.length + read.length, `${this.key(release.id)}:batches`, ...added, ...read.map((r) => r.key), this.replica, String(batch.seq), String(2 * release.windowMs), String(added.length), ...deltas);
    const replies = bucketReplies.parse(reply);
    const fleet = emptyArmCounts();
    read.forEach(({ arm, bucket }, i) => {
      const pairs = replies[i] ?? [];
      const fields = new Map<number, number>();
      for (let p = 0; p + 1 < pairs.length; p += 2) {
        const field = Number(pairs[p]);
        const count = Number(pairs[p + 1]);
        // A field someone wrote by hand in another form is left out.
        if (Number.isInteger(field) && field >= 0 && field < ARM_COUNTERS && Number.isFinite(count) && count !== 0) fields.set(field, count);
      }
      if (fields.size > 0) fleet[arm].set(bucket, fields);
    });
    return fleet;
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }

  private key(id: string): string {
    return `${this.keyPrefix}router:gray-release:${id}`;
  }
}

const keptFile = z.object({
  releases: z.record(z.string(), z.object({ startAt: keptInteger.optional(), rollback: z.object({ at: keptInteger, reason: z.string() }).optional() })),
});

/** Gray releases in a JSON file, replaced whole (written, synced, renamed) at each change. */
export class FileGrayReleaseStore implements GrayReleaseStore {
  private writing: Promise<void> = Promise.resolve();

  private constructor(
    private readonly path: string,
    private releases: Record<string, KeptRelease>,
  ) {}

  static async open(path: string): Promise<FileGrayReleaseStore> {
    const text = await readFile(path, 'utf8').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined;
      throw error;
    });
    if (text === undefined) return new FileGrayReleaseStore(path, {});
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    const kept = keptFile.safeParse(parsed);
    if (!kept.success) throw new Error(`${path} is not a gray release state file; move it away to start the releases over`);
    return new FileGrayReleaseStore(path, kept.data.releases);
  }

  async claimStart(id: string, startAt: number): Promise<number> {
    const kept = this.releases[id]?.startAt;
    if (kept !== undefined) return kept;
    await this.update((releases) => {
      releases[id] = { ...releases[id], startAt: releases[id]?.startAt ?? startAt };
    });
    return this.releases[id]?.startAt ?? startAt;
  }

  async keepRollback(id: string, rollback: Rollback): Promise<void> {
    if (this.releases[id]?.rollback) return;
    await this.update((releases) => {
      releases[id] = { ...releases[id], rollback: releases[id]?.rollback ?? rollback };
    });
  }

  async read(ids: readonly string[]): Promise<Map<string, KeptRelease>> {
    return new Map(ids.map((id) => [id, { ...this.releases[id] }]));
  }

  async close(): Promise<void> {
    await this.writing;
  }

  /**
   * One change at a time: applied to a copy of what is kept, written whole (synced, then renamed
   * over the file), and only then kept in memory, so a failed write leaves nothing that looks kept.
   */
  private update(change: (releases: Record<string, KeptRelease>) => void): Promise<void> {
    const next = this.writing.then(async () => {
      const releases = { ...this.releases };
      change(releases);
      const temporary = `${this.path}.tmp`;
      await mkdir(dirname(this.path), { recursive: true });
      const file = await open(temporary, 'w');
      try {
        await file.writeFile(`${JSON.stringify({ releases }, null, 2)}\n`);
        await file.sync();
      } finally {
        await file.close();
      }
      await rename(temporary, this.path);
      this.releases = releases;
    });
    this.writing = next.catch(() => undefined);
    return next;
  }
}

/**
 * Keeps a router's gray releases in step with the store: at start, each release without `startAt`
 * takes the kept start (the first replica's, or an earlier run's) and each kept rollback holds;
 * this process's rollbacks are kept as they happen; and every `intervalMs` the rollbacks of other
 * replicas are read. With a store shared by replicas (Redis), each round also adds this
 * replica's calls since the last round to the fleet's counters and reads the fleet's back, which
 * each release is judged on from then on (see `GrayRelease.adoptFleetCounts`). While the store
 * cannot be reached the router goes on with what it has (the fleet's counts as last read, plus
 * its own since) and tries again at the next round; a rollback not yet kept is kept then, and
 * calls not yet shared are shared then, those still in the window.
 */
export class GrayReleaseSync {
  private readonly unkept = new Map<string, Rollback>();
  private readonly unclaimed = new Set<GrayRelease>();
  private timer: NodeJS.Timeout | undefined;
  /** One round at a time; rounds asked for during one (a rollback, the timer of a store slower than `intervalMs`) share the next. */
  private readonly rounds = new Coalesced(() => this.syncOnce());
  private closed = false;
  private failing = false;

  constructor(
    private readonly releases: GrayReleases,
    private readonly store: GrayReleaseStore,
    private readonly logger: Logger,
    private readonly intervalMs: number,
  ) {
    for (const release of releases.all()) {
      if (store.shareCounts) release.shareCounts();
      if (!release.config.startAt) this.unclaimed.add(release);
      release.onRollBack = (rollback) => {
        this.unkept.set(release.config.id, rollback);
        this.logger.warn({ release: release.config.id, reason: rollback.reason }, 'gray release rolled back');
        void this.sync();
      };
    }
  }

  /** The first round, then one every `intervalMs`. */
  async start(): Promise<void> {
    await this.sync();
    this.timer = setInterval(() => void this.sync(), this.intervalMs);
    this.timer.unref();
  }

  sync(): Promise<void> {
    return this.closed ? Promise.resolve() : this.rounds.run();
  }

  async close(): Promise<void> {
    // The calls counted since the last round go to the fleet's counters before the router leaves.
    if (this.store.shareCounts && !this.closed) await this.sync();
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    await this.rounds.idle();
    await this.store.close();
  }

  private async syncOnce(): Promise<void> {
    if (this.closed) return;
    // Made before any call to the store, so that while it cannot be reached what is kept for it stays within the window.
    const toShare = this.releases.all().flatMap((release) => {
      const counts = release.countsToShare();
      return counts ? [{ release, ...counts }] : [];
    });
    try {
      for (const release of [...this.unclaimed]) {
        try {
          release.adoptStart(await this.store.claimStart(release.config.id, release.startedAt()));
          this.unclaimed.delete(release);
        } catch (error) {
          // One release's unreadable start must not keep the others' rollbacks from being read.
          if (!(error instanceof UnreadableStart)) throw error;
          this.unclaimed.delete(release);
          this.logger.warn({ release: release.config.id, err: error }, "gray release start cannot be read; this router runs the release from its own start");
        }
      }
      for (const [id, rollback] of [...this.unkept]) {
        await this.store.keepRollback(id, rollback);
        this.unkept.delete(id);
      }
      const all = this.releases.all();
      const kept = await this.store.read(all.map((r) => r.config.id));
      for (const release of all) {
        const rollback = kept.get(release.config.id)?.rollback;
        if (rollback && !release.rollback()) {
          release.adoptRollback(rollback);
          this.logger.warn({ release: release.config.id, reason: rollback.reason }, 'gray release rolled back by another router');
        }
      }
      for (const { release, batch, buckets } of toShare) {
        const fleet = await this.store.shareCounts?.({ id: release.config.id, windowMs: release.config.rollback.windowMs }, batch, buckets);
        if (fleet) release.adoptFleetCounts(batch, fleet);
      }
      // Calls that left the window before they could be shared are in no one's window any more:
      // after an outage, said once, per release.
      const dropped = Object.fromEntries(toShare.map(({ release }) => [release.config.id, release.takeDroppedCalls()]).filter(([, calls]) => calls !== 0));
      if (this.failing) this.logger.info(Object.keys(dropped).length > 0 ? { droppedCalls: dropped } : {}, 'gray release state reachable again');
      this.failing = false;
    } catch (error) {
      if (!this.failing) this.logger.warn({ err: error }, "gray release state unreachable; going on with what this router has (the fleet's calls as last read, plus its own since), trying again");
      this.failing = true;
    }
  }
}

/**
 * Keeps the configured gray releases (if any) in Redis when `access.redis` is set, shared by every
 * router replica; else in `<gateway.dataDir>/router/gray-releases.json`, for a router that runs alone.
 */
export async function startGrayReleaseSync(config: Pick<GatewayConfig, 'access' | 'gateway' | 'routing'>, releases: GrayReleases, logger: Logger): Promise<GrayReleaseSync | undefined> {
  if (releases.all().length === 0) return undefined;
  const { url, keyPrefix } = config.access.redis;
  let store: GrayReleaseStore;
  if (url) {
    const redis = createRedisClient(config.access.redis, { lazyConnect: true, maxRetriesPerRequest: 1, commandTimeout: 2_000 });
    redis.on('error', (error: unknown) => logger.debug({ err: error }, 'gray release state connection error'));
    store = new RedisGrayReleaseStore(redis, keyPrefix);
  } else {
    store = await FileGrayReleaseStore.open(resolve(config.gateway.dataDir, 'router', 'gray-releases.json'));
  }
  const sync = new GrayReleaseSync(releases, store, logger, config.routing.grayReleaseSyncMs);
  await sync.start();
  return sync;
}
