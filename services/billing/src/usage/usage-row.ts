import { usagev1 } from '@openrouter/contracts';

/**
 * The `usage_events` columns billing writes (see libs/usage migrations), in the order of
 * {@link toUsageRowValues}. `ingested_at` is left to its default.
 */
export const USAGE_EVENT_COLUMNS = [
  'event_id',
  'received_at',
  'first_token_at',
  'completed_at',
  'org_id',
  'project_id',
  'team_id',
  'app_id',
  'cost_center',
  'key_id',
  'end_user',
  'tags',
  'operation',
  'requested_model',
  'served_model',
  'provider',
  'deployment',
  'upstream_model',
  'task_type',
  'experiment',
  'experiment_arm',
  'attempts.provider',
  'attempts.deployment',
  'attempts.status',
  'attempts.error_kind',
  'attempts.latency_ms',
  'prompt_tokens',
  'completion_tokens',
  'cached_read_tokens',
  'cache_write_tokens',
  'reasoning_tokens',
  'tokens_estimated',
  'cost',
  'currency',
  'price_version',
  'latency_ms',
  'ttft_ms',
  'stream',
  'cancelled',
  'status',
  'error_kind',
  'http_status',
  'request_id',
  'cache_hit',
  'cache_saved_cost',
  'audio_ms',
  'characters',
  'image_prompt_tokens',
  'images',
] as const satisfies readonly [string, ...string[]];

export type UsageEventColumn = (typeof USAGE_EVENT_COLUMNS)[number];

/** One column value in `JSONCompactEachRow` form. */
export type UsageRowValue = string | number | boolean | null | string[] | number[] | Record<string, string>;

/**
 * A `usage_events` row as `JSONCompactEachRow` values, one per {@link USAGE_EVENT_COLUMNS} entry.
 * Positional rather than keyed: a keyed row is two and a half times the bytes, and the engine's
 * parse time follows the bytes. `cost` stays decimal text, which ClickHouse parses into
 * Decimal(38, 18) exactly.
 */
export type UsageRowValues = ValuePerColumn<typeof USAGE_EVENT_COLUMNS>;
type ValuePerColumn<T extends readonly string[]> = { readonly [K in keyof T]: UsageRowValue };

const STATUS: Record<usagev1.Status, string> = {
  [usagev1.Status.STATUS_UNSPECIFIED]: 'unspecified',
  [usagev1.Status.STATUS_OK]: 'ok',
  [usagev1.Status.STATUS_ERROR]: 'error',
  [usagev1.Status.STATUS_CANCELLED]: 'cancelled',
  [usagev1.Status.UNRECOGNIZED]: 'unspecified',
};

const OPERATION: Record<usagev1.Operation, string> = {
  [usagev1.Operation.OPERATION_UNSPECIFIED]: '',
  [usagev1.Operation.OPERATION_CHAT]: 'chat',
  [usagev1.Operation.OPERATION_COMPLETION]: 'completion',
  [usagev1.Operation.OPERATION_EMBEDDING]: 'embedding',
  [usagev1.Operation.OPERATION_MODERATION]: 'moderation',
  [usagev1.Operation.OPERATION_IMAGE]: 'image',
  [usagev1.Operation.OPERATION_TRANSCRIPTION]: 'transcription',
  [usagev1.Operation.OPERATION_TRANSLATION]: 'translation',
  [usagev1.Operation.OPERATION_SPEECH]: 'speech',
  [usagev1.Operation.UNRECOGNIZED]: '',
};

const ATTEMPT_STATUS: Record<usagev1.AttemptStatus, string> = {
  [usagev1.AttemptStatus.ATTEMPT_STATUS_UNSPECIFIED]: '',
  [usagev1.AttemptStatus.ATTEMPT_STATUS_OK]: 'ok',
  [usagev1.AttemptStatus.ATTEMPT_STATUS_ERROR]: 'error',
  [usagev1.AttemptStatus.ATTEMPT_STATUS_CANCELLED]: 'cancelled',
  [usagev1.AttemptStatus.UNRECOGNIZED]: '',
};

const DAY_MS = 86_400_000;
const TWO_DIGITS = Array.from({ length: 60 }, (_, i) => String(i).padStart(2, '0'));
const THREE_DIGITS = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, '0'));

/**
 * ClickHouse DateTime64(3, 'UTC') text (`2025-03-01 12:00:00.000`) for epoch milliseconds. The
 * events of a batch fall on a few days, so the date part is formatted once per day and the time
 * of day from tables: a `toISOString` per timestamp was a tenth of the consumer's time.
 */
export class ClickHouseTimeFormat {
  private day = Number.NaN;
  private dayText = '';

  format(ms: number): string {
    const day = Math.floor(ms / DAY_MS);
    if (day !== this.day) {
      // Throws a RangeError for a time outside the JavaScript date range, as toISOString does.
      const iso = new Date(day * DAY_MS).toISOString();
      this.dayText = `${iso.slice(0, iso.indexOf('T'))} `;
      this.day = day;
    }
    let rest = ms - day * DAY_MS;
    const millis = rest % 1000;
    rest = (rest - millis) / 1000;
    const seconds = rest % 60;
    rest = (rest - seconds) / 60;
    const minutes = rest % 60;
    const hours = (rest - minutes) / 60;
    return `${this.dayText}${TWO_DIGITS[hours] ?? ''}:${TWO_DIGITS[minutes] ?? ''}:${TWO_DIGITS[seconds] ?? ''}.${THREE_DIGITS[millis] ?? ''}`;
  }
}

export function toUsageRowValues(event: usagev1.UsageEvent, time: ClickHouseTimeFormat = new ClickHouseTimeFormat()): UsageRowValues {
  const tenant = event.tenant;
  const tokens = event.tokens;
  const cost = event.cost;
  const attempts = event.attempts;
  return [
    event.eventId,
    time.format(event.receivedAtMs),
    event.firstTokenAtMs > 0 ? time.format(event.firstTokenAtMs) : null,
    time.format(event.completedAtMs),
    tenant?.orgId ?? '',
    tenant?.projectId ?? '',
    tenant?.teamId ?? '',
    tenant?.appId ?? '',
    tenant?.costCenter ?? '',
    tenant?.keyId ?? '',
    tenant?.endUser ?? '',
    tenant?.tags ?? {},
    OPERATION[event.operation],
    event.requestedModel,
    event.servedModel,
    event.provider,
    event.deployment,
    event.upstreamModel,
    event.taskType,
    event.experiment,
    event.experimentArm,
    attempts.map((a) => a.provider),
    attempts.map((a) => a.deployment),
    attempts.map((a) => ATTEMPT_STATUS[a.status]),
    attempts.map((a) => a.errorKind),
    attempts.map((a) => a.latencyMs),
    tokens?.prompt ?? 0,
    tokens?.completion ?? 0,
    tokens?.cachedRead ?? 0,
    tokens?.cacheWrite ?? 0,
    tokens?.reasoning ?? 0,
    tokens?.estimated ?? false,
    cost?.amount ?? '0',
    cost?.currency ?? '',
    cost?.priceVersion ?? '',
    event.latencyMs,
    event.ttftMs,
    event.stream,
    event.cancelled,
    STATUS[event.status],
    event.errorKind,
    event.httpStatus,
    event.requestId,
    event.cacheHit,
    // Decimal text, parsed exactly, as `cost`.
    event.cacheSavedCost || '0',
    event.audioMs,
    event.characters,
    event.imagePromptTokens,
    event.images ?? 0,
  ];
}
