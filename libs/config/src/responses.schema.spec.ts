import { ConfigError, parseConfig } from './config-loader';
import { MINIMAL_CONFIG } from './minimal-config.testing';

/** The problems `parseConfig` reports for the minimal configuration with `responses` set so. */
function problems(responses: unknown, env: Record<string, string> = {}): string[] {
  try {
    parseConfig({ ...MINIMAL_CONFIG, responses }, env);
    return [];
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
}

describe('responses', () => {
  it('default to keeping responses 30 days, 10000 (256 MiB) in the process without Redis, 1000 to a conversation', () => {
    expect(parseConfig(MINIMAL_CONFIG, {}).responses).toEqual({
      store: true,
      retentionDays: 30,
      memoryMaxResponses: 10_000,
      memoryMaxBytes: 268_435_456,
      maxConversationResponses: 1_000,
      maxConversationItems: 10_000,
      maxConversationBytes: 50_331_648,
      background: { enabled: true, concurrency: 8, maxAttempts: 5, leaseMs: 30_000, pollMs: 500, maxPending: 10_000, streamRetentionHours: 24 },
    });
  });

  it('take their settings as values or as text from the environment', () => {
    const env = { RESPONSES_STORE: 'no', RETENTION: '7', MEMORY_MAX: '500', CONVERSATION_MAX: '10000' };
    const config = parseConfig({ ...MINIMAL_CONFIG, responses: { store: '${RESPONSES_STORE}', retentionDays: '${RETENTION}', memoryMaxResponses: '${MEMORY_MAX}', maxConversationResponses: '${CONVERSATION_MAX}' } }, env);
    expect(config.responses).toEqual({
      store: false,
      retentionDays: 7,
      memoryMaxResponses: 500,
      memoryMaxBytes: 268_435_456,
      maxConversationResponses: 10_000,
      maxConversationItems: 10_000,
      maxConversationBytes: 50_331_648,
      background: { enabled: true, concurrency: 8, maxAttempts: 5, leaseMs: 30_000, pollMs: 500, maxPending: 10_000, streamRetentionHours: 24 },
    });
    expect(problems({ store: false, retentionDays: 3_650, memoryMaxResponses: 1, maxConversationResponses: 1 })).toEqual([]);
  });

  it('take the background settings, refusing those out of range by their path', () => {
    const env = { CONCURRENCY: '2', POLL: '50' };
    const config = parseConfig({ ...MINIMAL_CONFIG, responses: { background: { concurrency: '${CONCURRENCY}', pollMs: '${POLL}' }, maxConversationItems: 50 } }, env);
    expect(config.responses.background).toEqual({ enabled: true, concurrency: 2, maxAttempts: 5, leaseMs: 30_000, pollMs: 50, maxPending: 10_000, streamRetentionHours: 24 });
    expect(config.responses.maxConversationItems).toBe(50);
    expect(problems({ background: { concurrency: 0, leaseMs: 999, pollMs: 49, maxPending: 0, streamRetentionHours: 721, enabled: 'maybe', extra: 1 }, maxConversationItems: 0 })).toEqual([
      expect.stringMatching(/^responses\.maxConversationItems: /),
      expect.stringMatching(/^responses\.background\.enabled: /),
      expect.stringMatching(/^responses\.background\.concurrency: /),
      expect.stringMatching(/^responses\.background\.leaseMs: /),
      expect.stringMatching(/^responses\.background\.pollMs: /),
      expect.stringMatching(/^responses\.background\.maxPending: /),
      expect.stringMatching(/^responses\.background\.streamRetentionHours: /),
      expect.stringMatching(/^responses\.background: unknown key "extra"/),
    ]);
  });

  it('refuse every value out of its range at once, and keys they do not know', () => {
    const found = problems({ store: 'maybe', retentionDays: 0, memoryMaxResponses: 0, maxConversationResponses: 10_001, retention: 30 });
    expect(found).toEqual([
      expect.stringMatching(/^responses\.store: expected true or false/),
      expect.stringMatching(/^responses\.retentionDays: .*>0/),
      expect.stringMatching(/^responses\.memoryMaxResponses: .*>0/),
      expect.stringMatching(/^responses\.maxConversationResponses: .*<=10000/),
      expect.stringMatching(/^responses: unknown key "retention"/),
    ]);
    expect(problems({ retentionDays: 3_651 })).toEqual([expect.stringMatching(/^responses\.retentionDays: /)]);
    expect(problems({ retentionDays: 1.5 })).toEqual([expect.stringMatching(/^responses\.retentionDays: /)]);
    expect(problems({ memoryMaxResponses: -1 })).toEqual([expect.stringMatching(/^responses\.memoryMaxResponses: /)]);
    expect(problems({ maxConversationResponses: 0 })).toEqual([expect.stringMatching(/^responses\.maxConversationResponses: /)]);
  });
});
