import type { AlertingConfig } from '@openrouter/config';
import type { AlertingMetrics, Logger } from '@openrouter/observability';
import { DeliveryError, type AlertNotification, type NotificationChannel } from '../channels/notification';

interface Delivery {
  channel: NotificationChannel;
  notification: AlertNotification;
  /** Deliveries of one rule to one channel, kept in order. */
  lane: string;
  attempts: number;
  sending: boolean;
  timer?: NodeJS.Timeout;
}

/**
 * Delivers notifications off the caller's path: `enqueue` returns at once; each delivery is tried,
 * and retried with exponential backoff and jitter up to `maxAttempts`. Notifications of one rule
 * to one channel go out in the order they were made — a resolution never overtakes the firing it
 * resolves while that one waits for a retry — and independently of every other rule and channel,
 * so a dead receiver never holds up the consumer or another channel. Bounded: past `queueLimit`
 * the oldest delivery not being sent is dropped (and counted).
 */
export class DeliveryQueue {
  /** Every delivery not yet done, oldest first. */
  private readonly queued = new Set<Delivery>();
  private readonly lanes = new Map<string, Delivery[]>();
  private readonly sending = new Set<Promise<void>>();
  private closed = false;

  constructor(
    private readonly settings: AlertingConfig['delivery'],
    private readonly metrics: AlertingMetrics,
    private readonly logger: Logger,
    private readonly random: () => number = Math.random,
  ) {}

  get pending(): number {
    return this.queued.size;
  }

  enqueue(channel: NotificationChannel, notification: AlertNotification): void {
    if (this.closed) return;
    if (this.queued.size >= this.settings.queueLimit) {
      const oldest = [...this.queued].find((d) => !d.sending);
      if (oldest) {
        this.metrics.dropped.inc({ channel: oldest.channel.id });
        this.logger.error({ channel: oldest.channel.id, notification: oldest.notification.id, rule: oldest.notification.ruleId, status: oldest.notification.status }, 'alert delivery queue full: oldest notification dropped');
        this.done(oldest);
      }
    }
    const delivery: Delivery = { channel, notification, lane: `${channel.id}\u0000${notification.ruleId}`, attempts: 0, sending: false };
    this.queued.add(delivery);
    const lane = this.lanes.get(delivery.lane) ?? [];
    lane.push(delivery);
    this.lanes.set(delivery.lane, lane);
    this.metrics.pending.set(this.pending);
    if (lane.length === 1) this.attempt(delivery);
  }

  /** Stops retrying; waits (bounded) for sends in progress. */
  async close(timeoutMs = 5_000): Promise<void> {
    this.closed = true;
    const left = [...this.queued].filter((d) => !d.sending);
    for (const d of left) clearTimeout(d.timer);
    if (left.length > 0) this.logger.warn({ pending: left.length }, 'alert notifications left undelivered at shutdown');
    this.queued.clear();
    this.lanes.clear();
    const timeout = new Promise<void>((done) => setTimeout(done, timeoutMs).unref());
    await Promise.race([Promise.all([...this.sending]), timeout]);
    this.metrics.pending.set(0);
  }

  private attempt(delivery: Delivery): void {
    delivery.timer = undefined;
    delivery.attempts++;
    delivery.sending = true;
    const sent = this.send(delivery);
    this.sending.add(sent);
    void sent.finally(() => this.sending.delete(sent));
  }

  /** Takes a delivery off the queue (sent, given up or dropped); the next of its lane starts. */
  private done(delivery: Delivery): void {
    clearTimeout(delivery.timer);
    if (!this.queued.delete(delivery)) return;
    const lane = this.lanes.get(delivery.lane) ?? [];
    const wasHead = lane[0] === delivery;
    lane.splice(lane.indexOf(delivery), 1);
    if (lane.length === 0) this.lanes.delete(delivery.lane);
    this.metrics.pending.set(this.pending);
    const next = lane[0];
    if (wasHead && next && !this.closed) this.attempt(next);
  }

  private async send(delivery: Delivery): Promise<void> {
    const { channel, notification } = delivery;
    try {
      await channel.send(notification, AbortSignal.timeout(this.settings.timeoutMs));
      delivery.sending = false;
      for (const a of notification.alerts) this.metrics.delivered(notification.ruleKind, channel.id, a.status);
      this.logger.info({ channel: channel.id, notification: notification.id, rule: notification.ruleId, status: notification.status, alerts: notification.alerts.length, attempts: delivery.attempts }, 'alert notification delivered');
      this.done(delivery);
    } catch (error) {
      delivery.sending = false;
      this.metrics.deliveryFailures.inc({ channel: channel.id });
      if (this.closed) return;
      // Only the error's name, code and status: a message may carry the receiver's URL, and with it a token.
      const failure = failureOf(error);
      if (delivery.attempts >= this.settings.maxAttempts) {
        this.metrics.dropped.inc({ channel: channel.id });
        this.logger.error({ failure, channel: channel.id, notification: notification.id, attempts: delivery.attempts }, 'alert notification given up after the last retry');
        this.done(delivery);
        return;
      }
      const base = Math.min(this.settings.maxBackoffMs, this.settings.initialBackoffMs * 2 ** (delivery.attempts - 1));
      const delay = Math.round(base / 2 + (this.random() * base) / 2);
      this.logger.warn({ failure, channel: channel.id, notification: notification.id, attempts: delivery.attempts, retryInMs: delay }, 'alert notification not delivered; retrying');
      delivery.timer = setTimeout(() => this.attempt(delivery), delay);
      delivery.timer.unref();
    }
  }
}

/** What a channel error may say in a log: its kind, never its message. */
function failureOf(error: unknown): { name: string; code?: string; status?: number } {
  if (error instanceof DeliveryError) return { name: error.name, ...(error.status !== undefined ? { status: error.status } : {}) };
  // Not `instanceof Error`: fetch's errors may come from another realm.
  const e = error as { name?: unknown; cause?: unknown } | null | undefined;
  const name = typeof e?.name === 'string' ? e.name : typeof error;
  const code = codeOf(error) ?? codeOf(e?.cause);
  return { name, ...(code ? { code } : {}) };
}

function codeOf(value: unknown): string | undefined {
  const code = (value as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}
