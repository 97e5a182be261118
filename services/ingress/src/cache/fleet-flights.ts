import type { Redis } from 'ioredis';
import { z } from 'zod';
import { keepSubscribed } from '@openrouter/service-runtime';

/** What claiming an entry's flight found: the entry itself (stored meanwhile), another's claim, or the claim is this request's now. */
export type Claimed = { kind: 'stored'; sealed: string } | { kind: 'held'; holder: string } | { kind: 'claimed' };

/** How another replica's flight ended for a replica following it: its entry, or nothing (abandoned, or its claim expired). */
export type Followed = { outcome: 'stored'; sealed: string } | { outcome: 'abandoned' };

/**
 * Flights of cache misses across ingress replicas: the first replica to miss an entry claims its
 * flight (for `ttlMs` at a time, extended while its call runs, so a leader that crashes blocks
 * nobody longer than that), the others follow that claim until the entry is stored or the claim
 * goes. Entries are the store's own.
 */
export interface FleetFlights {
  /** Atomically: the entry when it is stored, else the holder of its flight's claim, else claims it for `owner` for `ttlMs`. */
  claim(id: string, owner: string, ttlMs: number): Promise<Claimed>;
  /** Extends `owner`'s claim to `ttlMs` from now, only while it is still theirs (never another's); whether it was. */
  renew(id: string, owner: string, ttlMs: number): Promise<boolean>;
  /** Deletes `owner`'s own claim (never another's) and tells the replicas following it how it ended. */
  release(id: string, owner: string, outcome: 'stored' | 'abandoned'): Promise<void>;
  /**
   * Until `holder`'s flight of `id` ends: its entry stored, or its claim gone (released, expired, or
   * another's now). No bound of its own: the claim's expiry ends a flight whose leader crashed, and
   * each request following it waits at most its own time. Never rejects.
   */
  follow(id: string, holder: string): Promise<Followed>;
}

/** How often a follower reads the entry and the claim itself: a lost notice costs this much latency, never a wrong answer. */
export const FOLLOW_POLL_MS = 250;

