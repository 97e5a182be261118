import type { Redis } from 'ioredis';
import { keepSubscribed } from '@openrouter/service-runtime';
import { sealBytes, SealKeys, type StoreSecrets } from '../access/sealed-text';
import { backgroundSealKey } from './redis-background-store';
import { responseEventsKey } from './redis-response-store';
import { EventLogConflict, numbered, type ResponseEventLog, type StreamEvent } from './response-event-log';
import type { ResponseJson } from './response-store';

/**
 * Appends events when the stream holds exactly `from`, each as entry `0-<number + 1>`, and tells
 * every replica; the count after, or -(count + 1) when it held another number.
 * KEYS: the stream. ARGV: from, the expiry (Unix ms), the channel, the response id, the sealed events.
 */
const APPEND = `
local n = redis.call('XLEN', KEYS[1])
if n ~= tonumber(ARGV[1]) then return -n - 1 end
for i = 5, #ARGV do redis.call('XADD', KEYS[1], '0-' .. (n + i - 4), 'e', ARGV[i]) end
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return n + #ARGV - 4
`;

/**
 * The stream events of background responses in the access store's Redis, shared by every ingress
 * replica: `background:<id>:events` is a Redis stream whose entry `0-<n + 1>` holds event `n`,
 * sealed (as the background jobs are, with the id and the number as context: an event moved
 * elsewhere does not open), kept until the expiry its writer gives. Each append publishes the
 * response's id (nothing else) on `background-events`; a replica reading a stream wakes on it, and
 * looks every `pollMs` besides, so a notice lost (the subscriber reconnecting) only delays it.
 */
export class RedisResponseEventLog implements ResponseEventLog {
  private readonly sealKeys: SealKeys;
  /** The listeners of the streams being read here, by response id. */
  private readonly watchers = new Map<string, Set<() => void>>();

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    /** `access.keyHashSecret`, and the previous ones while it is rotated: what was sealed under those still opens. */
    secrets: StoreSecrets | string,
    private readonly pollMs: number,
    /** A connection of this log's own for the notices (closed with it); without one, readers look every `pollMs`. */
    private readonly subscriber?: Redis,
  ) {
    this.sealKeys = new SealKeys(backgroundSealKey, secrets);
    if (subscriber) {
      subscriber.on('error', () => undefined);
      keepSubscribed(subscriber, this.channel, {
        // Appends published while the subscription was away reached nobody here: every reader looks now.
        subscribed: () => this.watchers.forEach((listeners) => listeners.forEach((listener) => listener())),
        message: (id) => this.watchers.get(id)?.forEach((listener) => listener()),
      });
    }
  }

  async append(id: string, from: number, events: ResponseJson[], expiresAtMs: number): Promise<number> {
    const sealed = events.map((event, i) => sealBytes(this.sealKeys.current, Buffer.from(JSON.stringify(numbered(event, from + i)), 'utf8'), `${id}:${from + i}`));
    const count = Number(await this.redis.eval(APPEND, 1, this.key(id), String(from), String(Math.round(expiresAtMs)), this.channel, id, ...sealed));
    if (count < 0) throw new EventLogConflict(id, from, -count - 1);
    return count;
  }

  async read(id: string, after: number, limit: number): Promise<StreamEvent[]> {
    const start = after < 0 ? '-' : `(0-${Math.floor(after) + 1}`;
    const entries = await this.redis.xrangeBuffer(this.key(id), start, '+', 'COUNT', limit);
    return entries.map(([entryId, fields]) => {
      const sequence = Number(entryId.toString('latin1').split('-')[1]) - 1;
      const sealed = fields[1];
      if (!sealed) throw new Error(`stream event ${sequence} of background response ${id} is empty`);
      const event = JSON.parse(this.sealKeys.openBytes(sealed, `${id}:${sequence}`).toString('utf8')) as ResponseJson;
      return numbered(event, sequence);
    });
  }

  async length(id: string): Promise<number> {
    return this.redis.xlen(this.key(id));
  }

  watch(id: string, listener: () => void): () => void {
    const listeners = this.watchers.get(id) ?? new Set<() => void>();
    listeners.add(listener);
    this.watchers.set(id, listeners);
    const poll = setInterval(listener, this.pollMs);
    poll.unref();
    return () => {
      clearInterval(poll);
      listeners.delete(listener);
      if (listeners.size === 0 && this.watchers.get(id) === listeners) this.watchers.delete(id);
    };
  }

  async delete(id: string): Promise<void> {
    await this.redis.del(this.key(id));
  }

  async close(): Promise<void> {
    // The commands' connection is the access store's: its owner closes it; the subscriber is this log's.
    this.subscriber?.disconnect();
  }

  private get channel(): string {
    return `${this.prefix}background-events`;
  }

  private key(id: string): string {
    return responseEventsKey(this.prefix, id);
  }
}
