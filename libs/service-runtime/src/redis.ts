import type { ConnectionOptions } from 'node:tls';
import { parseRedisUrl, type RedisConfig } from '@openrouter/config';
import { Command, Redis, type Callback, type RedisOptions } from 'ioredis';
import type { WriteableStream } from 'ioredis/built/types';

/** Where Redis is: `access.redis` without the key prefix. No sentinel (or none named): `url` is the server. */
export type RedisConnectionConfig = Pick<RedisConfig, 'url' | 'sentinel' | 'tlsServername'>;

/**
 * How one connection behaves, chosen by its owner (fail fast, queue while away, pipelining…).
 * Where it connects, with which credentials, and how it follows a failover are not its choice.
 */
export type RedisBehaviour = Pick<
  RedisOptions,
  'lazyConnect' | 'enableOfflineQueue' | 'maxRetriesPerRequest' | 'connectTimeout' | 'commandTimeout' | 'enableAutoPipelining' | 'retryStrategy' | 'autoResubscribe'
>;

/** A sentinel that accepts the connection but does not answer is given up on after this long, for the next one. */
const SENTINEL_COMMAND_TIMEOUT_MS = 2_000;

/**
 * The ioredis options that say where Redis is: the server of `url`, or with sentinels the primary
 * they name. Throws on a URL the configuration schema would refuse (a configuration built in code).
 */
export function redisConnectionOptions(config: RedisConnectionConfig): RedisOptions {
  const sentinel = config.sentinel && config.sentinel.nodes.length > 0 ? config.sentinel : undefined;
  const parsed = parseRedisUrl(config.url, sentinel !== undefined);
  // The problem never quotes the URL, which may hold a password.
  if (!parsed.ok) throw new Error(`access.redis.url ${parsed.problem}`);
  const { host, port, username, password, db, tls } = parsed.value;
  const credentials: RedisOptions = { db, ...(username ? { username } : {}), ...(password ? { password } : {}) };
  // With Sentinel, ioredis adds these to the address the sentinels give for every primary it connects to.
  const dataTls = tlsOptions(config.tlsServername);
  if (!sentinel) return { host, port: port ?? 6379, ...credentials, ...(tls ? { tls: dataTls } : {}) };
  return {
    sentinels: sentinel.nodes.map((node) => ({ host: node.host, port: node.port })),
    name: host,
    role: 'master',
    ...credentials,
    ...(sentinel.username ? { sentinelUsername: sentinel.username } : {}),
    ...(sentinel.password ? { sentinelPassword: sentinel.password } : {}),
    // Every connection to a sentinel takes these, those of the failover detector and of sentinels found later included.
    ...(sentinel.tls ? { sentinelTLS: tlsOptions(sentinel.tlsServername) } : {}),
    ...(tls ? { tls: dataTls, enableTLSForSentinelMode: true } : {}),
    sentinelCommandTimeout: SENTINEL_COMMAND_TIMEOUT_MS,
    // Subscribed to the sentinels' +switch-master: a promotion moves the connection at once,
    // not at its next failed command.
    failoverDetector: true,
  };
}

/** Node's TLS options for one side: the name its certificates are checked against (and SNI), when it is not the address. */
function tlsOptions(servername: string | undefined): ConnectionOptions {
  return servername ? { servername } : {};
}

/**
 * A demoted primary answers writes with READONLY (a failover, or a managed endpoint that moved)
 * while the connection to it stays open: such an error drops the connection, and the reconnection
 * finds the primary again (through the sentinels). A client that queues while away sends the
 * command again once there (nothing was written); one that fails fast fails it, and its owner's
 * fail mode applies.
 */
export function reconnectOnReadOnly(resend: boolean): NonNullable<RedisOptions['reconnectOnError']> {
  return (error) => (/\bREADONLY\b/.test(error.message) ? (resend ? 2 : 1) : false);
}

/**
 * ioredis puts the failed command on its error, arguments included: for the AUTH or HELLO of a
 * connection refused for its credentials, the password, which its owner's log would then print.
 */
