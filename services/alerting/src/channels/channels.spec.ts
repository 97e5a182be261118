import { createServer } from 'node:http';
import { alertRuleSchema } from '@openrouter/config';
import type { AlertNotification } from './notification';
import { SECTION_TEXT_LIMIT, slackPayload, SlackChannel } from './slack.channel';
import { DELIVERY_HEADER, signPayload, SIGNATURE_HEADER, TIMESTAMP_HEADER, verifySignature, WebhookChannel } from './webhook.channel';

const T0 = Date.parse('2025-06-10T12:00:00Z');
const rule = alertRuleSchema.parse({ id: 'errors', kind: 'error_rate', severity: 'critical' });
const notification: AlertNotification = {
  id: 'n-1',
  status: 'firing',
  ruleId: 'errors',
  ruleKind: 'error_rate',
  severity: 'critical',
  sentAt: T0,
  alerts: [{ fingerprint: 'errors|provider=a', rule, status: 'firing', labels: { provider: 'a' }, value: 0.5, threshold: 0.2, summary: 'Provider a: error rate 50.0%', startedAt: T0, at: T0, notify: true }],
};

async function receive(handler: (status: { code: number }) => void = () => undefined) {
  const got: Array<{ headers: Record<string, string | string[] | undefined>; body: string }> = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      got.push({ headers: req.headers, body });
      const status = { code: 204 };
      handler(status);
      res.writeHead(status.code).end();
    });
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const address = server.address();
  const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/hook`;
  return { got, url, close: () => new Promise<void>((done) => server.close(() => done())) };
}

describe('webhook channel', () => {
  it('signs "<timestamp>.<body>" with HMAC-SHA256 and a receiver can verify it', async () => {
    const receiver = await receive();
    await new WebhookChannel('ops', receiver.url, 'top-secret', { 'x-team': 'sre' }, () => T0).send(notification, AbortSignal.timeout(2_000));
    await receiver.close();
    const [hit] = receiver.got;
    const headers = hit?.headers ?? {};
    expect(headers[TIMESTAMP_HEADER]).toBe(String(T0 / 1000));
    expect(headers[DELIVERY_HEADER]).toBe('n-1');
    expect(headers['x-team']).toBe('sre');
    expect(headers[SIGNATURE_HEADER]).toBe(signPayload('top-secret', String(T0 / 1000), hit?.body ?? ''));
    expect(verifySignature('top-secret', String(T0 / 1000), hit?.body ?? '', String(headers[SIGNATURE_HEADER]), 300, T0)).toBe(true);
    expect(verifySignature('top-secret', String(T0 / 1000), hit?.body ?? '', String(headers[SIGNATURE_HEADER]), 300, T0 + 301_000)).toBe(false);
    expect(JSON.parse(hit?.body ?? '{}')).toEqual({
      version: 1,
      id: 'n-1',
      status: 'firing',
      rule: { id: 'errors', kind: 'error_rate', severity: 'critical' },
      sent_at: '2025-06-10T12:00:00.000Z',
      alerts: [{ id: 'errors|provider=a', status: 'firing', labels: { provider: 'a' }, value: 0.5, threshold: 0.2, summary: 'Provider a: error rate 50.0%', started_at: '2025-06-10T12:00:00.000Z' }],
    });
  });

  it('sends unsigned without a secret, and fails on a non-2xx answer', async () => {
    const receiver = await receive((s) => (s.code = 502));
    await expect(new WebhookChannel('ops', receiver.url, '').send(notification, AbortSignal.timeout(2_000))).rejects.toThrow('502');
    await receiver.close();
    expect(receiver.got[0]?.headers[SIGNATURE_HEADER]).toBeUndefined();
  });
});

describe('a receiver that answers with a redirect', () => {
  it('is not followed: fetch would post nothing (a GET instead) and send the channel\'s headers to the other host', async () => {
    const other = await receive();
    const redirecting = createServer((req, res) => void req.resume().on('end', () => res.writeHead(301, { location: other.url.replace('127.0.0.1', 'localhost') }).end()));
    await new Promise<void>((done) => redirecting.listen(0, '127.0.0.1', done));
    const address = redirecting.address();
    const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/hook`;
    try {
      const webhook = new WebhookChannel('ops', url, '', { 'x-api-key': 'receiver-token' });
      await expect(webhook.send(notification, AbortSignal.timeout(2_000))).rejects.toMatchObject({ status: 301 });
      await expect(new SlackChannel('chat', url).send(notification, AbortSignal.timeout(2_000))).rejects.toMatchObject({ status: 301 });
      expect(other.got).toEqual([]);
    } finally {
      redirecting.closeAllConnections();
      await new Promise<void>((done) => redirecting.close(() => done()));
      await other.close();
    }
  });
});

