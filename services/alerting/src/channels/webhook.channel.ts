import { createHmac, timingSafeEqual } from 'node:crypto';
import { notificationBody, postJson, type AlertNotification, type NotificationChannel } from './notification';

export const SIGNATURE_HEADER = 'x-openrouter-signature';
export const TIMESTAMP_HEADER = 'x-openrouter-timestamp';
export const DELIVERY_HEADER = 'x-openrouter-delivery';

/** `v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`: the timestamp is signed so a replay can be refused. */
export function signPayload(secret: string, timestamp: string, body: string): string {
  return `v1=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/** What a receiver does: recompute the signature and compare in constant time; reject stale timestamps. */
export function verifySignature(secret: string, timestamp: string, body: string, signature: string, toleranceSeconds = 300, nowMs = Date.now()): boolean {
  const t = Number(timestamp);
  if (!Number.isInteger(t) || Math.abs(nowMs / 1000 - t) > toleranceSeconds) return false;
  const expected = Buffer.from(signPayload(secret, timestamp, body));
  const given = Buffer.from(signature);
  return expected.length === given.length && timingSafeEqual(expected, given);
}

/** A generic webhook: the notification as JSON, signed with HMAC-SHA256 when a secret is set. */
export class WebhookChannel implements NotificationChannel {
  readonly kind = 'webhook' as const;

  constructor(
    readonly id: string,
    private readonly url: string,
    private readonly secret: string,
    private readonly headers: Record<string, string> = {},
    private readonly clock: () => number = Date.now,
  ) {}

  async send(notification: AlertNotification, signal: AbortSignal): Promise<void> {
    const body = JSON.stringify(notificationBody(notification));
    const timestamp = String(Math.floor(this.clock() / 1000));
    const headers: Record<string, string> = { ...this.headers, [DELIVERY_HEADER]: notification.id, [TIMESTAMP_HEADER]: timestamp };
    if (this.secret) headers[SIGNATURE_HEADER] = signPayload(this.secret, timestamp, body);
    await postJson(this.url, body, headers, signal);
  }
}
