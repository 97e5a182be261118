import { postJson, type AlertNotification, type NotificationChannel } from './notification';

const ICON = { firing: ':rotating_light:', resolved: ':white_check_mark:' } as const;

/** The Slack incoming-webhook payload (also understood by Mattermost, Rocket.Chat and others). */
export function slackPayload(n: AlertNotification): { text: string; blocks: unknown[] } {
  const head = `${ICON[n.status]} [${n.status.toUpperCase()}] ${n.ruleId} (${n.ruleKind}, ${n.severity}) — ${n.alerts.length} alert${n.alerts.length === 1 ? '' : 's'}`;
  const lines = n.alerts.slice(0, 20).map((a) => `• ${a.summary}`);
  if (n.alerts.length > 20) lines.push(`… and ${n.alerts.length - 20} more`);
  const text = [head, ...lines].join('\n');
  return {
    text,
    blocks: [
      { type: 'section', text: { type: 'mrkdwn', text: `*${head}*` } },
      { type: 'section', text: { type: 'mrkdwn', text: lines.join('\n') || '—' } },
    ],
  };
}

export class SlackChannel implements NotificationChannel {
  readonly kind = 'slack' as const;

  constructor(
    readonly id: string,
    private readonly url: string,
  ) {}

  async send(notification: AlertNotification, signal: AbortSignal): Promise<void> {
    await postJson(this.url, JSON.stringify(slackPayload(notification)), {}, signal);
  }
}
