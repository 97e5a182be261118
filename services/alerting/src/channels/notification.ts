import type { AlertTransition } from '../rules/alert-tracker';

/** One message to a channel: the alerts of one rule that changed to one status in one round. */
export interface AlertNotification {
  /** Same on every retry, so a receiver can drop a repeat. */
  id: string;
  status: 'firing' | 'resolved';
  ruleId: string;
  ruleKind: string;
  severity: string;
  alerts: AlertTransition[];
  sentAt: number;
}

/** A place notifications go; `send` rejects when the receiver did not take it (retried, unless a `DeliveryError` says the refusal is permanent). */
export interface NotificationChannel {
  readonly id: string;
  readonly kind: 'webhook' | 'slack';
  send(notification: AlertNotification, signal: AbortSignal): Promise<void>;
}

/** The notification as generic JSON (the webhook body). */
export function notificationBody(n: AlertNotification): Record<string, unknown> {
  return {
    version: 1,
    id: n.id,
    status: n.status,
    rule: { id: n.ruleId, kind: n.ruleKind, severity: n.severity },
    sent_at: new Date(n.sentAt).toISOString(),
    alerts: n.alerts.map((a) => ({
      id: a.fingerprint,
      status: a.status,
      labels: a.labels,
      value: a.value,
      threshold: a.threshold,
      summary: a.summary,
      started_at: new Date(a.startedAt).toISOString(),
      ...(a.status === 'resolved' ? { resolved_at: new Date(a.at).toISOString() } : {}),
    })),
  };
}

export class DeliveryError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'DeliveryError';
  }

  /**
   * The receiver refused this notification for good: a 4xx answer other than 408 (timeout) and
   * 429 (rate limited) says the request itself is wrong (a payload Slack calls `invalid_blocks`, a
   * revoked hook), and sending the same bytes again gets the same answer.
   */
  get permanent(): boolean {
    return this.status !== undefined && this.status >= 400 && this.status < 500 && this.status !== 408 && this.status !== 429;
  }
}

/**
 * POSTs a JSON body; anything but a 2xx is a failure, a redirect too: fetch would follow a 301 or
 * 302 with a GET (the notification never posted, yet a 2xx at the end), and send the channel's
 * headers, credentials included, to the other host. The response body is never read into logs.
 */
export async function postJson(url: string, body: string, headers: Record<string, string>, signal: AbortSignal): Promise<void> {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body, signal, redirect: 'manual' });
  await response.body?.cancel().catch(() => undefined);
  if (response.status < 200 || response.status >= 300) throw new DeliveryError(`the receiver answered ${response.status}`, response.status);
}