/** KEYS: the entry, its flight's claim; ARGV: owner, ttl ms. */
const CLAIM_LUA = `local sealed = redis.call('GET', KEYS[1])
if sealed then return {'stored', sealed} end
local holder = redis.call('GET', KEYS[2])
if holder then return {'held', holder} end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
return {'claimed', ARGV[1]}`;
/** KEYS: the claim; ARGV: owner, ttl ms. Compare-and-extend: a claim that expired (and was perhaps taken by another) is left as it is. */
const RENEW_LUA = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`;
/** KEYS: the claim; ARGV: owner, channel, notice. Compare-and-delete: a claim that expired and was taken by another stays. */
const RELEASE_LUA = `if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1`;

const noticeSchema = z.object({ id: z.string(), holder: z.string(), outcome: z.enum(['stored', 'abandoned']) });

/**
 * Flights in the access store's Redis, beside the entries: the claim `<prefix>cache-flight:<id>`
 * holds its leader's random token (nothing of the request), and one channel,
 * `<prefix>cache-flights`, carries each release's notice (entry id, token, outcome) to every
 * replica. A follower also polls every {@link FOLLOW_POLL_MS}, so a notice lost (the subscriber
 * reconnecting) only delays it.
 */
export class RedisFleetFlights implements FleetFlights {
  /** The checks of the requests following a flight now, by entry id: a notice for that id runs them. */
  private readonly followers = new Map<string, Set<() => void>>();

  constructor(
    private readonly redis: Redis,
    private readonly subscriber: Redis,
    private readonly prefix: string,
  ) {
    this.subscriber.on('error', () => undefined);
    keepSubscribed(this.subscriber, this.channel, {
      // Notices published while the subscription was away reached nobody here: every follower looks now.
      subscribed: () => this.followers.forEach((checks) => checks.forEach((check) => check())),
      message: (text) => {
        const notice = noticeSchema.safeParse(safeJson(text));
        if (notice.success) this.followers.get(notice.data.id)?.forEach((check) => check());
      },
    });
  }

  private get channel(): string {
    return `${this.prefix}cache-flights`;
  }

  private entryKey(id: string): string {
    return `${this.prefix}cache:${id}`;
  }

  /** Apart from the entries (`cache:*` holds entries only), under the same id. */
  private claimKey(id: string): string {
    return `${this.prefix}cache-flight:${id}`;
  }

  async claim(id: string, owner: string, ttlMs: number): Promise<Claimed> {
    const [kind, value] = (await this.redis.eval(CLAIM_LUA, 2, this.entryKey(id), this.claimKey(id), owner, String(ttlMs))) as [string, string];
    if (kind === 'stored') return { kind, sealed: value };
    if (kind === 'held') return { kind, holder: value };
    return { kind: 'claimed' };
  }

  async renew(id: string, owner: string, ttlMs: number): Promise<boolean> {
    return (await this.redis.eval(RENEW_LUA, 1, this.claimKey(id), owner, String(ttlMs))) === 1;
  }

  async release(id: string, owner: string, outcome: 'stored' | 'abandoned'): Promise<void> {
    await this.redis.eval(RELEASE_LUA, 1, this.claimKey(id), owner, this.channel, JSON.stringify({ id, holder: owner, outcome }));
  }

  follow(id: string, holder: string): Promise<Followed> {
    return new Promise((resolve) => {
      let done = false;
      let checking = false;
      const finish = (followed: Followed): void => {
        if (done) return;
        done = true;
        clearInterval(poll);
        const checks = this.followers.get(id);
        checks?.delete(check);
        if (checks?.size === 0) this.followers.delete(id);
        resolve(followed);
      };
      // One read of both keys at once: the leader stores the entry before it deletes its claim, so
      // a claim seen gone with no entry beside it is a flight that ended without one.
      const check = (): void => {
        if (done || checking) return;
        checking = true;
        this.redis.mget(this.entryKey(id), this.claimKey(id)).then(
          ([sealed, claim]) => {
            checking = false;
            if (sealed) finish({ outcome: 'stored', sealed });
            else if (claim !== holder) finish({ outcome: 'abandoned' });
          },
          // Redis away: the next poll tries again. The requests waiting meanwhile go on at their own
          // wait's end; once Redis answers again, a claim that expired meanwhile ends the flight.
          () => (checking = false),
        );
      };
      const poll = setInterval(check, FOLLOW_POLL_MS);
      // A follower never keeps the process alive.
      poll.unref();
      const checks = this.followers.get(id) ?? new Set<() => void>();
      checks.add(check);
      this.followers.set(id, checks);
    });
  }

  /** Stops listening for notices (the subscriber connection is this object's). */
  close(): void {
    this.subscriber.disconnect();
  }
}

/**
 * Keeps `owner`'s claim of the flight `id` while its leader's provider call runs, however long that
 * takes: extended to `ttlMs` every third of it, so one renewal lost to a slow or briefly unreachable
 * Redis does not let it lapse. Stops at the returned function (the lead settled: stored, abandoned,
 * cancelled), or once the claim is no longer the owner's (it lapsed during an outage, perhaps taken
 * by another replica since). Nothing outlives the process: a leader that crashes renews nothing,
 * and its claim expires `ttlMs` after its last renewal. `failed` hears of each renewal that could not
 * be made; the next one tries again.
 */
export function keepClaimed(flights: Pick<FleetFlights, 'renew'>, id: string, owner: string, ttlMs: number, failed: (error: unknown) => void): () => void {
  let renewing = false;
  let stopped = false;
  const stop = (): void => {
    stopped = true;
    clearInterval(timer);
  };
  const timer = setInterval(() => {
    // One renewal at a time: a slow Redis is not sent a queue of them.
    if (renewing || stopped) return;
    renewing = true;
    flights.renew(id, owner, ttlMs).then(
      (ours) => {
        renewing = false;
        if (!ours) stop();
      },
      (error: unknown) => {
        renewing = false;
        if (!stopped) failed(error);
      },
    );
  }, Math.max(1, Math.floor(ttlMs / 3)));
  // A leader's request keeps the process alive while it runs, not its claim.
  timer.unref();
  return stop;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
