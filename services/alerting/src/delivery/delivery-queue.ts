import type { AlertingConfig } from '@openrouter/config';
import type { AlertingMetrics, Logger } from '@openrouter/observability';
import { DeliveryError, type AlertNotification, type NotificationChannel } from '../channels/notification';
import type { HandedOverDelivery } from '../state/alerting-state.repository';

/**
 * How a delivery ended. `delivered`: the receiver took it. `refused`: the receiver answered a 4xx
 * that retrying cannot change (not retried). `given_up`: still failing after the last attempt.
 * `dropped`: pushed out of a full queue, or left unsent at shutdown (or after the lease was lost)
 * with nowhere to hand it over. `withdrawn`: a resolution with nothing left to say, every alert in
 * it having fired to this channel without reaching it. `handed_over`: left unsent at shutdown and
 * kept for the next active replica, which sends it.
 */
export type DeliveryOutcome = 'delivered' | 'refused' | 'given_up' | 'dropped' | 'withdrawn' | 'handed_over';

/** Keeps the deliveries left at shutdown for the next active replica (with Redis: `AlertingStateRepository.handOff`). */
export type HandOff = (deliveries: readonly HandedOverDelivery[]) => Promise<void>;

/** How long `close` keeps delivering (retries included) before it hands over or drops what is left. */
export const SHUTDOWN_GRACE_MS = 5_000;

/** Told once of every delivery's outcome, so the sender can tell which alerts a receiver has seen. */
export type DeliveryListener = (channel: NotificationChannel, notification: AlertNotification, outcome: DeliveryOutcome) => void;

interface Delivery {
  channel: NotificationChannel;
  notification: AlertNotification;
  /** Deliveries of one rule to one channel, kept in order. */
  lane: string;
  attempts: number;
  sending: boolean;
  /** Set aside at shutdown or on losing the lease (it would have been given up, or may not be sent): waits to be handed over. */
  parked: boolean;
  /** Its outcome has been told (a send still running at shutdown is told `dropped`, and nothing after). */
  settled: boolean;
  /** Pushed out of a full queue: dropped for good, not left for another replica. */
  pushedOut?: boolean;
  onFinished?: () => void;
  timer?: NodeJS.Timeout;
}

/**
 * Delivers notifications off the caller's path: `enqueue` returns at once; each delivery is tried,
 * and retried with exponential backoff and jitter up to `maxAttempts`, unless the receiver refuses
 * it for good (a 4xx other than 408 and 429). Notifications of one rule to one channel go out in
 * the order they were made — a resolution never overtakes the firing it resolves while that one
 * waits for a retry, and is not sent at all for an alert whose firing this channel never got — and
 * independently of every other rule and channel, so a dead receiver never holds up the consumer or
 * another channel. Bounded: past `queueLimit` the oldest delivery not being sent is dropped (and
 * counted). Every delivery's outcome is told to the listener, once.
 */
export class DeliveryQueue {
  /** Every delivery not yet done, oldest first. */
  private readonly queued = new Set<Delivery>();
  private readonly lanes = new Map<string, Delivery[]>();
  private readonly sending = new Map<Delivery, Promise<void>>();
  private listener: DeliveryListener = () => undefined;
  /** Shutting down: those queued are still tried until the grace ends. */
  private draining = false;
  private closed = false;
  /** Told when the queue may have nothing left it can do (see `idle`). */
  private onProgress: (() => void) | undefined;

  constructor(
    private readonly settings: AlertingConfig['delivery'],
    private readonly metrics: AlertingMetrics,
    private readonly logger: Logger,
    private readonly random: () => number = Math.random,
    /** Asked right before each send: false on a replica that no longer holds the lease (the delivery is set aside to hand over). */
    private readonly mayNotify: () => boolean = () => true,
    /** Where what is left undelivered at shutdown goes; without it, it is dropped. */
    private readonly handOff?: HandOff,
  ) {}

  get pending(): number {
    return this.queued.size;
  }

  /** How many more deliveries it takes before a full queue pushes out its oldest. */
  get room(): number {
    return Math.max(0, this.settings.queueLimit - this.queued.size);
  }

  /** Where outcomes go (one listener: the alerting service). */
  listen(listener: DeliveryListener): void {
    this.listener = listener;
  }

