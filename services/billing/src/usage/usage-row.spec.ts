import { usagev1 } from '@openrouter/contracts';
import { emptyUsageEvent } from '@openrouter/usage';
import { ClickHouseTimeFormat, toUsageRowValues, USAGE_EVENT_COLUMNS } from './usage-row';

/** The reference: what the consumer wrote before the table-driven formatter. */
const isoTime = (ms: number): string => new Date(ms).toISOString().replace('T', ' ').replace('Z', '');

describe('usage rows', () => {
  it('formats times exactly as ClickHouse DateTime64(3) text, across days, years and the epoch', () => {
    const time = new ClickHouseTimeFormat();
    const samples = [0, 1, 999, 1_000, 59_999, 86_399_999, 86_400_000, Date.UTC(2024, 1, 29, 23, 59, 59, 999), Date.UTC(2025, 2, 1, 12, 0, 0, 5), Date.UTC(2299, 11, 31, 23, 59, 59, 999)];
    for (let ms = Date.UTC(2025, 0, 1); ms < Date.UTC(2025, 0, 3); ms += 997_313) samples.push(ms);
    for (const ms of samples) expect(time.format(ms)).toBe(isoTime(ms));
    // Out of order after a day change: the cached day is replaced, never reused wrongly.
    expect(time.format(Date.UTC(2025, 0, 1, 0, 0, 0, 1))).toBe('2025-01-01 00:00:00.001');
    expect(time.format(Date.UTC(2030, 5, 15, 8, 9, 10, 11))).toBe('2030-06-15 08:09:10.011');
  });

  it('gives one value per column, money as the exact decimal text', () => {
    const event = emptyUsageEvent('evt-1', Date.UTC(2025, 2, 1, 12));
    event.firstTokenAtMs = 0;
    event.tenant = { orgId: 'acme', projectId: 'p', teamId: 't', appId: 'a', costCenter: 'cc', keyId: 'k', endUser: 'u\t"\\\n', tags: { env: "it's" } };
    event.attempts = [{ provider: 'openai', deployment: 'd#0', status: usagev1.AttemptStatus.ATTEMPT_STATUS_ERROR, errorKind: 'rate_limited', latencyMs: 12 }];
    event.cost = { amount: '12345678901234567890.123456789012345678', currency: 'USD', priceVersion: 'v' };
    event.status = usagev1.Status.STATUS_OK;
    event.requestId = 'trace-1';
    const values = toUsageRowValues(event);
    expect(values).toHaveLength(USAGE_EVENT_COLUMNS.length);
    const row = Object.fromEntries(USAGE_EVENT_COLUMNS.map((column, i) => [column, values[i]]));
    expect(row).toEqual(
      expect.objectContaining({
        event_id: 'evt-1',
        received_at: '2025-03-01 12:00:00.000',
        first_token_at: null,
        end_user: 'u\t"\\\n',
        tags: { env: "it's" },
        'attempts.status': ['error'],
        'attempts.latency_ms': [12],
        cost: '12345678901234567890.123456789012345678',
        status: 'ok',
        request_id: 'trace-1',
        cache_hit: false,
        cache_saved_cost: '0',
      }),
    );
  });

  it('writes a cache hit with what its answer cost when first served', () => {
    const event = emptyUsageEvent('evt-2', Date.UTC(2025, 2, 1, 12));
    event.cacheHit = true;
    event.cacheSavedCost = '0.000123456789012345';
    const values = toUsageRowValues(event);
    const row = Object.fromEntries(USAGE_EVENT_COLUMNS.map((column, i) => [column, values[i]]));
    expect(row).toEqual(expect.objectContaining({ cost: '0', cache_hit: true, cache_saved_cost: '0.000123456789012345' }));
  });

  it('writes the audio operations with their length and characters', () => {
    const row = (operation: usagev1.Operation, audioMs: number, characters: number) => {
      const event = emptyUsageEvent('evt-3', Date.UTC(2025, 2, 1, 12));
      Object.assign(event, { operation, audioMs, characters });
      const values = toUsageRowValues(event);
      return Object.fromEntries(USAGE_EVENT_COLUMNS.map((column, i) => [column, values[i]]));
    };
    expect(row(usagev1.Operation.OPERATION_TRANSCRIPTION, 9_450, 0)).toEqual(expect.objectContaining({ operation: 'transcription', audio_ms: 9_450, characters: 0 }));
    expect(row(usagev1.Operation.OPERATION_TRANSLATION, 1_000, 0)).toEqual(expect.objectContaining({ operation: 'translation', audio_ms: 1_000 }));
    expect(row(usagev1.Operation.OPERATION_SPEECH, 0, 42)).toEqual(expect.objectContaining({ operation: 'speech', audio_ms: 0, characters: 42, image_prompt_tokens: 0 }));
    const edit = emptyUsageEvent('evt-4', Date.UTC(2025, 2, 1, 12));
    Object.assign(edit, { operation: usagev1.Operation.OPERATION_IMAGE, imagePromptTokens: 1_323 });
    const values = toUsageRowValues(edit);
    expect(values[USAGE_EVENT_COLUMNS.indexOf('image_prompt_tokens')]).toBe(1_323);
  });
});
