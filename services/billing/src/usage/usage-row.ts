import { usagev1 } from '@openrouter/contracts';

/** A `usage_events` row in JSONEachRow form (see libs/usage migrations). */
export interface UsageRow {
  event_id: string;
  received_at: string;
  first_token_at: string | null;
  completed_at: string;
  org_id: string;
  project_id: string;
  team_id: string;
  app_id: string;
  cost_center: string;
  key_id: string;
  end_user: string;
  tags: Record<string, string>;
  operation: string;
  requested_model: string;
  served_model: string;
  provider: string;
  deployment: string;
  upstream_model: string;
  task_type: string;
  experiment: string;
  experiment_arm: string;
  'attempts.provider': string[];
  'attempts.deployment': string[];
  'attempts.status': string[];
  'attempts.error_kind': string[];
  'attempts.latency_ms': number[];
  prompt_tokens: number;
  completion_tokens: number;
  cached_read_tokens: number;
  cache_write_tokens: number;
  reasoning_tokens: number;
  tokens_estimated: boolean;
  /** Decimal text: ClickHouse parses it into Decimal(38, 18) exactly. */
  cost: string;
  currency: string;
  price_version: string;
  latency_ms: number;
  ttft_ms: number;
  stream: boolean;
  cancelled: boolean;
  status: string;
  error_kind: string;
  http_status: number;
}

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
  [usagev1.Operation.UNRECOGNIZED]: '',
};

const ATTEMPT_STATUS: Record<usagev1.AttemptStatus, string> = {
  [usagev1.AttemptStatus.ATTEMPT_STATUS_UNSPECIFIED]: '',
  [usagev1.AttemptStatus.ATTEMPT_STATUS_OK]: 'ok',
  [usagev1.AttemptStatus.ATTEMPT_STATUS_ERROR]: 'error',
  [usagev1.AttemptStatus.ATTEMPT_STATUS_CANCELLED]: 'cancelled',
  [usagev1.AttemptStatus.UNRECOGNIZED]: '',
};

/** ClickHouse DateTime64(3, 'UTC') text for epoch milliseconds. */
export function clickhouseTime(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').replace('Z', '');
}

export function toUsageRow(event: usagev1.UsageEvent): UsageRow {
  const tenant = event.tenant;
  const tokens = event.tokens;
  return {
    event_id: event.eventId,
    received_at: clickhouseTime(event.receivedAtMs),
    first_token_at: event.firstTokenAtMs > 0 ? clickhouseTime(event.firstTokenAtMs) : null,
    completed_at: clickhouseTime(event.completedAtMs),
    org_id: tenant?.orgId ?? '',
    project_id: tenant?.projectId ?? '',
    team_id: tenant?.teamId ?? '',
    app_id: tenant?.appId ?? '',
    cost_center: tenant?.costCenter ?? '',
    key_id: tenant?.keyId ?? '',
    end_user: tenant?.endUser ?? '',
    tags: tenant?.tags ?? {},
    operation: OPERATION[event.operation],
    requested_model: event.requestedModel,
    served_model: event.servedModel,
    provider: event.provider,
    deployment: event.deployment,
    upstream_model: event.upstreamModel,
    task_type: event.taskType,
    experiment: event.experiment,
    experiment_arm: event.experimentArm,
    'attempts.provider': event.attempts.map((a) => a.provider),
    'attempts.deployment': event.attempts.map((a) => a.deployment),
    'attempts.status': event.attempts.map((a) => ATTEMPT_STATUS[a.status]),
    'attempts.error_kind': event.attempts.map((a) => a.errorKind),
    'attempts.latency_ms': event.attempts.map((a) => a.latencyMs),
    prompt_tokens: tokens?.prompt ?? 0,
    completion_tokens: tokens?.completion ?? 0,
    cached_read_tokens: tokens?.cachedRead ?? 0,
    cache_write_tokens: tokens?.cacheWrite ?? 0,
    reasoning_tokens: tokens?.reasoning ?? 0,
    tokens_estimated: tokens?.estimated ?? false,
    cost: event.cost?.amount ?? '0',
    currency: event.cost?.currency ?? '',
    price_version: event.cost?.priceVersion ?? '',
    latency_ms: event.latencyMs,
    ttft_ms: event.ttftMs,
    stream: event.stream,
    cancelled: event.cancelled,
    status: STATUS[event.status],
    error_kind: event.errorKind,
    http_status: event.httpStatus,
  };
}
