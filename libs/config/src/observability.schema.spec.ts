import { alertingSchema } from './observability.schema';

const problems = (input: unknown): string[] => {
  const result = alertingSchema.safeParse(input);
  return result.success ? [] : result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
};

describe('alerting settings', () => {
  it('refuses a receiver URL that carries credentials, naming where they go instead', () => {
    const found = problems({
      channels: [
        { id: 'ops', kind: 'webhook', url: 'https://user:s3cret-token@hooks.example.com/alerts' },
        { id: 'chat', kind: 'slack', url: 'https://token@hooks.slack.example.com/x' },
      ],
    });
    expect(found).toEqual([expect.stringMatching(/^channels\.0\.url: must not contain credentials.*headers/), expect.stringMatching(/^channels\.1\.url: must not contain credentials/)]);
    expect(found.join('\n')).not.toContain('s3cret-token');
    expect(problems({ channels: [{ id: 'ops', kind: 'webhook', url: 'https://hooks.example.com/alerts', headers: { authorization: 'Basic dXNlcjp0b2tlbg==' } }] })).toEqual([]);
  });

  it('refuses a receiver URL that is not http or https, which fetch could never post to', () => {
    const found = problems({
      channels: [
        { id: 'local', kind: 'webhook', url: 'file:///etc/alerts' },
        { id: 'old', kind: 'webhook', url: 'ftp://files.example.com/alerts' },
        { id: 'chat', kind: 'slack', url: 'javascript:alert(1)' },
        { id: 'typo', kind: 'slack', url: 'hooks.slack.com/services/x' },
      ],
    });
    expect(found).toEqual([
      'channels.0.url: must be an http:// or https:// URL',
      'channels.1.url: must be an http:// or https:// URL',
      'channels.2.url: must be an http:// or https:// URL',
      'channels.3.url: must be an http:// or https:// URL',
    ]);
    expect(problems({ channels: [{ id: 'ops', kind: 'webhook', url: 'http://alerts.internal:8080/hook' }, { id: 'chat', kind: 'slack', url: 'https://hooks.slack.com/services/T/B/x' }] })).toEqual([]);
  });

  it('refuses receiver headers fetch would refuse on every delivery, naming the header but never its value', () => {
    const found = problems({
      channels: [
        {
          id: 'ops',
          kind: 'webhook',
          url: 'https://hooks.example.com/alerts',
          headers: { 'x team': 'sre', 'x-token:': 'a', '': 'b', 'x-auth': 'Bearer s3cret\r\nx-evil: 1', 'x-nul': 'a\u0000b', 'x-lf': 'line\nbreak' },
        },
      ],
    });
    expect(found).toEqual([
      'channels.0.headers.x team: is not a valid header name (letters, digits and !#$%&\'*+-.^_`|~ only; no spaces or colons)',
      'channels.0.headers.x-token:: is not a valid header name (letters, digits and !#$%&\'*+-.^_`|~ only; no spaces or colons)',
      'channels.0.headers.: is not a valid header name (letters, digits and !#$%&\'*+-.^_`|~ only; no spaces or colons)',
      'channels.0.headers.x-auth: header value must not contain a line break (CR, LF) or NUL',
      'channels.0.headers.x-nul: header value must not contain a line break (CR, LF) or NUL',
      'channels.0.headers.x-lf: header value must not contain a line break (CR, LF) or NUL',
    ]);
    expect(found.join('\n')).not.toContain('s3cret');
    const fine = { authorization: 'Basic dXNlcjp0b2tlbg==', 'X-Team_Name.v2': 'sre, on-call', "x-odd!#$%&'*+^`|~": 'tab\tinside is allowed' };
    expect(problems({ channels: [{ id: 'ops', kind: 'webhook', url: 'https://hooks.example.com/alerts', headers: fine }] })).toEqual([]);
  });

  it('refuses a delivery backoff whose most is below its first', () => {
    expect(problems({ delivery: { initialBackoffMs: 10_000, maxBackoffMs: 5_000 } })).toEqual(['delivery.maxBackoffMs: must be at least delivery.initialBackoffMs (10000)']);
    expect(problems({ delivery: { initialBackoffMs: 5_000, maxBackoffMs: 5_000 } })).toEqual([]);
  });

  it('refuses two channels with one id: notifications by id would reach only one of them', () => {
    expect(
      problems({
        channels: [
          { id: 'ops', kind: 'webhook', url: 'https://hooks.example.com/alerts' },
          { id: 'ops', kind: 'slack', url: 'https://hooks.slack.example.com/x' },
        ],
      }),
    ).toEqual(['channels.1.id: duplicate channel id "ops"']);
  });

  it('requires every rule window to be a whole number of buckets', () => {
    expect(
      problems({
        bucketMs: 60_000,
        rules: [
          { id: 'errors', kind: 'error_rate', windowMs: 30_000 },
          { id: 'latency', kind: 'latency_p95', windowMs: 90_000 },
          { id: 'spend', kind: 'spend_anomaly', windowMs: 120_000 },
          { id: 'circuits', kind: 'circuit_open' },
        ],
      }),
    ).toEqual(['rules.0.windowMs: must be a multiple of bucketMs (60000)', 'rules.1.windowMs: must be a multiple of bucketMs (60000)']);
    expect(problems({ rules: [{ id: 'errors', kind: 'error_rate' }, { id: 'latency', kind: 'latency_p95' }, { id: 'spend', kind: 'spend_anomaly' }] })).toEqual([]);
  });

  it('lets a budget_threshold rule take spend crossings, forecasts or both (the default)', () => {
    const parsed = alertingSchema.parse({
      rules: [
        { id: 'budget', kind: 'budget_threshold' },
        { id: 'spend-page', kind: 'budget_threshold', kinds: ['spent'] },
        { id: 'forecast-finance', kind: 'budget_threshold', kinds: ['forecast'] },
      ],
    });
    expect(parsed.rules.map((r) => (r.kind === 'budget_threshold' ? r.kinds : undefined))).toEqual([['spent', 'forecast'], ['spent'], ['forecast']]);
  });

  it('refuses a budget_threshold rule with no kinds or a kind it does not know, naming the path', () => {
    expect(
      problems({
        rules: [
          { id: 'none', kind: 'budget_threshold', kinds: [] },
          { id: 'typo', kind: 'budget_threshold', kinds: ['spent', 'forecasts'] },
          { id: 'text', kind: 'budget_threshold', kinds: 'forecast' },
        ],
      }),
    ).toEqual([
      'rules.0.kinds: must name at least one kind (spent, forecast); leave it out for both',
      'rules.1.kinds.1: must be spent or forecast',
      expect.stringMatching(/^rules\.2\.kinds: /),
    ]);
    // Only budget_threshold rules have kinds.
    expect(problems({ rules: [{ id: 'errors', kind: 'error_rate', kinds: ['spent'] }] })).toEqual([expect.stringMatching(/^rules\.0: .*kinds/)]);
  });
});