  /**
   * `onFinished` is called once no replica needs to send this delivery any more: delivered,
   * refused, given up, withdrawn, pushed out of a full queue, or handed over. Not when it is
   * dropped at shutdown (with nowhere to hand it over): the next active replica may still send it
   * (how a handed-over delivery taken from Redis stays there until it has an outcome).
   */
  enqueue(channel: NotificationChannel, notification: AlertNotification, onFinished?: () => void): void {
    const delivery: Delivery = { channel, notification, lane: `${channel.id}\u0000${notification.ruleId}`, attempts: 0, sending: false, parked: false, settled: false, ...(onFinished ? { onFinished } : {}) };
    if (this.closed) {
      this.settle(delivery, 'dropped');
      return;
    }
    if (this.queued.size >= this.settings.queueLimit) {
      const oldest = [...this.queued].find((d) => !d.sending);
      if (oldest) {
        oldest.pushedOut = true;
        this.metrics.dropped.inc({ channel: oldest.channel.id });
        this.logger.error({ channel: oldest.channel.id, notification: oldest.notification.id, rule: oldest.notification.ruleId, status: oldest.notification.status }, 'alert delivery queue full: oldest notification dropped');
        this.done(oldest, 'dropped');
      }
    }
    this.queued.add(delivery);
    const lane = this.lanes.get(delivery.lane) ?? [];
    lane.push(delivery);
    this.lanes.set(delivery.lane, lane);
    this.metrics.pending.set(this.pending);
    if (lane.length === 1) this.attempt(delivery);
  }

