import { randomUUID } from 'node:crypto';
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { ReplyError, type Redis } from 'ioredis';
import { z } from 'zod';
import type { GatewayConfig } from '@openrouter/config';
import type { Logger } from '@openrouter/observability';
import { Coalesced, createRedisClient } from '@openrouter/service-runtime';
import { ARMS, emptyArmCounts, type ArmCounts, type CountBatch } from './fleet-counts';
import { ARM_COUNTERS, type GrayRelease, type GrayReleaseArm, type GrayReleases, type Rollback } from './gray-release';

/** What is kept of a release beyond one router process. */
export interface KeptRelease {
  startAt?: number;
  rollback?: Rollback;
  /** Why the store answered with an error for this release rather than its state (see `KeptStateRefused`); nothing else is set then. */
  refused?: string;
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
  /**
   * The kept start of the release, after keeping `startAt` if none was. Throws `UnreadableStart`
   * or `KeptStateRefused` for this release alone, any other error when the store could not be reached.
   */
  claimStart(id: string, startAt: number): Promise<number>;
  /** Throws `KeptStateRefused` for this release alone, any other error when the store could not be reached. */
  keepRollback(id: string, rollback: Rollback): Promise<void>;
  /** A release the store answered with an error for is `refused`; the store not reached throws. */
  read(ids: readonly string[]): Promise<Map<string, KeptRelease>>;
  /**
   * A store shared by replicas only: adds this replica's `batch` to the release's call counters
   * (unless it was added before: see `CountBatch`) and answers with the counters of the buckets
   * `oldest` to `newest`, the fleet's counts over the window. Throws `SharedCountsRefused` when the
   * store answered but would not take the batch (nothing of it added), any other error when it
   * could not be reached.
   */
  shareCounts?(release: CountedRelease, batch: CountBatch, buckets: { oldest: number; newest: number }): Promise<ArmCounts>;
  close(): Promise<void>;
}

const CLAIM_START = `redis.call('HSETNX', KEYS[1], 'startAt', ARGV[1])
return redis.call('HGET', KEYS[1], 'startAt')`;
const KEEP_ROLLBACK = `if redis.call('HSETNX', KEYS[1], 'rolledBackAt', ARGV[1]) == 1 then redis.call('HSET', KEYS[1], 'reason', ARGV[2]) end
return 1`;

/** How the script refuses a batch: `UNUSABLE <index into KEYS> type|mark|field <field>`. */
const UNUSABLE = 'UNUSABLE';

/**
 * Adds a replica's batch of deltas to a release's bucket counters, at most once per batch, then
 * reads the window's buckets. KEYS: this replica's applied-batch mark (the seq of its last batch
 * applied), then the `n` buckets the batch adds to, then the buckets to read. ARGV: batch seq,
 * expiry (ms), n, then for each bucket added to its number of counters and the counter, delta
 * pairs.
 *
 * Redis does not undo a script's earlier writes when a later command fails, so everything that
 * could make a write fail is checked before the first one (each key's type, each counter to add
 * to holding an integer Redis can add to, the mark holding a seq): the batch is added whole or
 * refused whole, with an `UNUSABLE` error naming what is in the way.
 */
const SHARE_COUNTS = `local seq, ttl, n = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local function unusable(k, what) return redis.error_reply('${UNUSABLE} ' .. k .. ' ' .. what) end
local function integer(v) return v == '0' or (#v <= 18 and string.match(v, '^%-?[1-9]%d*$') ~= nil) end
local markType = redis.call('TYPE', KEYS[1]).ok
if markType ~= 'none' and markType ~= 'string' then return unusable(1, 'type') end
for k = 2, #KEYS do
  local t = redis.call('TYPE', KEYS[k]).ok
  if t ~= 'none' and t ~= 'hash' then return unusable(k, 'type') end
end
local mark = '0'
if markType == 'string' then mark = redis.call('GET', KEYS[1]) end
if not string.match(mark, '^%d+$') then return unusable(1, 'mark') end
if n > 0 and tonumber(mark) < seq then
  local a = 4
  for k = 2, n + 1 do
    local fields = tonumber(ARGV[a])
    a = a + 1
    for _ = 1, fields do
      local v = redis.call('HGET', KEYS[k], ARGV[a])
      if v and not integer(v) then return unusable(k, 'field ' .. ARGV[a]) end
      a = a + 2
    end
  end
  a = 4
  for k = 2, n + 1 do
    local fields = tonumber(ARGV[a])
    a = a + 1
    for _ = 1, fields do
      redis.call('HINCRBY', KEYS[k], ARGV[a], ARGV[a + 1])
      a = a + 2
    end
    redis.call('PEXPIRE', KEYS[k], ttl)
  end
  redis.call('SET', KEYS[1], seq, 'PX', ttl)
end
local buckets = {}
for k = n + 2, #KEYS do buckets[#buckets + 1] = redis.call('HGETALL', KEYS[k]) end
return buckets`;

