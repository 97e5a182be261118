import { alertingSchema, tracingSchema } from './observability.schema';

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

  it('refuses an error_rate or latency_p95 window of more than 5000 buckets, saying what to change', () => {
    // A day at 1 s buckets: 86 400 buckets, some 22 MB a provider or deployment.
    expect(problems({ bucketMs: 1_000, rules: [{ id: 'errors', kind: 'error_rate', windowMs: 86_400_000 }] })).toEqual([
      'rules.0.windowMs: with bucketMs 1000, keeps 86400 buckets of calls per provider and deployment (windowMs / bucketMs); at most 5000: use a shorter windowMs or a larger bucketMs',
    ]);
    expect(problems({ bucketMs: 1_000, rules: [{ id: 'latency', kind: 'latency_p95', windowMs: 5_001_000 }] })).toEqual([expect.stringMatching(/^rules\.0\.windowMs: .*keeps 5001 buckets/)]);
    // Exactly at the most, and a day at 20 s buckets (4 320).
    expect(problems({ bucketMs: 1_000, rules: [{ id: 'latency', kind: 'latency_p95', windowMs: 5_000_000 }] })).toEqual([]);
    expect(problems({ bucketMs: 20_000, rules: [{ id: 'errors', kind: 'error_rate', windowMs: 86_400_000 }] })).toEqual([]);
  });

  it('refuses a spend_anomaly rule that would keep more than 5000 buckets of spend per organisation, saying what to change', () => {
    // An hour against 96 before it, at 10 s buckets: 34 920 buckets, some 4.5 MB an organisation.
    expect(problems({ rules: [{ id: 'spend', kind: 'spend_anomaly', windowMs: 3_600_000, baselineWindows: 96 }] })).toEqual([
      'rules.0.baselineWindows: with windowMs 3600000 and bucketMs 10000, keeps 34920 buckets of spend per organisation (windowMs × (baselineWindows + 1) / bucketMs); at most 5000: use fewer baseline windows, a shorter windowMs or a larger bucketMs',
    ]);
    // The same rule at minute buckets (5 820), and a day against the week before it at 5 min buckets (2 304).
    expect(problems({ bucketMs: 60_000, rules: [{ id: 'spend', kind: 'spend_anomaly', windowMs: 3_600_000, baselineWindows: 96 }] })).toEqual([expect.stringMatching(/^rules\.0\.baselineWindows: .*keeps 5820 buckets/)]);
    expect(problems({ bucketMs: 300_000, rules: [{ id: 'spend', kind: 'spend_anomaly', windowMs: 86_400_000, baselineWindows: 7 }] })).toEqual([]);
    // Exactly at the most: 5 000 buckets.
    expect(problems({ bucketMs: 1_000, rules: [{ id: 'spend', kind: 'spend_anomaly', windowMs: 500_000, baselineWindows: 9 }] })).toEqual([]);
    expect(problems({ bucketMs: 1_000, rules: [{ id: 'spend', kind: 'spend_anomaly', windowMs: 500_000, baselineWindows: 10 }] })).toEqual([expect.stringMatching(/keeps 5500 buckets/)]);
  });

  it("refuses timer settings past what Node's timers hold (2^31 − 1 ms), and a delivery timeout over 10 min", () => {
    const tooLong = 2 ** 31;
    expect(problems({ evaluateIntervalMs: tooLong, routerPollMs: tooLong, delivery: { initialBackoffMs: tooLong, maxBackoffMs: tooLong, timeoutMs: 600_001 } }).map((p) => p.split(':')[0])).toEqual([
      'evaluateIntervalMs',
      'routerPollMs',
      'delivery.timeoutMs',
      'delivery.initialBackoffMs',
      'delivery.maxBackoffMs',
    ]);
    expect(problems({ evaluateIntervalMs: tooLong - 1, routerPollMs: tooLong - 1, delivery: { initialBackoffMs: tooLong - 1, maxBackoffMs: tooLong - 1, timeoutMs: 600_000 } })).toEqual([]);
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

describe('tracing settings', () => {
  const tracing = (input: unknown): string[] => {
    const result = tracingSchema.safeParse(input);
    return result.success ? [] : result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  };

  it('refuse an OTLP endpoint that is not an http(s) URL, where every export would fail silently, without quoting it', () => {
    for (const otlpEndpoint of ['otel-collector:4318/v1/traces', 'not a url', 'ftp://collector/v1/traces']) {
      expect(tracing({ enabled: true, otlpEndpoint })).toEqual(['otlpEndpoint: must be an http:// or https:// URL']);
    }
    const found = tracing({ otlpEndpoint: 'https://tenant:s3cret@otlp.example.com/v1/traces' });
    expect(found).toEqual([expect.stringMatching(/^otlpEndpoint: must not contain credentials .*observability\.tracing\.headers/)]);
    expect(found.join()).not.toContain('s3cret');
    expect(tracing({ enabled: true, otlpEndpoint: 'http://otel-collector:4318/v1/traces' })).toEqual([]);
    expect(tracing({ enabled: true, otlpEndpoint: '' })).toEqual([]);
  });

  it("refuse exporter headers Node's HTTP client would refuse on every export, naming the header but never its value", () => {
    const found = tracing({ headers: { 'x team': 'a', authorization: 'Bearer s3cret\r\n' } });
    expect(found).toEqual([
      "headers.x team: is not a valid header name (letters, digits and !#$%&'*+-.^_`|~ only; no spaces or colons)",
      'headers.authorization: header value must not contain a line break (CR, LF) or NUL',
    ]);
    expect(found.join()).not.toContain('s3cret');
    expect(tracing({ headers: { authorization: 'Bearer abc', 'x-honeycomb-team': 'k' } })).toEqual([]);
  });
});
