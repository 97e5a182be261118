import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { alertingSchema, alertRuleSchema } from '@openrouter/config';
import { AlertingMetrics, createLogger, createMetricsRegistry } from '@openrouter/observability';
import { DeliveryError, type AlertNotification, type NotificationChannel } from '../channels/notification';
import type { AlertTransition } from '../rules/alert-tracker';
import { WebhookChannel } from '../channels/webhook.channel';
import type { HandedOverDelivery } from '../state/alerting-state.repository';
import { DeliveryQueue, type DeliveryOutcome, type HandOff } from './delivery-queue';

const logger = createLogger('delivery-spec', 'silent');
const settings = alertingSchema.parse({ delivery: { initialBackoffMs: 5, maxBackoffMs: 20, maxAttempts: 4, timeoutMs: 1_000, queueLimit: 3 } }).delivery;
const notification = (id: string, status: AlertNotification['status'] = 'firing', ruleId = 'r'): AlertNotification => ({ id, status, ruleId, ruleKind: 'error_rate', severity: 'warning', alerts: [], sentAt: 0 });

function flakyChannel(failures: number, id = 'flaky'): NotificationChannel & { calls: string[] } {
  const calls: string[] = [];
  let left = failures;
  return {
    id,
    kind: 'webhook',
    calls,
    async send(n) {
      calls.push(n.id);
      if (left-- > 0) throw new Error('receiver down');
    },
  };
}

async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !condition(); i++) await new Promise((done) => setTimeout(done, 5));
  if (!condition()) throw new Error('condition never held');
}