const bucketReplies = z.array(z.array(z.string()));
const unusableReply = new RegExp(`^${UNUSABLE} (\\d+) (type|mark|field (\\d+))\\b`);

const keptInteger = z.coerce.number().int().nonnegative();

/** A kept start in another form than the store writes (set by hand): that release runs on this router's start. */
export class UnreadableStart extends Error {}

/**
 * The store answered with an error about one release's kept state, not with the state: in Redis,
 * a key of another type set by hand (WRONGTYPE). The other releases are kept all the same.
 */
export class KeptStateRefused extends Error {
  constructor(
    readonly release: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(`gray release ${release}: ${reason}`, options);
  }
}

/**
 * The store answered but did not take a batch of calls (nothing of it was added): a counter in a
 * form Redis cannot add to, or an error Redis answered with. The message says which release and
 * why, and names no key.
 */
export class SharedCountsRefused extends Error {
  constructor(
    readonly release: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(`gray release ${release}: ${reason}`, options);
  }
}

/**
 * The Redis keys of a release's shared call counters, apart from its kept state
 * (`<keyPrefix>router:gray-release:<id>`, which no id's counters can name): the id is
 * URI-encoded, so it holds no `:` and no id's keys are another's.
 */
export function sharedCountsKeys(keyPrefix: string, release: CountedRelease): { bucket(arm: GrayReleaseArm, index: number): string; applied(replica: string): string } {
  const base = `${keyPrefix}router:gray-release-calls:${encodeURIComponent(release.id)}:${release.windowMs}`;
  return {
    bucket: (arm, index) => `${base}:${arm}:${index}`,
    applied: (replica) => `${base}:applied:${encodeURIComponent(replica)}`,
  };
}

/**
 * Gray releases in Redis: a hash per release, `<keyPrefix>router:gray-release:<id>`; the fleet's
 * call counters a hash per release, window, arm and bucket, and the last batch applied of each
 * replica a key of its own (see `sharedCountsKeys`).
 */
export class RedisGrayReleaseStore implements GrayReleaseStore {
  constructor(
    private readonly redis: Redis,
    private readonly keyPrefix: string,
    /** Tells this replica's batches from every other's: a new one for each process. */
    private readonly replica: string = randomUUID(),
  ) {}

  async claimStart(id: string, startAt: number): Promise<number> {
    const kept = keptInteger.safeParse(await this.refusedFor(id, this.redis.eval(CLAIM_START, 1, this.key(id), String(startAt))));
    if (!kept.success) throw new UnreadableStart(`${this.key(id)} holds a startAt that is not milliseconds since 1970; delete the field to start the release now`);
    return kept.data;
  }

  async keepRollback(id: string, rollback: Rollback): Promise<void> {
    await this.refusedFor(id, this.redis.eval(KEEP_ROLLBACK, 1, this.key(id), String(rollback.at), rollback.reason));
  }

