import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { openBytes } from '../access/sealed-text';
import { backgroundSealKey } from './redis-background-store';
import { RedisResponseEventLog } from './redis-response-event-log';
import { delta, describeResponseEventLog, whenCalled } from './response-event-log.cases.testing';
import { newTestResponseId } from './response-store.cases.testing';

/** The redis-server the integration project's global setup started. */
function testRedisUrl(): string {
  const url = process.env['OPENROUTER_TEST_REDIS_URL'];
  if (!url) throw new Error("OPENROUTER_TEST_REDIS_URL is not set: run this suite through jest's integration project");
  return url;
}

const SECRET = 'redis-response-event-log-spec-secret';
const freshPrefix = (): string => `event-log-spec:${randomBytes(6).toString('hex')}:`;

describe('RedisResponseEventLog on a real Redis', () => {
  let redis: Redis;
  const prefixes: string[] = [];
  const subscribers: Redis[] = [];
  /** A log under `prefix`; `notices`: with a subscriber of its own (else it looks every `pollMs`). */
  const newLog = (prefix = freshPrefix(), { notices = true, pollMs = 60_000 } = {}): RedisResponseEventLog => {
    prefixes.push(prefix);
    const subscriber = notices ? new Redis(testRedisUrl()) : undefined;
    if (subscriber) subscribers.push(subscriber);
    return new RedisResponseEventLog(redis, prefix, SECRET, pollMs, subscriber);
  };

  beforeAll(() => {
    redis = new Redis(testRedisUrl());
  });
  afterAll(async () => {
    for (const prefix of prefixes) {
      const keys = await redis.keys(`${prefix}*`);
      if (keys.length > 0) await redis.del(...keys);
    }
    for (const subscriber of subscribers) subscriber.disconnect();
    await redis?.quit();
  });

  // Told by notices only: a look every minute would not pass the watcher case's 5 s.
  describeResponseEventLog('the cases of every log, told by notices', { log: () => newLog() });
  // Without a subscriber: told by its looks.
  describeResponseEventLog('the cases of every log, told by looking', { log: () => newLog(freshPrefix(), { notices: false, pollMs: 50 }) });

  it('keeps each event sealed, under the response’s id and its number: Redis holds none of its text, and an event moved does not open', async () => {
    const prefix = freshPrefix();
    const log = newLog(prefix);
    const id = newTestResponseId();
    const marker = 'the-secret-answer-91c2';
    await log.append(id, 0, [delta('first'), delta(`Here is ${marker}`)], Date.now() + 60_000);
    const entries = await redis.xrangeBuffer(`${prefix}background:${id}:events`, '-', '+');
    expect(entries.map(([entryId]) => entryId.toString())).toEqual(['0-1', '0-2']);
    const sealed = entries[1]?.[1][1] ?? Buffer.alloc(0);
    for (const text of [marker, 'output_text', 'delta']) expect(sealed.toString('latin1')).not.toContain(text);
    expect(JSON.parse(openBytes(backgroundSealKey(SECRET), sealed, `${id}:1`).toString('utf8'))).toMatchObject({ sequence_number: 1, delta: `Here is ${marker}` });
    expect(() => openBytes(backgroundSealKey(SECRET), sealed, `${id}:0`)).toThrow();
    // Moved under event 0's entry: the read fails rather than give another event's text.
    await redis.multi().del(`${prefix}background:${id}:events`).xadd(`${prefix}background:${id}:events`, '0-1', 'e', sealed).exec();
    await expect(log.read(id, -1, 10)).rejects.toThrow();
    await log.close();
  });

  it('expires the events at the expiry the last append gave', async () => {
    const prefix = freshPrefix();
    const log = newLog(prefix);
    const id = newTestResponseId();
    const at = Date.now() + 3_600_000;
    await log.append(id, 0, [delta('a')], Date.now() + 60_000);
    await log.append(id, 1, [delta('b')], at);
    expect(await redis.pexpiretime(`${prefix}background:${id}:events`)).toBe(at);
    await log.close();
  });

  it('tells a replica reading the stream of the events another replica appends, at once', async () => {
    const prefix = freshPrefix();
    const writer = newLog(prefix);
    const reader = newLog(prefix);
    const id = newTestResponseId();
    let read = 0;
    const told = whenCalled(() => read > 0);
    const stop = reader.watch(id, () => {
      void reader.read(id, -1, 10).then((events) => {
        read = events.length;
        told.changed();
      });
    });
    // Subscribed once the reader's connection is: appends before that are not its to hear.
    await waitSubscribed(redis, `${prefix}background-events`);
    await writer.append(id, 0, [delta('to the other replica')], Date.now() + 60_000);
    await told.done;
    expect(read).toBe(1);
    stop();
    await Promise.all([writer.close(), reader.close()]);
  });
});

/** Until some connection is subscribed to `channel`. */
async function waitSubscribed(redis: Redis, channel: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    const [, count] = (await redis.pubsub('NUMSUB', channel)) as [string, number];
    if (Number(count) > 0) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
  throw new Error(`no subscriber on ${channel}`);
}