describe('Slack channel', () => {
  it('posts the Slack webhook payload: text with the status, rule and each alert', async () => {
    const receiver = await receive();
    await new SlackChannel('chat', receiver.url).send(notification, AbortSignal.timeout(2_000));
    await receiver.close();
    const body = JSON.parse(receiver.got[0]?.body ?? '{}') as { text: string; blocks: unknown[] };
    expect(body.text).toBe(':rotating_light: [FIRING] errors (error_rate, critical) — 1 alert\n• Provider a: error rate 50.0%');
    expect(body.blocks).toHaveLength(2);
    expect(slackPayload({ ...notification, status: 'resolved' }).text).toMatch(/^:white_check_mark: \[RESOLVED\]/);
  });

  /** A notification of `count` alerts whose summaries are `length` characters long. */
  const many = (count: number, length: number): AlertNotification => {
    const [alert] = notification.alerts;
    if (!alert) throw new Error('the fixture has an alert');
    return { ...notification, alerts: Array.from({ length: count }, (_, i) => ({ ...alert, fingerprint: `errors|provider=p${i}`, summary: `${String(i).padStart(3, '0')} ${'x'.repeat(length - 4)}` })) };
  };
  const sections = (n: AlertNotification): string[] => (slackPayload(n).blocks as Array<{ text: { text: string } }>).map((b) => b.text.text);

  it("keeps each section under Slack's 3,000-character limit, cutting whole lines and counting the rest", () => {
    // Twenty alerts of 200 characters: some 4,000 characters, which Slack refuses (400 invalid_blocks).
    const [head, list] = sections(many(20, 200));
    expect(head?.length).toBeLessThan(SECTION_TEXT_LIMIT);
    expect(list?.length).toBeLessThanOrEqual(SECTION_TEXT_LIMIT);
    const lines = list?.split('\n') ?? [];
    const listed = lines.slice(0, -1);
    // Whole lines, in order, then the count of those left out.
    expect(listed.every((l, i) => l === `• ${String(i).padStart(3, '0')} ${'x'.repeat(196)}`)).toBe(true);
    expect(listed.length).toBe(14);
    expect(lines.at(-1)).toBe('… and 6 more');
    expect(slackPayload(many(20, 200)).text.length).toBeLessThan(2 * SECTION_TEXT_LIMIT);
  });

  it("escapes Slack's control characters, so a summary can neither ping a channel nor make a link, and cuts no entity in half", () => {
    const [alert] = notification.alerts;
    if (!alert) throw new Error('the fixture has an alert');
    const payload = slackPayload({ ...notification, alerts: [{ ...alert, summary: 'spent <!channel> & <https://evil.example|x>' }] });
    expect(payload.text).toContain('spent &lt;!channel&gt; &amp; &lt;https://evil.example|x&gt;');
    expect(payload.text).not.toMatch(/<|>/);
    const [, list] = sections({ ...notification, alerts: [{ ...alert, summary: '&'.repeat(5_000) }] });
    expect(list?.length).toBeLessThanOrEqual(SECTION_TEXT_LIMIT);
    expect(list).toMatch(/^• (&amp;)+…$/);
  });

  it('lists at most twenty alerts, and cuts a single summary longer than a section', () => {
    const lines = sections(many(45, 20))[1]?.split('\n') ?? [];
    expect(lines).toHaveLength(21);
    expect(lines[20]).toBe('… and 25 more');
    const [, huge] = sections(many(2, 10_000));
    expect(huge?.length).toBeLessThanOrEqual(SECTION_TEXT_LIMIT);
    expect(huge?.split('\n').map((l) => l.slice(-12))).toEqual([expect.stringMatching(/x…$/), '… and 1 more']);
  });
});
