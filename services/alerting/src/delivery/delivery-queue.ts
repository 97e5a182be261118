import type { AlertingConfig } from '@openrouter/config';
import type { AlertingMetrics, Logger } from '@openrouter/observability';
import type { AlertNotification, NotificationChannel } from '../channels/notification';

interface Delivery {
  channel: NotificationChannel;
  notification: AlertNotification;
  attempts: number;
  timer?: NodeJS.Timeout;
}

/**
 * Delivers notifications off the caller's path: `enqueue` returns at once; each delivery is tried,
 * and retried with exponential backoff and jitter up to `maxAttempts`, independently of the
 * others, so a dead receiver never holds up the consumer or another channel. Bounded: past
 * `queueLimit` the oldest waiting delivery is dropped (and counted).
 */
export class DeliveryQueue {
  private readonly waiting = new Set<Delivery>();
  private readonly sending = new Set<Promise<void>>();
  private closed = false;

  constructor(
    private readonly settings: AlertingConfig['delivery'],
    private readonly metrics: AlertingMetrics,
    private readonly logger: Logger,
    private readonly random: () => number = Math.random,
  ) {}

  get pending(): number {
    return this.waiting.size + this.sending.size;
  }

  enqueue(channel: NotificationChannel, notification: AlertNotification): void {
    if (this.closed) return;
    if (this.waiting.size >= this.settings.queueLimit) {
      const oldest = this.waiting.values().next().value;
      if (oldest) {
        clearTimeout(oldest.timer);
        this.waiting.delete(oldest);
        this.metrics.dropped.inc({ channel: oldest.channel.id });
        this.logger.error({ channel: oldest.channel.id, notification: oldest.notification.id }, 'alert delivery queue full: oldest notification dropped');
      }
    }
    this.attempt({ channel, notification, attempts: 0 });
  }

  /** Stops retrying; waits (bounded) for sends in progress. */
  async close(timeoutMs = 5_000): Promise<void> {
    this.closed = true;
    for (const d of this.waiting) clearTimeout(d.timer);
    if (this.waiting.size > 0) this.logger.warn({ pending: this.waiting.size }, 'alert notifications left undelivered at shutdown');
    this.waiting.clear();
    const timeout = new Promise<void>((done) => setTimeout(done, timeoutMs).unref());
    await Promise.race([Promise.all([...this.sending]), timeout]);
    this.metrics.pending.set(0);
  }

  private attempt(delivery: Delivery): void {
    this.waiting.delete(delivery);
    delivery.attempts++;
    const sent = this.send(delivery);
    this.sending.add(sent);
    this.metrics.pending.set(this.pending);
    void sent.finally(() => {
      this.sending.delete(sent);
      this.metrics.pending.set(this.pending);
    });
  }

  private async send(delivery: Delivery): Promise<void> {
    const { channel, notification } = delivery;
    try {
      await channel.send(notification, AbortSignal.timeout(this.settings.timeoutMs));
      for (const a of notification.alerts) this.metrics.delivered(notification.ruleKind, channel.id, a.status);
      this.logger.info({ channel: channel.id, notification: notification.id, rule: notification.ruleId, status: notification.status, alerts: notification.alerts.length, attempts: delivery.attempts }, 'alert notification delivered');
    } catch (error) {
      this.metrics.deliveryFailures.inc({ channel: channel.id });
      if (this.closed) return;
      if (delivery.attempts >= this.settings.maxAttempts) {
        this.metrics.dropped.inc({ channel: channel.id });
        this.logger.error({ err: error, channel: channel.id, notification: notification.id, attempts: delivery.attempts }, 'alert notification given up after the last retry');
        return;
      }
      const base = Math.min(this.settings.maxBackoffMs, this.settings.initialBackoffMs * 2 ** (delivery.attempts - 1));
      const delay = Math.round(base / 2 + (this.random() * base) / 2);
      this.logger.warn({ err: error, channel: channel.id, notification: notification.id, attempts: delivery.attempts, retryInMs: delay }, 'alert notification not delivered; retrying');
      delivery.timer = setTimeout(() => this.attempt(delivery), delay);
      delivery.timer.unref();
      this.waiting.add(delivery);
    }
  }
}
