import { createHmac } from 'node:crypto';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { sealBytes, SealKeys, type StoreSecrets } from '../access/sealed-text';
import { resultsOf } from '../redis-records';
import type { BackgroundJob, BackgroundStore, PendingState } from './background-store';
import { storedResponseSchema } from './redis-response-store';

/** A background job as it opens from Redis: read back through this schema, never trusted as it is. */
const backgroundJobSchema = z.object({
  record: storedResponseSchema,
  keyId: z.string(),
  request: z.record(z.string(), z.unknown()),
  headers: z.record(z.string(), z.string()),
});

const pendingStateSchema = z.enum(['queued', 'in_progress', 'cancelling']);

/**
 * Queues a job unless `maxPending` are pending already (0) or its id is taken (-1). Its place in
 * the active set is the creating replica's clock, but never before the newest's: jobs created in
 * the same millisecond, or on a replica whose clock lags, keep the order they were created in.
 * KEYS: the active set, the job, its state. ARGV: maxPending, the sealed job, its expiry (Unix ms),
 * the creation time (Unix ms), the id.
 */
const CREATE = `
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
if not redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PXAT', ARGV[3]) then return -1 end
redis.call('SET', KEYS[3], 'queued', 'PXAT', ARGV[3])
local score = tonumber(ARGV[4])
local newest = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')[2]
if newest and tonumber(newest) >= score then score = tonumber(newest) + 1 end
redis.call('ZADD', KEYS[1], string.format('%.0f', score), ARGV[5])
return 1
`;
/** Claims a job that is still there, when no one else holds it (the holder's own claim is extended); one that expired leaves the active set. KEYS: the job, its claim, the active set. ARGV: the holder, ms, the id. */
const CLAIM = `
if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('ZREM', KEYS[3], ARGV[3]) return 0 end
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('PEXPIRE', KEYS[2], ARGV[2]) return 1 end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
`;
/** Renews a claim only while it is the holder's. */
const RENEW = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0`;
/** Releases a claim only while it is the holder's. */
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;
/** `queued` becomes `in_progress`, keeping its expiry; the state after (nil when gone). KEYS: the state. */
const START = `
local s = redis.call('GET', KEYS[1])
if s == 'queued' then redis.call('SET', KEYS[1], 'in_progress', 'KEEPTTL') return 'in_progress' end
return s
`;
/** `queued` or `in_progress` becomes `cancelling`, keeping its expiry; the state after (nil when gone). KEYS: the state. */
const CANCEL = `
local s = redis.call('GET', KEYS[1])
if s == 'queued' or s == 'in_progress' then redis.call('SET', KEYS[1], 'cancelling', 'KEEPTTL') return 'cancelling' end
return s
`;

/** The key background jobs are sealed under, derived from `access.keyHashSecret` (its own: not the stored responses' nor the files'). */
export function backgroundSealKey(keyHashSecret: string): Buffer {
  return createHmac('sha256', keyHashSecret).update('responses\0background').digest();
}

/**
 * The background responses of a gateway with Redis (the access store's, `access.redis`), shared by
 * every ingress replica. Under the prefix:
 * - `background:<id>` the job as JSON, sealed (as bytes) under a key derived from
 *   `access.keyHashSecret` with the id as context, since it holds the prompt: Redis alone reveals
 *   none, and a value moved under another id does not open;
 * - `background:<id>:state` its `PendingState` as plain text; both expire at the job's expiry;
 * - `background:<id>:claim` the replica running it, until its claim lapses;
 * - `backgrounds:active` the ids of the pending jobs by creation time (ms), oldest first. An id
 *   stays there after its job expired (then it is not found) until the runner `finish`es it.
 */
export class RedisBackgroundStore implements BackgroundStore {
  private readonly sealKeys: SealKeys;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    /** `access.keyHashSecret`, and the previous ones while it is rotated: what was sealed under those still opens. */
    secrets: StoreSecrets | string,
  ) {
    this.sealKeys = new SealKeys(backgroundSealKey, secrets);
  }

  async create(job: BackgroundJob, expiresAtMs: number, maxPending: number): Promise<boolean> {
    const id = job.record.id;
    const sealed = sealBytes(this.sealKeys.current, Buffer.from(JSON.stringify(job), 'utf8'), id);
    const created = Number(
      await this.redis.eval(CREATE, 3, this.activeKey(), this.jobKey(id), this.stateKey(id), String(maxPending), sealed, String(Math.round(expiresAtMs)), String(Date.now()), id),
    );
    if (created === -1) throw new Error(`background response ${id} exists already`);
    return created === 1;
  }

  async get(owner: string, id: string): Promise<{ job: BackgroundJob; state: PendingState } | undefined> {
    const found = await this.byId(id);
    return found && found.job.record.owner === owner ? found : undefined;
  }

  async byId(id: string): Promise<{ job: BackgroundJob; state: PendingState } | undefined> {
    // One transaction: the job and the state as they stood together.
    const [sealed, state] = resultsOf(await this.redis.multi().getBuffer(this.jobKey(id)).get(this.stateKey(id)).exec(), `background response ${id}`);
    const job = sealed instanceof Buffer ? this.open(id, sealed) : undefined;
    const parsedState = pendingStateSchema.safeParse(state);
    return job && parsedState.success ? { job, state: parsedState.data } : undefined;
  }

  async active(limit: number): Promise<string[]> {
    if (limit <= 0) return [];
    return this.redis.zrange(this.activeKey(), 0, String(limit - 1));
  }

  async count(): Promise<number> {
    return this.redis.zcard(this.activeKey());
  }

  async oldest(): Promise<number | undefined> {
    const [, score] = await this.redis.zrange(this.activeKey(), '0', '0', 'WITHSCORES');
    return score === undefined ? undefined : Number(score);
  }

  async claim(id: string, holder: string, ms: number): Promise<boolean> {
    return Number(await this.redis.eval(CLAIM, 3, this.jobKey(id), this.claimKey(id), this.activeKey(), holder, String(ms), id)) === 1;
  }

  async renew(id: string, holder: string, ms: number): Promise<boolean> {
    return Number(await this.redis.eval(RENEW, 1, this.claimKey(id), holder, String(ms))) === 1;
  }

  async release(id: string, holder: string): Promise<void> {
    await this.redis.eval(RELEASE, 1, this.claimKey(id), holder);
  }

  async start(id: string): Promise<PendingState | undefined> {
    return stateOf(await this.redis.eval(START, 1, this.stateKey(id)));
  }

  async cancel(id: string): Promise<PendingState | undefined> {
    return stateOf(await this.redis.eval(CANCEL, 1, this.stateKey(id)));
  }

  async state(id: string): Promise<PendingState | undefined> {
    return stateOf(await this.redis.get(this.stateKey(id)));
  }

  async finish(id: string): Promise<void> {
    const replies = await this.redis.multi().del(this.jobKey(id), this.stateKey(id), this.claimKey(id)).zrem(this.activeKey(), id).exec();
    resultsOf(replies, `background response ${id}`);
  }

  async close(): Promise<void> {
    // The connection is the access store's: its owner closes it.
  }

  private jobKey(id: string): string {
    return `${this.prefix}background:${id}`;
  }

  private stateKey(id: string): string {
    return `${this.prefix}background:${id}:state`;
  }

  private claimKey(id: string): string {
    return `${this.prefix}background:${id}:claim`;
  }

  private activeKey(): string {
    return `${this.prefix}backgrounds:active`;
  }

  /** The job sealed in `sealed` under `id`, or undefined (one that does not open or parse, or names another id). */
  private open(id: string, sealed: Buffer): BackgroundJob | undefined {
    let value: unknown;
    try {
      value = JSON.parse(this.sealKeys.openBytes(sealed, id).toString('utf8'));
    } catch {
      return undefined;
    }
    const parsed = backgroundJobSchema.safeParse(value);
    if (!parsed.success || parsed.data.record.id !== id) return undefined;
    return parsed.data;
  }
}

/** A state as Redis gave it back: undefined when there is none, or it is not one of a pending response. */
function stateOf(value: unknown): PendingState | undefined {
  const parsed = pendingStateSchema.safeParse(value);
  return parsed.success ? parsed.data : undefined;
}

