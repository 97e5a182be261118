import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { AlertNotification } from '../channels/notification';
import { RedisAlertingState } from './alerting-state.repository';

function redisUrl(): string {
  const url = process.env['OPENROUTER_TEST_REDIS_URL'];
  if (!url) throw new Error("OPENROUTER_TEST_REDIS_URL is not set: run this suite through jest's integration project");
  return url;
}

const T0 = 1_750_000_000_000;
const DAY = 24 * 3_600_000;
const notification = (id: string): AlertNotification => ({ id, status: 'resolved', ruleId: 'circuits', ruleKind: 'circuit_open', severity: 'warning', alerts: [], sentAt: T0 });

describe('the alerting state in Redis (real Redis)', () => {
  let redis: Redis;

  beforeAll(async () => {
    redis = new Redis(redisUrl(), { lazyConnect: true });
    await redis.connect();
  });
  afterAll(() => redis?.disconnect());

  const prefix = (): string => `state-${randomBytes(4).toString('hex')}:`;

  it('prunes the cooldowns past their retention, more than one HSCAN step of them, and keeps the others', async () => {
    const keyPrefix = prefix();
    const now = { at: T0 };
    const state = new RedisAlertingState(redis, keyPrefix, () => undefined, () => now.at, DAY);
    const key = `${keyPrefix}alerting:cooldowns`;
    // Alerts notified long ago, one saved as something unreadable, and two still within the retention.
    const old = Array.from({ length: 1_200 }, (_, i) => [`old-${i}`, String(T0 - DAY - 1 - i)]).flat();
    await redis.hset(key, ...old, 'garbled', 'not a time', 'recent', String(T0 - DAY), 'fresh', String(T0));
    expect(await state.pruneCooldowns()).toBe(1_201);
    expect((await redis.hkeys(key)).sort()).toEqual(['fresh', 'recent']);
    expect(await state.pruneCooldowns()).toBe(0);
    // A day later, those are past it too: the hash is gone.
    now.at = T0 + 2 * DAY;
    expect(await state.pruneCooldowns()).toBe(2);
    expect(await redis.exists(key)).toBe(0);
  });

  it('claims no more handed-over notifications than it is told to, leaving the rest in the outbox, oldest first', async () => {
    const state = new RedisAlertingState(redis, prefix(), () => undefined);
    await state.handOff(['a', 'b', 'c', 'd', 'e'].map((id) => ({ channel: 'pager', notification: notification(id) })));
    expect((await state.claimHandedOver({ limit: 2 })).map((d) => d.notification.id)).toEqual(['a', 'b']);
    expect(await state.claimHandedOver({ limit: 0 })).toEqual([]);
    expect((await state.claimHandedOver()).map((d) => d.notification.id)).toEqual(['c', 'd', 'e']);
  });

  it('with retake, puts what a dead replica had in delivery back ahead of the outbox, and takes no more than it is told to of either', async () => {
    const state = new RedisAlertingState(redis, prefix(), () => undefined);
    await state.handOff(['a', 'b', 'c'].map((id) => ({ channel: 'pager', notification: notification(id) })));
    // A replica took these and died before telling their outcome.
    expect(await state.claimHandedOver()).toHaveLength(3);
    await state.handOff(['d', 'e'].map((id) => ({ channel: 'pager', notification: notification(id) })));

    const first = await state.claimHandedOver({ retake: true, limit: 2 });
    expect(first.map((d) => d.notification.id)).toEqual(['a', 'b']);
    for (const d of first) await state.finishHandedOver(d.receipt);
    expect((await state.claimHandedOver({ limit: 10 })).map((d) => d.notification.id)).toEqual(['c', 'd', 'e']);
  });
});