  async read(ids: readonly string[]): Promise<Map<string, KeptRelease>> {
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.hmget(this.key(id), 'startAt', 'rolledBackAt', 'reason');
    const replies = (await pipeline.exec()) ?? [];
    const kept = new Map<string, KeptRelease>();
    ids.forEach((id, i) => {
      const [error, value] = replies[i] ?? [];
      // Redis answered with an error for this key (one of another type): this release alone.
      if (error instanceof Error && error instanceof ReplyError) {
        kept.set(id, { refused: this.refusal(id, error) });
        return;
      }
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
   * One round trip, a script that adds the batch whole or refuses it whole; its work is bounded
   * by the window's buckets and the counters per bucket, whatever the traffic and the replicas.
   * Counters, and this replica's mark, expire two windows after their last change: a replica
   * that left takes its mark with it, and one that stops adding to a bucket, the bucket.
   */
  async shareCounts(release: CountedRelease, batch: CountBatch, buckets: { oldest: number; newest: number }): Promise<ArmCounts> {
    const keys = sharedCountsKeys(this.keyPrefix, release);
    const added: Array<{ arm: GrayReleaseArm; bucket: number }> = [];
    const deltas: string[] = [];
    for (const arm of ARMS) {
      for (const [bucket, fields] of batch.deltas[arm]) {
        if (fields.size === 0) continue;
        added.push({ arm, bucket });
        deltas.push(String(fields.size));
        for (const [field, delta] of fields) deltas.push(String(field), String(delta));
      }
    }
    const read: Array<{ arm: GrayReleaseArm; bucket: number }> = [];
    for (const arm of ARMS) for (let bucket = buckets.oldest; bucket <= buckets.newest; bucket++) read.push({ arm, bucket });
    const counters = [...added, ...read];
    let reply: unknown;
    try {
      reply = await this.redis.eval(SHARE_COUNTS, 1 + counters.length, keys.applied(this.replica), ...counters.map((c) => keys.bucket(c.arm, c.bucket)), String(batch.seq), String(2 * release.windowMs), String(added.length), ...deltas);
    } catch (error) {
      // Redis answered with an error: the script wrote nothing. Anything else: not reached.
      if (error instanceof Error && error instanceof ReplyError) throw new SharedCountsRefused(release.id, refusal(error.message, counters), { cause: error });
      throw error;
    }
    const parsed = bucketReplies.safeParse(reply);
    if (!parsed.success) throw new SharedCountsRefused(release.id, 'Redis answered the shared counts script in an unexpected form');
    const replies = parsed.data;
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

  /** `reply`, or `KeptStateRefused` when Redis answered it with an error: a release's key it cannot use, not Redis out of reach. */
  private async refusedFor<T>(id: string, reply: Promise<T>): Promise<T> {
    try {
      return await reply;
    } catch (error) {
      if (error instanceof Error && error instanceof ReplyError) throw new KeptStateRefused(id, this.refusal(id, error), { cause: error });
      throw error;
    }
  }

  private refusal(id: string, error: Error): string {
    return `Redis refused ${this.key(id)} (${error.message}); delete the key to keep the release's state again`;
  }
}

/** Why Redis refused a batch, from its error: what is in the way, named by arm and bucket, never by key. */
function refusal(message: string, counters: ReadonlyArray<{ arm: GrayReleaseArm; bucket: number }>): string {
  const unusable = unusableReply.exec(message);
  if (!unusable) return `Redis refused this replica's calls (${message}); nothing of them was added`;
  const index = Number(unusable[1]);
  const what = unusable[2] ?? '';
  const counter = counters[index - 2];
  const inTheWay =
    index === 1
      ? `this replica's applied-batch mark is ${what === 'type' ? 'not a string' : 'not a batch number'}`
      : counter
        ? `the ${counter.arm} counters of bucket ${counter.bucket} ${what === 'type' ? 'are not a hash' : `hold a counter ${unusable[3] ?? ''} that is not an integer`}`
        : `a counter is unusable (${what})`;
  return `${inTheWay}, so nothing of this replica's calls was added (it sends them again each round while they are in the window; delete what is in the way, docs/routing.md names the keys)`;
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
 * each release is judged on from then on (see `GrayRelease.adoptFleetCounts`). A round reads the
 * kept rollbacks, then shares the calls, then keeps this replica's new rollbacks: a rollback is
 * kept only once the calls it was judged on are shared, so a replica that reads it reads them too
 * in the same round (its last read of the fleet's counts for that release). While the store
 * cannot be reached the router goes on with what it has (the fleet's counts as last read, plus
 * its own since) and tries again at the next round; a rollback not yet kept is kept then, and
 * calls not yet shared are shared then, those still in the window. Each release's calls are
 * shared on their own: a batch the store refuses (`SharedCountsRefused`) is logged for its
 * release, once, and sent again at the next round, and the other releases are shared all the same.
 * So is each release's kept state: one the store answers with an error (`KeptStateRefused`, a key
 * set by hand in the way) runs on what this router has, is logged once, and is tried again at
 * each round, while the others are kept and read as ever.
 */
export class GrayReleaseSync {
  private readonly unkept = new Map<string, Rollback>();
  private readonly unclaimed = new Set<GrayRelease>();
  private timer: NodeJS.Timeout | undefined;
  /** One round at a time; rounds asked for during one (a rollback, the timer of a store slower than `intervalMs`) share the next. */
  private readonly rounds = new Coalesced(() => this.syncOnce());
  private closed = false;
  /** The store could not be reached at the last round. */
  private failing = false;
  /** Releases whose last batch the store refused (see `SharedCountsRefused`). */
  private readonly refused = new Set<string>();
  /** Releases whose kept state the store refused at the last round that reached it (see `KeptStateRefused`). */
  private stateRefused = new Set<string>();
  /**
   * Calls that left the window before they could be shared, by release: in no one's window any
   * more. Said once, after an outage, when a round gets through again.
   */
  private dropped: Record<string, number> = {};

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
    // The rollbacks decided by then, whose calls are all in `toShare`: one decided while this round
    // waits on the store was judged on calls it does not share, and is kept at the next round.
    const toKeep = [...this.unkept];
    /** The releases whose kept state the store refused this round, and why. */
    const stateRefused = new Map<string, string>();
    try {
      for (const release of [...this.unclaimed]) {
        try {
          release.adoptStart(await this.store.claimStart(release.config.id, release.startedAt()));
          this.unclaimed.delete(release);
        } catch (error) {
          // One release's start the store will not give must not keep the others' rollbacks from being read.
          if (error instanceof KeptStateRefused) {
            // Runs on this router's start meanwhile; claimed at a later round once the store takes it.
            stateRefused.set(release.config.id, error.message);
            continue;
          }
          if (!(error instanceof UnreadableStart)) throw error;
          this.unclaimed.delete(release);
          this.logger.warn({ release: release.config.id, err: error }, "gray release start cannot be read; this router runs the release from its own start");
        }
      }
      const all = this.releases.all();
      const kept = await this.store.read(all.map((r) => r.config.id));
      for (const release of all) {
        const refused = kept.get(release.config.id)?.refused;
        if (refused !== undefined) stateRefused.set(release.config.id, refused);
        const rollback = kept.get(release.config.id)?.rollback;
        if (rollback && !release.rollback()) {
          release.adoptRollback(rollback);
          this.logger.warn({ release: release.config.id, reason: rollback.reason }, 'gray release rolled back by another router');
        }
      }
    } catch (error) {
      this.unreachable(error);
      return;
    }
    for (const { release, batch, buckets } of toShare) {
      const id = release.config.id;
      try {
        const fleet = await this.store.shareCounts?.({ id, windowMs: release.config.rollback.windowMs }, batch, buckets);
        if (fleet) release.adoptFleetCounts(batch, fleet);
      } catch (error) {
        // Refused for this release alone: the others are shared all the same.
        if (error instanceof SharedCountsRefused) {
          if (!this.refused.has(id)) this.logger.warn({ release: id, reason: error.message }, "gray release calls not shared: Redis refused this replica's batch; judging on the fleet's calls as last read, plus its own since");
          this.refused.add(id);
          continue;
        }
        // Not reached: neither would the releases after it be; they are shared at the next round.
        this.unreachable(error);
        return;
      }
      const calls = release.takeDroppedCalls();
      if (this.refused.delete(id)) this.logger.info({ release: id, ...(calls !== 0 ? { droppedCalls: calls } : {}) }, 'gray release calls shared again');
      else if (calls !== 0) this.dropped[id] = (this.dropped[id] ?? 0) + calls;
    }
    // Kept only now, after the calls this replica judged on were shared: a replica that reads the
    // rollback reads them too (its round reads rollbacks, then the fleet's counts).
    try {
      for (const [id, rollback] of toKeep) {
        try {
          await this.store.keepRollback(id, rollback);
          this.unkept.delete(id);
        } catch (error) {
          // Kept at a later round, once the store takes it; the others are kept now.
          if (!(error instanceof KeptStateRefused)) throw error;
          stateRefused.set(id, error.message);
        }
      }
    } catch (error) {
      this.unreachable(error);
      return;
    }
    this.noteStateRefused(stateRefused);
    if (this.failing) this.logger.info(Object.keys(this.dropped).length > 0 ? { droppedCalls: this.dropped } : {}, 'gray release state reachable again');
    this.failing = false;
    this.dropped = {};
  }

  /** Each release whose kept state the store refuses is said once, until a round gets it through again. */
  private noteStateRefused(refused: ReadonlyMap<string, string>): void {
    for (const [id, reason] of refused) {
      if (!this.stateRefused.has(id)) this.logger.warn({ release: id, reason }, 'gray release state refused by the store; this router runs the release on its own start and rollback until the store takes it, the other releases as ever');
    }
    for (const id of this.stateRefused) if (!refused.has(id)) this.logger.info({ release: id }, 'gray release state taken again');
    this.stateRefused = new Set(refused.keys());
  }

  /** The store could not be reached: said once, until a round reaches it again. */
  private unreachable(error: unknown): void {
    if (!this.failing) this.logger.warn({ reason: error instanceof Error ? error.message : String(error) }, "gray release state unreachable; going on with what this router has (the fleet's calls as last read, plus its own since), trying again");
    this.failing = true;
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