  /**
   * Delivers what is queued, retries included, for up to `graceMs`; then waits (bounded by the
   * delivery timeout) for the sends in progress. What is left is handed over to the next active
   * replica, in order (told `handed_over`), or, without anywhere to hand it or when that fails,
   * told `dropped`, so its alerts count as not notified. During the grace a delivery that would be
   * given up is kept to be handed over instead; one the replica may no longer send (its lease has
   * run out, before the shutdown or during it) has been waiting for that since.
   */
  async close(graceMs = SHUTDOWN_GRACE_MS): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    await this.waitUntil(() => this.idle(), graceMs);
    this.closed = true;
    for (const d of this.queued) clearTimeout(d.timer);
    await this.waitUntil(() => this.sending.size === 0, this.settings.timeoutMs + 1_000);
    // A send still under way past its timeout is not handed over: it may yet arrive.
    const left = [...this.queued].filter((d) => !d.sending);
    if (left.length > 0) await this.handOver(left);
    for (const d of [...this.queued]) this.done(d, 'dropped');
    this.metrics.pending.set(0);
  }

  /** Nothing left that can progress: no send under way, no retry waiting (what is left is parked, or behind a parked delivery). */
  private idle(): boolean {
    for (const d of this.queued) if (d.sending || d.timer) return false;
    return true;
  }

  private async waitUntil(condition: () => boolean, timeoutMs: number): Promise<void> {
    if (condition()) return;
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
      this.onProgress = () => {
        if (condition()) resolve();
      };
    });
    clearTimeout(timer);
    this.onProgress = undefined;
  }

  private async handOver(left: Delivery[]): Promise<void> {
    if (!this.handOff) {
      this.logger.warn({ pending: left.length }, 'alert notifications left undelivered at shutdown');
      return;
    }
    try {
      await this.handOff(left.map((d) => ({ channel: d.channel.id, notification: d.notification })));
    } catch (error) {
      this.logger.error({ err: error, pending: left.length }, 'alert notifications left undelivered at shutdown could not be handed over: dropped');
      return;
    }
    this.logger.info({ pending: left.length }, 'alert notifications left undelivered at shutdown handed over to the next active replica');
    for (const d of left) {
      // Taken off without starting the next of its lane: all of them are handed over together.
      this.settle(d, 'handed_over');
      this.queued.delete(d);
    }
    this.lanes.clear();
  }

  private attempt(delivery: Delivery): void {
    delivery.timer = undefined;
    if (!this.mayNotify()) {
      // Another replica may be the active one by now: this one must not notify. A replica that has
      // lost its lease stops (the queue's close follows), and the delivery is handed over to the
      // next active one then: dropped, a resolution would be lost for good, since the history the
      // next one reads has the alert resolved.
      this.park(delivery);
      return;
    }
    delivery.attempts++;
    delivery.sending = true;
    const sent = this.send(delivery);
    this.sending.set(delivery, sent);
    void sent.finally(() => {
      this.sending.delete(delivery);
      this.onProgress?.();
    });
  }

  /** Takes a delivery off the queue (sent, refused, given up or dropped) and tells its outcome; the next of its lane starts. */
  private done(delivery: Delivery, outcome: DeliveryOutcome): void {
    clearTimeout(delivery.timer);
    this.settle(delivery, outcome);
    if (!this.queued.delete(delivery)) return;
    const lane = this.lanes.get(delivery.lane) ?? [];
    const wasHead = lane[0] === delivery;
    lane.splice(lane.indexOf(delivery), 1);
    if (outcome !== 'delivered') this.withdrawResolutions(lane, delivery);
    if (lane.length === 0) this.lanes.delete(delivery.lane);
    this.metrics.pending.set(this.pending);
    const next = lane[0];
    if (wasHead && next && !this.closed) this.attempt(next);
    this.onProgress?.();
  }

  /** Kept, unsent, to be handed over at the end of the shutdown grace (nothing starts it again). */
  private park(delivery: Delivery): void {
    delivery.parked = true;
    delivery.sending = false;
    delivery.timer = undefined;
    this.onProgress?.();
  }

  private settle(delivery: Delivery, outcome: DeliveryOutcome): void {
    if (delivery.settled) return;
    delivery.settled = true;
    this.listener(delivery.channel, delivery.notification, outcome);
    if (outcome !== 'dropped' || delivery.pushedOut) delivery.onFinished?.();
  }

  /**
   * A firing that did not reach the channel: the resolutions queued behind it in its lane leave out
   * its alerts (a receiver must never see an alert resolve that it never saw fire), and one left
   * with no alert is not sent.
   */
  private withdrawResolutions(lane: Delivery[], failed: Delivery): void {
    if (failed.notification.status !== 'firing') return;
    const episodes = new Set(failed.notification.alerts.map(episodeOf));
    for (const d of [...lane]) {
      // Behind the failed firing in its lane, so not started yet.
      if (d.notification.status !== 'resolved' || d.sending) continue;
      const alerts = d.notification.alerts.filter((a) => !episodes.has(episodeOf(a)));
      if (alerts.length === d.notification.alerts.length) continue;
      d.notification = { ...d.notification, alerts };
      if (alerts.length > 0) continue;
      // Taken out here, not through `done`: the caller starts the lane's next delivery.
      this.settle(d, 'withdrawn');
      this.queued.delete(d);
      lane.splice(lane.indexOf(d), 1);
    }
  }

  private async send(delivery: Delivery): Promise<void> {
    const { channel, notification } = delivery;
    try {
      await channel.send(notification, AbortSignal.timeout(this.settings.timeoutMs));
      delivery.sending = false;
      for (const a of notification.alerts) this.metrics.delivered(notification.ruleKind, channel.id, a.status);
      this.logger.info({ channel: channel.id, notification: notification.id, rule: notification.ruleId, status: notification.status, alerts: notification.alerts.length, attempts: delivery.attempts }, 'alert notification delivered');
      this.done(delivery, 'delivered');
    } catch (error) {
      delivery.sending = false;
      this.metrics.deliveryFailures.inc({ channel: channel.id });
      if (this.closed) this.park(delivery);
      else this.failed(delivery, error);
    }
  }

  /** After a failed attempt: gives up (a permanent refusal, or the last attempt) or schedules the next. */
  private failed(delivery: Delivery, error: unknown): void {
    const { channel, notification } = delivery;
    // Only the error's name, code and status: a message may carry the receiver's URL, and with it a token.
    const failure = failureOf(error);
    const where = { failure, channel: channel.id, notification: notification.id, rule: notification.ruleId, status: notification.status, attempts: delivery.attempts };
    if (error instanceof DeliveryError && error.permanent) {
      this.metrics.dropped.inc({ channel: channel.id });
      this.logger.error(where, 'alert notification refused by the receiver: not retried (the same request would be refused again)');
      this.done(delivery, 'refused');
      return;
    }
    if (delivery.attempts >= this.settings.maxAttempts && (this.draining || !this.mayNotify())) {
      // Shutting down, or the lease lost (the replica stops): the next active replica tries it again
      // (as a given-up notification is sent again at the next round).
      this.logger.warn(where, 'alert notification not delivered by its last attempt as the replica stops: kept to hand over');
      this.park(delivery);
      return;
    }
    if (delivery.attempts >= this.settings.maxAttempts) {
      this.metrics.dropped.inc({ channel: channel.id });
      this.logger.error(where, 'alert notification given up after the last retry');
      this.done(delivery, 'given_up');
      return;
    }
    const base = Math.min(this.settings.maxBackoffMs, this.settings.initialBackoffMs * 2 ** (delivery.attempts - 1));
    const delay = Math.round(base / 2 + (this.random() * base) / 2);
    this.logger.warn({ ...where, retryInMs: delay }, 'alert notification not delivered; retrying');
    delivery.timer = setTimeout(() => this.attempt(delivery), delay);
    delivery.timer.unref();
    this.onProgress?.();
  }
}

/** An alert's episode: its identity and when it started firing. */
function episodeOf(alert: AlertNotification['alerts'][number]): string {
  return `${alert.fingerprint}\u0000${alert.startedAt}`;
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
