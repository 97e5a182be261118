import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { alertingSchema } from '@openrouter/config';
import { AlertingMetrics, createLogger } from '@openrouter/observability';
import type { RouterSnapshot } from './aggregation/router-replicas';
import { AlertingService, COOLDOWN_PRUNE_MS } from './alerting.service';
import { DeliveryError, type NotificationChannel } from './channels/notification';
import { DeliveryQueue } from './delivery/delivery-queue';
import { sendHandedOver } from './delivery/handed-over';
import { HistoryWriter } from './delivery/history-writer';
import { cooldownRetentionOf, RedisAlertingState } from './state/alerting-state.repository';

function redisUrl(): string {
  const url = process.env['OPENROUTER_TEST_REDIS_URL'];
  if (!url) throw new Error("OPENROUTER_TEST_REDIS_URL is not set: run this suite through jest's integration project");
  return url;
}

const T0 = 1_750_000_000_000;
const HOUR = 3_600_000;
const circuit = (state: string): RouterSnapshot => ({ replicas: [{ address: 'router:50051', status: { circuits: [{ provider: 'p', deployment: 'd1', state }], grayReleases: [] } }] });
const OPEN = circuit('open');

/** A channel that records what it is sent; each send waits for `gate` (open when absent), then fails with `failing`'s status, if set. */
function fakeChannel(id: string, options: { gate?: Promise<void>; failing?: number } = {}) {
  const got: string[] = [];
  const channel: NotificationChannel = {
    id,
    kind: 'webhook',
    async send(notification) {
      await options.gate;
      if (options.failing !== undefined) throw new DeliveryError(`the receiver answered ${options.failing}`, options.failing);
      got.push(notification.status);
    },
  };
  return { channel, got };
}

async function until(condition: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 1_000; i++) {
    if (await condition()) return;
    await new Promise((done) => setTimeout(done, 5));
  }
  throw new Error('condition never held');
}

/**
 * The active replica's state kept in Redis (firing alerts and cooldowns, as alerting keeps them
 * without ClickHouse), read by the next active replica: each channel's outcome of a firing is
 * recorded on its own, whatever order the outcomes arrive in.
 */