export function hideCredentials(error: unknown): void {
  const command = error instanceof Error && 'command' in error ? error.command : undefined;
  if (typeof command !== 'object' || command === null || !('name' in command) || typeof command.name !== 'string') return;
  if (/^(auth|hello)$/i.test(command.name)) Object.assign(command, { args: ['[redacted]'] });
}

/** How long a client ended by something other than its owner waits before it connects again. */
export const REVIVE_DELAY_MS = 200;

/**
 * A client that connects again when it ends without its owner having closed it. ioredis ends a
 * client for good when its connector gives up a connection in progress: with Sentinel, the
 * failover detector of the previous connection, hearing `+switch-master`, closes the connector
 * while a reconnection is still asking the sentinels where the primary is (a primary that went
 * away, on a busy machine), and the client ends with "Connection is closed." though nobody closed
 * it — then every command fails until the process restarts. Closed by its owner (`quit`,
 * `disconnect`), it stays closed.
 */
class RevivingRedis extends Redis {
  private ownerClosed = false;

  /** Listens for an end its owner did not ask for, and connects again after {@link REVIVE_DELAY_MS}. */
  revive(): this {
    this.on('end', () => {
      if (this.ownerClosed) return;
      setTimeout(() => {
        if (!this.ownerClosed && this.status === 'end') this.connect().catch(() => undefined);
      }, REVIVE_DELAY_MS).unref();
    });
    return this;
  }

  override connect(callback?: Callback<void>): Promise<void> {
    this.ownerClosed = false;
    return super.connect(callback);
  }

  override disconnect(reconnect = false): void {
    if (!reconnect) this.ownerClosed = true;
    super.disconnect(reconnect);
  }

  override sendCommand(command: Command, stream?: WriteableStream): unknown {
    // QUIT (and any command that ends the connection) is the owner closing it.
    if (Command.checkFlag('WILL_DISCONNECT', command.name)) this.ownerClosed = true;
    return super.sendCommand(command, stream);
  }
}

/**
 * A Redis client for `config`, behaving as its owner asks. The one place a Redis client is made.
 * Its owner listens for 'error' (ioredis prints unheard errors); credentials are gone from them first.
 * It is connected again if it ends without its owner closing it ({@link RevivingRedis}).
 */
export function createRedisClient(config: RedisConnectionConfig, behaviour: RedisBehaviour): Redis {
  const client = new RevivingRedis({
    ...behaviour,
    ...redisConnectionOptions(config),
    reconnectOnError: reconnectOnReadOnly(behaviour.enableOfflineQueue !== false),
    // ioredis's default, named for the subclass's constructor type.
    replyMapping: 'legacy',
  }).revive();
  client.prependListener('error', hideCredentials);
  return client;
}

/**
 * Subscribes a pub/sub connection to `channel` on every 'ready' (its owner's doing, not ioredis's
 * behind its back, so it knows when the subscription is back): `subscribed` is called once it is
 * confirmed — what was published while it was away reached nobody, so its owner resyncs then —
 * and `message` with each message's text. A connection already ready is subscribed at once. A
 * subscription that fails is made at the next 'ready' (the connection dropped again).
 */
export function keepSubscribed(subscriber: Redis, channel: string, on: { subscribed(): void; message(text: string): void }): void {
  const subscribe = (): void => {
    subscriber.subscribe(channel).then(
      () => on.subscribed(),
      () => undefined,
    );
  };
  subscriber.on('ready', subscribe);
  subscriber.on('message', (from: string, text: string) => {
    if (from === channel) on.message(text);
  });
  // A connection given ready has had its 'ready' already: subscribed now.
  if (subscriber.status === 'ready') subscribe();
}

/** Resolves true once the connection is ready, or false after `timeoutMs` (then its owner's fail mode covers the rest). */
export function whenReady(redis: Redis, timeoutMs: number): Promise<boolean> {
  if (redis.status === 'ready') return Promise.resolve(true);
  if (timeoutMs <= 0) return Promise.resolve(false);
  return new Promise((resolve) => {
    const done = (ready: boolean): void => {
      clearTimeout(timer);
      redis.off('ready', onReady);
      resolve(ready);
    };
    const onReady = (): void => done(true);
    const timer = setTimeout(() => done(false), timeoutMs);
    redis.once('ready', onReady);
  });
}
