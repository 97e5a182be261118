import { postJson, type AlertNotification, type NotificationChannel } from './notification';

const ICON = { firing: ':rotating_light:', resolved: ':white_check_mark:' } as const;

/** Alerts listed in one message at most; the rest are counted ("… and N more"). */
const MAX_LISTED = 20;

/**
 * Characters a section's text may have. Slack refuses a section text over 3,000 characters with
 * 400 `invalid_blocks` (the whole message, for good); this leaves room for its own escaping.
 */
export const SECTION_TEXT_LIMIT = 2_900;

/**
 * Text as Slack reads it literally: `&`, `<` and `>` are its control characters (`<!channel>`
 * would notify a whole channel, `<url|text>` makes a link), so they go as the entities Slack asks for.
 */
export function slackEscape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** The Slack incoming-webhook payload (also understood by Mattermost, Rocket.Chat and others). */
export function slackPayload(n: AlertNotification): { text: string; blocks: unknown[] } {
  const head = clip(slackEscape(`${ICON[n.status]} [${n.status.toUpperCase()}] ${n.ruleId} (${n.ruleKind}, ${n.severity}) — ${n.alerts.length} alert${n.alerts.length === 1 ? '' : 's'}`), SECTION_TEXT_LIMIT - 2);
  const list = listedAlerts(
    n.alerts.map((a) => `• ${slackEscape(a.summary)}`),
    SECTION_TEXT_LIMIT,
  );
  const text = [head, list].filter((part) => part !== '').join('\n');
  return {
    text,
    blocks: [
      { type: 'section', text: { type: 'mrkdwn', text: `*${head}*` } },
      { type: 'section', text: { type: 'mrkdwn', text: list || '—' } },
    ],
  };
}

/**
 * Up to `MAX_LISTED` lines, whole ones, and as many as fit in `limit` characters with the line
 * that counts the rest ("… and N more"). A single line longer than a section is cut short, so the
 * first always fits.
 */
export function listedAlerts(lines: readonly string[], limit: number): string {
  const kept: string[] = [];
  let used = 0;
  for (const [i, whole] of lines.entries()) {
    const line = clip(whole, limit - 40);
    const after = lines.length - i - 1;
    const cost = (kept.length > 0 ? 1 : 0) + line.length;
    const tail = after > 0 ? `\n${more(after)}`.length : 0;
    if (kept.length === MAX_LISTED || used + cost + tail > limit) {
      // The previous line was kept only if this count still fitted after it.
      kept.push(more(lines.length - i));
      break;
    }
    kept.push(line);
    used += cost;
  }
  return kept.join('\n');
}

function more(count: number): string {
  return `… and ${count} more`;
}

/**
 * `text` cut to `max` characters, marked with an ellipsis when cut (never between the halves of a
 * surrogate pair, nor inside an entity `slackEscape` wrote).
 */
function clip(text: string, max: number): string {
  if (text.length <= max) return text;
  const end = /[\uD800-\uDBFF]/.test(text.charAt(max - 2)) ? max - 2 : max - 1;
  return `${text.slice(0, end).replace(/&[a-z]{0,3}$/, '')}…`;
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