describe('an alerting service handing its firing alerts over through Redis (real Redis)', () => {
  const config = alertingSchema.parse({
    delivery: { initialBackoffMs: 5, maxBackoffMs: 10, maxAttempts: 2, timeoutMs: 2_000 },
    channels: [
      { id: 'chat', kind: 'webhook', url: 'http://127.0.0.1:9/chat' },
      { id: 'pager', kind: 'webhook', url: 'http://127.0.0.1:9/pager' },
    ],
    rules: [{ id: 'circuits', kind: 'circuit_open', cooldownMs: 60 * 60_000 }],
  });
  const logger = createLogger('test', 'silent');
  let redis: Redis;

  beforeAll(async () => {
    redis = new Redis(redisUrl(), { lazyConnect: true });
    await redis.connect();
  });
  afterAll(() => redis?.disconnect());

  function replica(state: RedisAlertingState, channels: NotificationChannel[], now: { at: number }) {
    const metrics = new AlertingMetrics(new Registry());
    const queue = new DeliveryQueue(config.delivery, metrics, logger);
    const history = new HistoryWriter(state, logger);
    const service = new AlertingService(config, { channels, delivery: queue, history, metrics, logger, router: () => OPEN, clock: () => now.at, cooldowns: state });
    return { service, queue, history };
  }

  it('does not send a firing again to a channel that delivered it after another channel gave it up, and records that channel', async () => {
    const state = new RedisAlertingState(redis, `restart-${randomBytes(4).toString('hex')}:`, () => undefined);
    const now = { at: T0 };
    let open = (): void => undefined;
    const gate = new Promise<void>((done) => (open = done));
    // The chat's delivery is held until the pager's give-up is recorded: its outcome arrives last.
    const chat = fakeChannel('chat', { gate });
    const pager = fakeChannel('pager', { failing: 503 });
    const first = replica(state, [chat.channel, pager.channel], now);
    first.service.evaluate();
    await until(async () => (await state.firing()).some((e) => !e.notified));
    open();
    await until(() => first.queue.pending === 0 && chat.got.length === 1);
    now.at = T0 + 1_000;
    await first.service.close();
    await first.queue.close(100);
    await first.history.close(1_000);
    // What the next active replica reads: the firing reached the chat, not the pager.
    expect((await state.firing()).map((e) => [e.notified, [...e.channels].sort()])).toEqual([[false, ['chat', 'owed:pager']]]);

    now.at = T0 + 60_000;
    const chatAgain = fakeChannel('chat');
    const pagerAgain = fakeChannel('pager');
    const second = replica(state, [chatAgain.channel, pagerAgain.channel], now);
    second.service.restoreCooldowns(await state.cooldowns());
    expect(second.service.restore(await state.firing())).toBe(1);
    second.service.evaluate();
    await until(() => second.queue.pending === 0 && pagerAgain.got.length === 1);
    now.at = T0 + 70_000;
    second.service.evaluate();
    await until(() => second.queue.pending === 0);
    expect(pagerAgain.got).toEqual(['firing']);
    expect(chatAgain.got).toEqual([]);
    await second.history.flushed();
    expect((await state.firing()).map((e) => [e.notified, [...e.channels].sort()])).toEqual([[true, ['chat', 'pager']]]);
    await second.service.close();
    await second.queue.close(100);
    await second.history.close(1_000);
  });

  it('holds a cooldown longer than a day across a hand-over, kept as long as the rule says', async () => {
    const daily = alertingSchema.parse({ ...config, rules: [{ id: 'circuits', kind: 'circuit_open', cooldownMs: 48 * HOUR }] });
    const now = { at: T0 };
    // As startAlerting keeps the state: cooldowns as long as the longest of the rules'.
    const state = new RedisAlertingState(redis, `restart-${randomBytes(4).toString('hex')}:`, () => undefined, () => now.at, cooldownRetentionOf(daily.rules));
    const router = { snapshot: OPEN };
    const active = () => {
      const metrics = new AlertingMetrics(new Registry());
      const queue = new DeliveryQueue(daily.delivery, metrics, logger);
      const history = new HistoryWriter(state, logger);
      const service = new AlertingService(daily, { channels: [fakeChannel('chat').channel, fakeChannel('pager').channel], delivery: queue, history, metrics, logger, router: () => router.snapshot, clock: () => now.at, cooldowns: state });
      return { service, queue, history };
    };
    const first = active();
    first.service.evaluate();
    await until(async () => (await state.cooldowns()).size === 1);
    router.snapshot = circuit('closed');
    now.at = T0 + 1_000;
    expect(first.service.evaluate().map((t) => [t.status, t.notify])).toEqual([['resolved', true]]);
    await first.service.close();
    await first.queue.close(100);
    await first.history.close(1_000);

    // A day and a half later the breaker opens again, under the next active replica: still within the cooldown.
    now.at = T0 + 36 * HOUR;
    const second = active();
    second.service.restoreCooldowns(await state.cooldowns());
    expect(second.service.restore(await state.firing())).toBe(0);
    router.snapshot = OPEN;
    expect(second.service.evaluate().map((t) => [t.status, t.notify])).toEqual([['firing', false]]);
    await second.service.close();
    await second.queue.close(100);
    await second.history.close(1_000);
  });

  it('prunes the cooldowns past their retention while it stays active, every hour', async () => {
    const now = { at: T0 };
    const keyPrefix = `restart-${randomBytes(4).toString('hex')}:`;
    const state = new RedisAlertingState(redis, keyPrefix, () => undefined, () => now.at, cooldownRetentionOf(config.rules));
    // An alert notified two days ago, under an earlier active replica.
    await state.saveCooldown('circuits|deployment=gone|provider=p', T0 - 48 * HOUR);
    const active = replica(state, [fakeChannel('chat').channel, fakeChannel('pager').channel], now);
    // Read as they are: `cooldowns()` would prune them.
    const kept = async (): Promise<string[]> => (await redis.hkeys(`${keyPrefix}alerting:cooldowns`)).sort();
    active.service.evaluate();
    await until(async () => (await kept()).length === 2);
    now.at = T0 + COOLDOWN_PRUNE_MS - 1;
    active.service.evaluate();
    await active.service.close();
    expect(await kept()).toEqual(['circuits|deployment=d1|provider=p', 'circuits|deployment=gone|provider=p']);
    now.at = T0 + COOLDOWN_PRUNE_MS;
    active.service.evaluate();
    await until(async () => (await kept()).length === 1);
    expect(await kept()).toEqual(['circuits|deployment=d1|provider=p']);
    await active.queue.close(100);
    await active.history.close(1_000);
  });
});

