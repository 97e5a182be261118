import { usagev1 } from '@openrouter/contracts';
import { USAGE_SCHEMA_VERSION } from './usage-event.codec';

/** A complete event with every field at its empty value, to fill in. */
export function emptyUsageEvent(eventId: string, receivedAtMs: number): usagev1.UsageEvent {
  return {
    schemaVersion: USAGE_SCHEMA_VERSION,
    eventId,
    receivedAtMs,
    firstTokenAtMs: 0,
    completedAtMs: receivedAtMs,
    tenant: { orgId: '', projectId: '', teamId: '', appId: '', costCenter: '', keyId: '', endUser: '', tags: {} },
    operation: usagev1.Operation.OPERATION_UNSPECIFIED,
    requestedModel: '',
    servedModel: '',
    provider: '',
    deployment: '',
    upstreamModel: '',
    taskType: '',
    experiment: '',
    experimentArm: '',
    attempts: [],
    tokens: { prompt: 0, completion: 0, cachedRead: 0, cacheWrite: 0, reasoning: 0, estimated: false },
    cost: { amount: '0', currency: 'USD', priceVersion: '' },
    latencyMs: 0,
    ttftMs: 0,
    stream: false,
    cancelled: false,
    status: usagev1.Status.STATUS_UNSPECIFIED,
    errorKind: '',
    httpStatus: 0,
    requestId: '',
    cacheHit: false,
    cacheSavedCost: '',
    audioMs: 0,
    characters: 0,
    imagePromptTokens: 0,
  };
}
