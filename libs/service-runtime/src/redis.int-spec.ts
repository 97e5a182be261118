import type { Redis } from 'ioredis';
import { createRedisClient, keepSubscribed, REVIVE_DELAY_MS, whenReady } from './redis';

/** The redis-server the integration project's global setup started. */
function redisUrl(): string {
  const url = process.env['OPENROUTER_TEST_REDIS_URL'];
  if (!url) throw new Error("OPENROUTER_TEST_REDIS_URL is not set: run this suite through jest's integration project");
  return url;
}

/** ioredis's connector, which gives up a connection in progress when closed (as its Sentinel failover detector does). */
const connectorOf = (client: Redis): { disconnect(): void } => (client as unknown as { connector: { disconnect(): void } }).connector;

/** The next time the client emits `event` (errors emitted meanwhile are not failures here). */
const next = (client: Redis, event: 'end' | 'ready'): Promise<void> => new Promise((resolve) => client.once(event, () => resolve()));

/** Resolves after the client's revival timer, scheduled at its 'end', would have fired: timers run in the order they fall due. */
const afterRevivalWindow = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, REVIVE_DELAY_MS + 50));

/** Has the connector of a client that is connecting give up, as ioredis's Sentinel failover detector does; the client ends, then is back. */
async function expectRevivedAfterGivingUp(client: Redis): Promise<void> {
  expect(client.status).toBe('connecting');
  const ended = next(client, 'end');
  connectorOf(client).disconnect();
  await ended;
  await next(client, 'ready');
  expect(await client.ping()).toBe('PONG');
}

describe('a Redis client (createRedisClient)', () => {
  const behaviour = { lazyConnect: false, enableOfflineQueue: false, maxRetriesPerRequest: 1, retryStrategy: (attempt: number) => Math.min(attempt * 200, 2_000) };

  it('connects again when its connector gives up a connection in progress, which ioredis takes for the end', async () => {
    const client = createRedisClient({ url: redisUrl() }, behaviour);
    client.on('error', () => undefined);
    try {
      await expectRevivedAfterGivingUp(client);
    } finally {
      client.disconnect();
    }
  });

  it('stays closed when its owner closes it, by quit or disconnect, even while connecting', async () => {
    const quitting = createRedisClient({ url: redisUrl() }, behaviour);
    await next(quitting, 'ready');
    const quitEnded = next(quitting, 'end');
    await quitting.quit();
    await quitEnded;

    const disconnecting = createRedisClient({ url: redisUrl() }, behaviour);
    disconnecting.on('error', () => undefined);
    const disconnectEnded = next(disconnecting, 'end');
    disconnecting.disconnect();
    await disconnectEnded;

    await afterRevivalWindow();
    expect([quitting.status, disconnecting.status]).toEqual(['end', 'end']);
  });

  it('may be connected again by its owner after it closed it, and then revives as before', async () => {
    const client = createRedisClient({ url: redisUrl() }, behaviour);
    client.on('error', () => undefined);
    try {
      await next(client, 'ready');
      const closed = next(client, 'end');
      client.disconnect();
      await closed;
      void client.connect().catch(() => undefined);
      await expectRevivedAfterGivingUp(client);
    } finally {
      client.disconnect();
    }
  });
});

describe('a subscription kept by keepSubscribed', () => {
  it('subscribes a connection that was ready before it was given, and hears what is published then', async () => {
    const subscriber = createRedisClient({ url: redisUrl() }, { lazyConnect: false });
    const publisher = createRedisClient({ url: redisUrl() }, { lazyConnect: false });
    subscriber.on('error', () => undefined);
    publisher.on('error', () => undefined);
    try {
      expect(await whenReady(subscriber, 5_000)).toBe(true);
      const channel = `keep-subscribed-${process.pid}-${Date.now()}`;
      const heard: string[] = [];
      const subscribed = new Promise<void>((resolve) => keepSubscribed(subscriber, channel, { subscribed: resolve, message: (text) => heard.push(text) }));
      await subscribed;
      const message = new Promise<void>((resolve) => subscriber.once('message', () => resolve()));
      expect(await publisher.publish(channel, 'hello')).toBe(1);
      await message;
      expect(heard).toEqual(['hello']);
    } finally {
      subscriber.disconnect();
      publisher.disconnect();
    }
  });
});