/** What a replica that stopped left in Redis, taken up by the next active replica as startAlerting does. */
describe('an alerting service taking over the notifications a stopped replica handed over (real Redis)', () => {
  const logger = createLogger('test', 'silent');
  let redis: Redis;

  beforeAll(async () => {
    redis = new Redis(redisUrl(), { lazyConnect: true });
    await redis.connect();
  });
  afterAll(() => redis?.disconnect());

  function replica(config: ReturnType<typeof alertingSchema.parse>, state: RedisAlertingState, channel: NotificationChannel, now: { at: number }) {
    const metrics = new AlertingMetrics(new Registry());
    const queue = new DeliveryQueue(config.delivery, metrics, logger, () => 0, () => true, (left) => state.handOff(left));
    const history = new HistoryWriter(state, logger);
    const service = new AlertingService(config, { channels: [channel], delivery: queue, history, metrics, logger, router: () => OPEN, clock: () => now.at, cooldowns: state });
    return { service, queue, history };
  }

  it('takes no more of them than its delivery queue has room for: the rest wait in Redis, none is pushed out and lost', async () => {
    const config = alertingSchema.parse({ delivery: { queueLimit: 3, timeoutMs: 2_000 }, channels: [{ id: 'pager', kind: 'webhook', url: 'http://127.0.0.1:9/pager' }], rules: [] });
    const keyPrefix = `handed-${randomBytes(4).toString('hex')}:`;
    const state = new RedisAlertingState(redis, keyPrefix, () => undefined);
    const ids = ['a', 'b', 'c', 'd', 'e'];
    await state.handOff(ids.map((id) => ({ channel: 'pager', notification: { id, status: 'resolved', ruleId: `rule-${id}`, ruleKind: 'circuit_open', severity: 'warning', alerts: [], sentAt: T0 } })));
    let open = (): void => undefined;
    const gate = new Promise<void>((done) => (open = done));
    const { channel, got } = fakeChannel('pager', { gate });
    const next = replica(config, state, channel, { at: T0 });
    const finishing = new Set<Promise<void>>();
    expect(await sendHandedOver(state, next.service, next.queue, logger, true, finishing)).toBe(true);
    expect(next.queue.pending).toBe(3);
    expect(await redis.llen(`${keyPrefix}alerting:outbox`)).toBe(2);
    // Full: a later round takes nothing more until those have an outcome.
    expect(await sendHandedOver(state, next.service, next.queue, logger, false, finishing)).toBe(true);
    expect(next.queue.pending).toBe(3);
    open();
    await until(() => next.queue.pending === 0);
    expect(await sendHandedOver(state, next.service, next.queue, logger, false, finishing)).toBe(true);
    await until(() => next.queue.pending === 0 && got.length === 5);
    await Promise.all(finishing);
    expect(await redis.llen(`${keyPrefix}alerting:outbox`)).toBe(0);
    expect(await redis.llen(`${keyPrefix}alerting:outbox:delivering`)).toBe(0);
    await next.queue.close(100);
  });

  it('sends a firing that was being sent again when its replica stopped once, not also again as owed by the history', async () => {
    const config = alertingSchema.parse({
      delivery: { maxAttempts: 1, initialBackoffMs: 10, maxBackoffMs: 10, timeoutMs: 2_000 },
      channels: [{ id: 'pager', kind: 'webhook', url: 'http://127.0.0.1:9/pager' }],
      rules: [{ id: 'circuits', kind: 'circuit_open', cooldownMs: 0 }],
    });
    const keyPrefix = `handed-${randomBytes(4).toString('hex')}:`;
    const state = new RedisAlertingState(redis, keyPrefix, () => undefined);
    const now = { at: T0 };
    // Refused at first (given up), the firing's second send hangs until the shutdown has begun, then fails.
    let fail: (error: Error) => void = () => undefined;
    let sends = 0;
    const down: NotificationChannel = {
      id: 'pager',
      kind: 'webhook',
      send: () => (++sends === 1 ? Promise.reject(new DeliveryError('the receiver answered 503', 503)) : new Promise((_, reject) => (fail = reject))),
    };
    const first = replica(config, state, down, now);
    first.service.evaluate();
    await until(() => first.queue.pending === 0);
    now.at = T0 + 10_000;
    first.service.evaluate();
    await until(() => sends === 2);
    await first.service.close();
    const closing = first.queue.close(1_000);
    fail(new DeliveryError('the receiver answered 503', 503));
    await closing;
    await first.history.close(1_000);
    expect(await redis.llen(`${keyPrefix}alerting:outbox`)).toBe(1);
    expect((await state.firing()).map((e) => [e.notified, e.channels])).toEqual([[false, ['owed:pager']]]);

    now.at = T0 + 20_000;
    const up = fakeChannel('pager');
    const next = replica(config, state, up.channel, now);
    expect(next.service.restore(await state.firing())).toBe(1);
    const finishing = new Set<Promise<void>>();
    expect(await sendHandedOver(state, next.service, next.queue, logger, true, finishing)).toBe(true);
    next.service.evaluate();
    await until(() => next.queue.pending === 0 && up.got.length === 1);
    now.at = T0 + 30_000;
    next.service.evaluate();
    await until(() => next.queue.pending === 0);
    expect(up.got).toEqual(['firing']);
    await next.history.flushed();
    expect((await state.firing()).map((e) => [e.notified, e.channels])).toEqual([[true, ['pager']]]);
    await next.service.close();
    await next.queue.close(100);
    await next.history.close(1_000);
  });
});
