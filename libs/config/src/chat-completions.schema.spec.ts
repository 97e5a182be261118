import { ConfigError, parseConfig } from './config-loader';
import { MINIMAL_CONFIG } from './minimal-config.testing';

/** The problems `parseConfig` reports for the minimal configuration with `chatCompletions` set so. */
function problems(chatCompletions: unknown): string[] {
  try {
    parseConfig({ ...MINIMAL_CONFIG, chatCompletions }, {});
    return [];
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
}

describe('chatCompletions', () => {
  it('default to keeping chat completions created with store true for 30 days, 10000 (256 MiB) in the process without Redis, 1000 read a page', () => {
    expect(parseConfig(MINIMAL_CONFIG, {}).chatCompletions).toEqual({ store: true, retentionDays: 30, memoryMaxCompletions: 10_000, memoryMaxBytes: 268_435_456, listScanLimit: 1_000 });
  });

  it('take their settings as values or as text from the environment', () => {
    const config = parseConfig({ ...MINIMAL_CONFIG, chatCompletions: { store: '${CHAT_STORE}', retentionDays: '${RETENTION}', listScanLimit: 5_000 } }, { CHAT_STORE: 'false', RETENTION: '7' });
    expect(config.chatCompletions).toMatchObject({ store: false, retentionDays: 7, listScanLimit: 5_000 });
  });

  it('refuse every bad value at once, naming each', () => {
    const found = problems({ store: 'maybe', retentionDays: 0, memoryMaxCompletions: -1, memoryMaxBytes: 1.5, listScanLimit: 10, keepForever: true });
    for (const key of ['store', 'retentionDays', 'memoryMaxCompletions', 'memoryMaxBytes', 'listScanLimit', 'keepForever']) expect(found.join('\n')).toContain(key);
  });
});