describe('delivery queue', () => {
  it('returns at once and retries a failed delivery with backoff until it goes through', async () => {
    const registry = createMetricsRegistry('alerting', { processMetrics: false });
    const metrics = new AlertingMetrics(registry);
    const queue = new DeliveryQueue(settings, metrics, logger);
    const channel = flakyChannel(2);
    queue.enqueue(channel, notification('a'));
    expect(channel.calls).toEqual(['a']);
    await until(() => channel.calls.length === 3 && queue.pending === 0);
    const text = await registry.metrics();
    expect(text).toContain('openrouter_alert_delivery_failures_total{channel="flaky",service="alerting"} 2');
    await queue.close();
  });

  it('gives up after the last attempt, and never blocks other deliveries', async () => {
    const registry = createMetricsRegistry('alerting', { processMetrics: false });
    const queue = new DeliveryQueue(settings, new AlertingMetrics(registry), logger);
    const dead = flakyChannel(100);
    const fine = flakyChannel(0, 'fine');
    queue.enqueue(dead, notification('x'));
    queue.enqueue(fine, notification('y'));
    expect(fine.calls).toEqual(['y']);
    await until(() => dead.calls.length === 4 && queue.pending === 0);
    expect(await registry.metrics()).toContain('openrouter_alert_deliveries_dropped_total{channel="flaky",service="alerting"} 1');
    await queue.close();
  });

  it('never lets a resolution overtake the firing it resolves while the receiver is down', async () => {
    // A real receiver on a port that first refuses connections, then answers.
    const received: string[] = [];
    const handler = (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse): void => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        received.push(`${(JSON.parse(body) as { id: string }).id}`);
        res.writeHead(204).end();
      });
    };
    const probe = createServer(handler);
    await new Promise<void>((done) => probe.listen(0, '127.0.0.1', done));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((done) => probe.close(() => done()));
    let receiver: Server | undefined;
    const queue = new DeliveryQueue({ ...settings, initialBackoffMs: 300, maxBackoffMs: 300, maxAttempts: 20 }, new AlertingMetrics(createMetricsRegistry('alerting', { processMetrics: false })), logger, () => 0.99);
    const channel = new WebhookChannel('pager', `http://127.0.0.1:${port}/hook`, '');
    const other = new WebhookChannel('pager', `http://127.0.0.1:${port}/hook`, '');
    try {
      queue.enqueue(channel, notification('fired', 'firing'));
      await until(() => queue.pending === 1 && received.length === 0);
      // The receiver comes back while the firing waits for its retry; the resolution is made now.
      receiver = createServer(handler);
      await new Promise<void>((done) => receiver?.listen(port, '127.0.0.1', done));
      queue.enqueue(channel, notification('resolved', 'resolved'));
      queue.enqueue(other, notification('another-rule', 'firing', 'other'));
      await until(() => received.length === 3);
      expect(received.indexOf('fired')).toBeLessThan(received.indexOf('resolved'));
      // Another rule's notification did not wait behind them.
      expect(received[0]).toBe('another-rule');
    } finally {
      await queue.close();
      await new Promise<void>((done) => (receiver ? receiver.close(() => done()) : done()));
    }
  });

  it('logs a channel failure by its name and code, never its message (which may carry the URL and its token)', async () => {
    const lines: string[] = [];
    const sink = new Writable({ write: (chunk: Buffer, _enc, done) => (lines.push(chunk.toString()), done()) });
    const queue = new DeliveryQueue({ ...settings, maxAttempts: 2 }, new AlertingMetrics(createMetricsRegistry('alerting', { processMetrics: false })), createLogger('delivery-spec', 'info', sink));
    queue.enqueue(new WebhookChannel('ops', 'http://user:tok-9f8e7d@127.0.0.1:9/hook', ''), notification('a'));
    await until(() => queue.pending === 0 && lines.some((l) => l.includes('given up')));
    await queue.close();
    const failures = lines.map((l) => JSON.parse(l) as { channel?: string; failure?: { name: string } }).filter((l) => l.failure);
    expect(failures).toHaveLength(2);
    expect(failures.every((l) => l.channel === 'ops' && l.failure?.name === 'TypeError')).toBe(true);
    expect(lines.join('\n')).not.toContain('tok-9f8e7d');
  });

  /** A channel whose receiver answers each notification with `statusOf` it (2xx taken, else refused with that status). */
  function answering(statusOf: (n: AlertNotification) => number, id = 'hook'): NotificationChannel & { calls: string[] } {
    const calls: string[] = [];
    return {
      id,
      kind: 'webhook',
      calls,
      async send(n) {
        calls.push(n.id);
        const status = statusOf(n);
        if (status >= 300) throw new DeliveryError(`the receiver answered ${status}`, status);
      },
    };
  }

  function listened(queue: DeliveryQueue): Array<[string, DeliveryOutcome]> {
    const outcomes: Array<[string, DeliveryOutcome]> = [];
    queue.listen((_channel, n, outcome) => outcomes.push([n.id, outcome]));
    return outcomes;
  }

  it('gives up at once on a 4xx that retrying cannot change, logging its status; retries 408, 429 and 5xx', async () => {
    const lines: string[] = [];
    const sink = new Writable({ write: (chunk: Buffer, _enc, done) => (lines.push(chunk.toString()), done()) });
    const registry = createMetricsRegistry('alerting', { processMetrics: false });
    const queue = new DeliveryQueue(settings, new AlertingMetrics(registry), createLogger('delivery-spec', 'info', sink));
    const outcomes = listened(queue);
    const refusing = answering(() => 400, 'slack');
    queue.enqueue(refusing, notification('too-big'));
    const answers = new Map<string, number[]>([
      ['timeout', [408, 204]],
      ['limited', [429, 204]],
      ['broken', [503, 204]],
    ]);
    const busy = answering((n) => answers.get(n.id)?.shift() ?? 204, 'busy');
    for (const id of answers.keys()) queue.enqueue(busy, notification(id, 'firing', id));
    await until(() => queue.pending === 0);
    expect(refusing.calls).toEqual(['too-big']);
    expect(busy.calls.sort()).toEqual(['broken', 'broken', 'limited', 'limited', 'timeout', 'timeout']);
    expect(outcomes.sort()).toEqual([
      ['broken', 'delivered'],
      ['limited', 'delivered'],
      ['timeout', 'delivered'],
      ['too-big', 'refused'],
    ]);
    const refused = lines.map((l) => JSON.parse(l) as { msg: string; failure?: { status?: number } }).find((l) => l.msg.includes('refused by the receiver'));
    expect(refused?.failure?.status).toBe(400);
    expect(await registry.metrics()).toContain('openrouter_alert_deliveries_dropped_total{channel="slack",service="alerting"} 1');
    await queue.close();
  });

  it('withdraws a queued resolution of alerts whose firing did not reach the channel, and tells each outcome once', async () => {
    const rule = alertRuleSchema.parse({ id: 'r', kind: 'error_rate' });
    const alert = (provider: string, status: AlertTransition['status']): AlertTransition => ({ fingerprint: `r|provider=${provider}`, rule, status, labels: { provider }, value: 1, threshold: 0.2, summary: provider, startedAt: 1_000, at: 2_000, notify: true });
    const withAlerts = (id: string, status: AlertTransition['status'], providers: string[]): AlertNotification => ({ ...notification(id, status), alerts: providers.map((p) => alert(p, status)) });
    // The receiver is down for the firing of a (every attempt), up for everything else.
    const channel = answering((n) => (n.id === 'fired-a' ? 503 : 204));
    const queue = new DeliveryQueue({ ...settings, queueLimit: 10 }, new AlertingMetrics(createMetricsRegistry('alerting', { processMetrics: false })), logger);
    const outcomes = listened(queue);
    const sent: AlertNotification[] = [];
    const send = channel.send.bind(channel);
    channel.send = async (n, signal) => {
      await send(n, signal);
      sent.push(n);
    };
    queue.enqueue(channel, withAlerts('fired-a', 'firing', ['a']));
    queue.enqueue(channel, withAlerts('fired-b', 'firing', ['b']));
    // Both end while a's firing waits for a retry: one resolution of both, queued behind it.
    queue.enqueue(channel, withAlerts('resolved-ab', 'resolved', ['a', 'b']));
    queue.enqueue(channel, withAlerts('resolved-a', 'resolved', ['a']));
    await until(() => queue.pending === 0);
    expect(sent.map((n) => [n.id, n.alerts.map((a) => a.labels['provider'])])).toEqual([
      ['fired-b', ['b']],
      ['resolved-ab', ['b']],
    ]);
    expect(outcomes).toEqual([
      ['fired-a', 'given_up'],
      ['resolved-a', 'withdrawn'],
      ['fired-b', 'delivered'],
      ['resolved-ab', 'delivered'],
    ]);
    await queue.close();
  });

  it('tells every delivery left at shutdown, or made after it, as dropped', async () => {
    const queue = new DeliveryQueue({ ...settings, initialBackoffMs: 60_000, maxBackoffMs: 60_000 }, new AlertingMetrics(createMetricsRegistry('alerting', { processMetrics: false })), logger);
    const outcomes = listened(queue);
    const down = flakyChannel(100);
    queue.enqueue(down, notification('waiting'));
    queue.enqueue(down, notification('behind'));
    await until(() => down.calls.length === 1);
    await queue.close(100);
    queue.enqueue(down, notification('late'));
    expect(outcomes).toEqual([
      ['waiting', 'dropped'],
      ['behind', 'dropped'],
      ['late', 'dropped'],
    ]);
    expect(queue.pending).toBe(0);
  });
});

