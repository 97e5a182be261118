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
});