describe('delivery queue on a replica that is no longer the active one', () => {
  it('sends nothing once it may not notify, not even the retry of a delivery it started while active, and sets each aside: dropped at the close without a hand-over', async () => {
    const registry = createMetricsRegistry('alerting', { processMetrics: false });
    let active = true;
    const queue = new DeliveryQueue(settings, new AlertingMetrics(registry), logger, Math.random, () => active);
    const outcomes: DeliveryOutcome[] = [];
    queue.listen((_channel, _notification, outcome) => outcomes.push(outcome));
    const channel = flakyChannel(1);
    queue.enqueue(channel, notification('first'));
    expect(channel.calls).toEqual(['first']);
    // The lease is lost while the first attempt's retry waits.
    active = false;
    queue.enqueue(flakyChannel(0, 'other'), notification('second'));
    expect(outcomes).toEqual([]);
    // The close waits for the retry to find the lease gone.
    await queue.close(60_000);
    expect(channel.calls).toEqual(['first']);
    expect(outcomes).toEqual(['dropped', 'dropped']);
  });
});

describe('delivery queue at shutdown: drain, then hand over', () => {
  const metrics = (): AlertingMetrics => new AlertingMetrics(createMetricsRegistry('alerting', { processMetrics: false }));
  /** A receiver that answers each send with the next scripted status (204 once the script is over). */
  function scripted(statuses: number[], id = 'hook'): NotificationChannel & { calls: string[] } {
    const calls: string[] = [];
    return {
      id,
      kind: 'webhook',
      calls,
      async send(n) {
        calls.push(n.id);
        const status = statuses.shift() ?? 204;
        if (status >= 300) throw new DeliveryError(`the receiver answered ${status}`, status);
      },
    };
  }
  /** A hand-off that keeps what it is given (or fails when told to). */
  function fakeHandOff(fail = false): HandOff & { kept: HandedOverDelivery[][] } {
    const kept: HandedOverDelivery[][] = [];
    const handOff = async (deliveries: readonly HandedOverDelivery[]): Promise<void> => {
      if (fail) throw new Error('Redis unreachable');
      kept.push([...deliveries]);
    };
    return Object.assign(handOff, { kept });
  }
  function outcomesOf(queue: DeliveryQueue): Array<[string, DeliveryOutcome]> {
    const outcomes: Array<[string, DeliveryOutcome]> = [];
    queue.listen((_channel, n, outcome) => outcomes.push([n.id, outcome]));
    return outcomes;
  }

  it('keeps delivering during the grace, retries included, and hands nothing over once all is delivered', async () => {
    const handOff = fakeHandOff();
    const queue = new DeliveryQueue(settings, metrics(), logger, Math.random, () => true, handOff);
    const outcomes = outcomesOf(queue);
    const channel = scripted([503, 503]);
    queue.enqueue(channel, notification('a'));
    queue.enqueue(channel, notification('b'));
    // The grace is long: close returns as soon as nothing is left to do, not at its end.
    await queue.close(60_000);
    expect(channel.calls).toEqual(['a', 'a', 'a', 'b']);
    expect(outcomes).toEqual([
      ['a', 'delivered'],
      ['b', 'delivered'],
    ]);
    expect(handOff.kept).toEqual([]);
    expect(queue.pending).toBe(0);
  });

  it('keeps a delivery whose last attempt fails during the grace, and hands it over instead of giving it up', async () => {
    const handOff = fakeHandOff();
    const queue = new DeliveryQueue({ ...settings, maxAttempts: 2 }, metrics(), logger, Math.random, () => true, handOff);
    const outcomes = outcomesOf(queue);
    const finished: string[] = [];
    const channel = scripted([503, 503, 503]);
    queue.enqueue(channel, notification('a'), () => finished.push('a'));
    await queue.close(60_000);
    expect(channel.calls).toEqual(['a', 'a']);
    expect(handOff.kept).toEqual([[{ channel: 'hook', notification: notification('a') }]]);
    expect(outcomes).toEqual([['a', 'handed_over']]);
    // Handed over: the next active replica has it, so whoever kept it before may forget it.
    expect(finished).toEqual(['a']);
  });

  it('sends nothing once the lease is lost during the grace, and hands over what it could not send', async () => {
    const handOff = fakeHandOff();
    let holds = true;
    const queue = new DeliveryQueue({ ...settings, initialBackoffMs: 50, maxBackoffMs: 50 }, metrics(), logger, () => 0, () => holds, handOff);
    const outcomes = outcomesOf(queue);
    const channel = scripted([503]);
    queue.enqueue(channel, notification('a'));
    // The lease runs out while the retry waits: the retry finds it gone and parks the delivery.
    holds = false;
    await queue.close(60_000);
    expect(channel.calls).toEqual(['a']);
    expect(handOff.kept).toEqual([[{ channel: 'hook', notification: notification('a') }]]);
    expect(outcomes).toEqual([['a', 'handed_over']]);
  });

  it('hands over what it could not send once the lease was lost before the shutdown began: a retry due meanwhile, and what was queued after', async () => {
    const handOff = fakeHandOff();
    let holds = true;
    let asked = 0;
    const mayNotify = (): boolean => (asked++, holds);
    const queue = new DeliveryQueue({ ...settings, initialBackoffMs: 20, maxBackoffMs: 20 }, metrics(), logger, () => 0, mayNotify, handOff);
    const outcomes = outcomesOf(queue);
    const channel = scripted([503]);
    queue.enqueue(channel, notification('fired', 'firing', 'r'));
    // The lease runs out; the retry comes due before the replica begins to stop, and resolutions
    // owed since the last round are queued as it stops.
    holds = false;
    await until(() => asked === 2);
    expect(outcomes).toEqual([]);
    queue.enqueue(channel, notification('resolved', 'resolved', 'r'));
    queue.enqueue(scripted([], 'other'), notification('resolved-other', 'resolved', 's'));
    await queue.close(60_000);
    expect(channel.calls).toEqual(['fired']);
    expect(handOff.kept.map((kept) => kept.map((d) => [d.channel, d.notification.id]))).toEqual([
      [
        ['hook', 'fired'],
        ['hook', 'resolved'],
        ['other', 'resolved-other'],
      ],
    ]);
    expect(outcomes).toEqual([
      ['fired', 'handed_over'],
      ['resolved', 'handed_over'],
      ['resolved-other', 'handed_over'],
    ]);
  });

  it('keeps a delivery whose last attempt fails after the lease was lost, and hands it over instead of giving it up', async () => {
    const handOff = fakeHandOff();
    let holds = true;
    let answer = (): void => undefined;
    const answered = new Promise<void>((done) => (answer = done));
    const lines: string[] = [];
    const sink = new Writable({ write: (chunk: Buffer, _enc, done) => (lines.push(chunk.toString()), done()) });
    const queue = new DeliveryQueue({ ...settings, maxAttempts: 1 }, metrics(), createLogger('delivery-spec', 'info', sink), Math.random, () => holds, handOff);
    const outcomes = outcomesOf(queue);
    const slow: NotificationChannel = {
      id: 'hook',
      kind: 'webhook',
      async send() {
        await answered;
        throw new DeliveryError('the receiver answered 503', 503);
      },
    };
    queue.enqueue(slow, notification('resolved', 'resolved'));
    // The lease runs out while the only attempt is under way; it fails after.
    holds = false;
    answer();
    await until(() => lines.some((l) => l.includes('last attempt')));
    expect(outcomes).toEqual([]);
    await queue.close(60_000);
    expect(handOff.kept.map((kept) => kept.map((d) => d.notification.id))).toEqual([['resolved']]);
    expect(outcomes).toEqual([['resolved', 'handed_over']]);
  });

  it('hands over what is left at the end of the grace in the order it was made, across rules and channels', async () => {
    const handOff = fakeHandOff();
    // Retries far past the grace: nothing more goes through before it ends.
    const queue = new DeliveryQueue({ ...settings, queueLimit: 10, initialBackoffMs: 60_000, maxBackoffMs: 60_000 }, metrics(), logger, Math.random, () => true, handOff);
    const outcomes = outcomesOf(queue);
    const hook = scripted([503, 503], 'hook');
    const slack = scripted([503], 'slack');
    queue.enqueue(hook, notification('fired-r', 'firing', 'r'));
    queue.enqueue(slack, notification('fired-s', 'firing', 's'));
    queue.enqueue(hook, notification('resolved-r', 'resolved', 'r'));
    queue.enqueue(hook, notification('fired-t', 'firing', 't'));
    await queue.close(20);
    // The resolution never went out ahead of its firing; each was tried once at most.
    expect(hook.calls).toEqual(['fired-r', 'fired-t']);
    expect(handOff.kept).toHaveLength(1);
    expect(handOff.kept[0]?.map((d) => [d.channel, d.notification.id])).toEqual([
      ['hook', 'fired-r'],
      ['slack', 'fired-s'],
      ['hook', 'resolved-r'],
      ['hook', 'fired-t'],
    ]);
    expect(outcomes.map(([, o]) => o)).toEqual(['handed_over', 'handed_over', 'handed_over', 'handed_over']);
    expect(queue.pending).toBe(0);
  });

  it('drops what is left when the hand-off fails, leaving it for whoever kept it before', async () => {
    const lines: string[] = [];
    const sink = new Writable({ write: (chunk: Buffer, _enc, done) => (lines.push(chunk.toString()), done()) });
    const queue = new DeliveryQueue({ ...settings, initialBackoffMs: 60_000, maxBackoffMs: 60_000 }, metrics(), createLogger('delivery-spec', 'info', sink), Math.random, () => true, fakeHandOff(true));
    const outcomes = outcomesOf(queue);
    const finished: string[] = [];
    const channel = scripted([503]);
    queue.enqueue(channel, notification('a'), () => finished.push('a'));
    queue.enqueue(channel, notification('b'), () => finished.push('b'));
    await queue.close(20);
    expect(outcomes).toEqual([
      ['a', 'dropped'],
      ['b', 'dropped'],
    ]);
    // Not finished: a handed-over delivery stays in Redis for the next active replica.
    expect(finished).toEqual([]);
    expect(lines.some((l) => l.includes('could not be handed over: dropped'))).toBe(true);
    expect(queue.pending).toBe(0);
  });

  it('tells a delivery finished once it has an outcome for good, and not when a stopped replica drops it', async () => {
    const queue = new DeliveryQueue({ ...settings, queueLimit: 2, initialBackoffMs: 60_000, maxBackoffMs: 60_000 }, metrics(), logger);
    const finished: string[] = [];
    const done = (id: string) => () => finished.push(id);
    queue.enqueue(scripted([]), notification('delivered', 'firing', 'a'), done('delivered'));
    queue.enqueue(scripted([400]), notification('refused', 'firing', 'b'), done('refused'));
    const down = scripted([503, 503, 503], 'down');
    queue.enqueue(down, notification('pushed-out', 'firing', 'c'), done('pushed-out'));
    queue.enqueue(down, notification('left', 'firing', 'd'), done('left'));
    await until(() => finished.length === 2 && down.calls.length === 2);
    // A third delivery pushes out the oldest not being sent (both wait for a retry).
    queue.enqueue(down, notification('last', 'firing', 'e'), done('last'));
    await queue.close(20);
    expect(finished).toEqual(['delivered', 'refused', 'pushed-out']);
  });

  it('does not hand over a send still under way past its timeout: it may yet arrive', async () => {
    jest.useFakeTimers();
    try {
      const handOff = fakeHandOff();
      const queue = new DeliveryQueue({ ...settings, timeoutMs: 100 }, metrics(), logger, Math.random, () => true, handOff);
      const outcomes = outcomesOf(queue);
      const hanging: NotificationChannel = { id: 'hook', kind: 'webhook', send: () => new Promise<void>(() => undefined) };
      queue.enqueue(hanging, notification('a'));
      const closed = queue.close(50);
      await jest.advanceTimersByTimeAsync(50 + 100 + 1_000);
      await closed;
      expect(handOff.kept).toEqual([]);
      expect(outcomes).toEqual([['a', 'dropped']]);
    } finally {
      jest.useRealTimers();
    }
  });
});
