import { z } from 'zod';
import { GatewayError, type ErrorKind, type GatewayErrorOptions } from '@openrouter/errors';

/** Google's error body: `{"error":{"code","message","status","details":[…]}}`, sometimes wrapped in a list. */
const googleError = z.looseObject({
  code: z.number().optional(),
  message: z.string().optional(),
  status: z.string().optional(),
  details: z.array(z.looseObject({ '@type': z.string().optional(), retryDelay: z.string().optional(), reason: z.string().optional() })).optional(),
});
export type GoogleError = z.infer<typeof googleError>;
const errorBody = z.looseObject({ error: googleError });

interface Mapping {
  kind: ErrorKind;
  retryable?: boolean;
  code?: string;
}

/**
 * Google's canonical status codes. Credentials, access and missing models are this provider's
 * problem, not the client's, so they are retryable: another deployment may answer.
 */
const BY_STATUS: Readonly<Record<string, Mapping>> = {
  INVALID_ARGUMENT: { kind: 'bad_request' },
  OUT_OF_RANGE: { kind: 'bad_request' },
  FAILED_PRECONDITION: { kind: 'permission_denied', retryable: true, code: 'upstream_failed_precondition' },
  PERMISSION_DENIED: { kind: 'permission_denied', retryable: true, code: 'upstream_access_denied' },
  UNAUTHENTICATED: { kind: 'auth_failed', retryable: true, code: 'upstream_auth_failed' },
  NOT_FOUND: { kind: 'not_found', retryable: true },
  RESOURCE_EXHAUSTED: { kind: 'rate_limited', code: 'rate_limit_exceeded' },
  INTERNAL: { kind: 'upstream_error' },
  UNKNOWN: { kind: 'upstream_error' },
  DATA_LOSS: { kind: 'upstream_error' },
  ABORTED: { kind: 'upstream_error' },
  CANCELLED: { kind: 'upstream_error' },
  UNAVAILABLE: { kind: 'unavailable' },
  DEADLINE_EXCEEDED: { kind: 'timeout' },
  UNIMPLEMENTED: { kind: 'bad_request', retryable: true },
};

// Vertex also says "the input token count is N but model only supports up to M".
const CONTEXT_LENGTH = /exceeds the maximum number of tokens|input token count.*exceeds|input token count is \d+ but (the )?model only supports up to|too many (input )?tokens|context (length|window)/i;
const BAD_KEY_REASONS = new Set(['API_KEY_INVALID', 'API_KEY_EXPIRED', 'API_KEY_SERVICE_BLOCKED', 'API_KEY_HTTP_REFERRER_BLOCKED', 'API_KEY_IP_ADDRESS_BLOCKED', 'API_KEY_ANDROID_APP_BLOCKED', 'API_KEY_IOS_APP_BLOCKED']);
const MISSING_KEY = /unregistered callers|API key not valid|API key expired|missing API key/i;
const OVERLOADED = /overloaded/i;
/**
 * `ErrorInfo` reasons that refuse the gateway's key, project or account, whatever the status. Like
 * `UNAUTHENTICATED` and `PERMISSION_DENIED`, their text names the caller (`Permission denied:
 * Consumer 'api_key:AIza…' has been suspended.`), so it goes to the log only, never to the client.
 */
const ACCOUNT_REASONS = new Set(['CONSUMER_SUSPENDED', 'CONSUMER_INVALID', 'SERVICE_DISABLED', 'BILLING_DISABLED', 'USER_PROJECT_DENIED', 'IAM_PERMISSION_DENIED', 'ACCESS_TOKEN_SCOPE_INSUFFICIENT']);
/** A canonical status name; anything else in `error.status` is not trusted into a message or code. */
const STATUS_NAME = /^[A-Z][A-Z_]{0,63}$/;

// Google's texts may quote the key they were sent (`Consumer 'api_key:AIza…'`, a URL's `key=`); it must not travel further.
const SECRET = /(api_key:|\b(?:x-goog-api-)?key\s*[=:]\s*)[^&'"\s]+|AIza[0-9A-Za-z_-]{8,}/gi;
// They also name the operator's Google Cloud project (`projects/acme-prod/locations/europe-west4/…`, `project_number:123…`), which clients are not told.
const PROJECT = /\bprojects\/[^/\s`'"]+(?:\/locations\/[^/\s`'"]+)?|\bproject(?:_number|_id)?[:= ]+\d{6,}/gi;
const redactGoogleText = (text: string): string =>
  text.replace(SECRET, (_match, keyPrefix?: string) => `${keyPrefix ?? ''}[redacted]`).replace(PROJECT, (match) => (match.toLowerCase().startsWith('projects/') ? 'projects/…' : 'project …'));

/** `"17s"` / `"1.5s"` (a protobuf Duration) in milliseconds. */
export function durationMs(value: string | undefined): number | undefined {
  const match = value === undefined ? null : /^(\d+(?:\.\d+)?)s$/.exec(value.trim());
  return match?.[1] === undefined ? undefined : Math.round(Number(match[1]) * 1000);
}

/** Reads Google's error object from a body (or a stream event); undefined when it is not one. */
export function readGoogleError(json: unknown): GoogleError | undefined {
  const candidate = Array.isArray(json) ? json[0] : json;
  const parsed = errorBody.safeParse(candidate);
  return parsed.success ? parsed.data.error : undefined;
}

function statusOf(httpStatus: number): string | undefined {
  switch (httpStatus) {
    case 400:
      return 'INVALID_ARGUMENT';
    case 401:
      return 'UNAUTHENTICATED';
    case 403:
      return 'PERMISSION_DENIED';
    case 404:
      return 'NOT_FOUND';
    case 408:
    case 504:
      return 'DEADLINE_EXCEEDED';
    case 409:
      return 'ABORTED';
    case 429:
      return 'RESOURCE_EXHAUSTED';
    case 501:
      return 'UNIMPLEMENTED';
    case 503:
      return 'UNAVAILABLE';
  }
  if (httpStatus >= 500) return 'INTERNAL';
  return httpStatus >= 400 ? 'INVALID_ARGUMENT' : undefined;
}

/** A Google error (from an HTTP error response or a stream event) as the canonical error. */
export function toGatewayError(error: GoogleError | undefined, httpStatus: number, provider: string, retryAfterHeaderMs?: number): GatewayError {
  const status = (error?.status !== undefined && STATUS_NAME.test(error.status) ? error.status : undefined) ?? statusOf(error?.code ?? httpStatus) ?? 'UNKNOWN';
  const upstreamStatus = error?.code ?? httpStatus;
  const message = error?.message === undefined || error.message === '' ? undefined : redactGoogleText(error.message);
  const reasons = (error?.details ?? []).map((d) => d.reason).filter((r): r is string => r !== undefined);
  const base: GatewayErrorOptions = { provider, upstreamStatus };
  // Google's own words (key material redacted) for the adapter's log only: no response carries a cause.
  const googleText = (): Error => {
    const reasonText = reasons.filter((r) => STATUS_NAME.test(r)).join(', ');
    return new Error(`${status}${reasonText ? ` (${reasonText})` : ''}: ${message ?? `HTTP ${httpStatus}`}`);
  };
  if (reasons.some((r) => BAD_KEY_REASONS.has(r)) || MISSING_KEY.test(message ?? '') || status === 'UNAUTHENTICATED') {
    return new GatewayError('auth_failed', `The provider "${provider}" rejected the gateway's API key.`, { ...base, retryable: true, code: 'upstream_auth_failed', cause: googleText() });
  }
  if (status === 'PERMISSION_DENIED' || reasons.some((r) => ACCOUNT_REASONS.has(r))) {
    return new GatewayError('permission_denied', `The provider "${provider}" refused the gateway's key or account.`, { ...base, retryable: true, code: 'upstream_access_denied', cause: googleText() });
  }
  const mapping = BY_STATUS[status] ?? { kind: 'upstream_error' };
  if (mapping.kind === 'bad_request' && CONTEXT_LENGTH.test(message ?? '')) {
    return new GatewayError('context_length_exceeded', `The request exceeds the model context length: ${message ?? ''}`.trim(), { ...base, code: 'context_length_exceeded' });
  }
  const options: GatewayErrorOptions = { ...base, code: mapping.code ?? status.toLowerCase(), retryable: mapping.retryable };
  if (mapping.kind === 'rate_limited') {
    const retryInfo = error?.details?.find((d) => d['@type']?.endsWith('google.rpc.RetryInfo'));
    options.retryAfterMs = durationMs(retryInfo?.retryDelay) ?? retryAfterHeaderMs;
  }
  if (mapping.kind === 'unavailable' && OVERLOADED.test(message ?? '')) {
    return new GatewayError('overloaded', `The provider "${provider}" is overloaded: ${message ?? ''}`.trim(), { ...options, code: 'overloaded' });
  }
  if (mapping.kind === 'bad_request' && message) return new GatewayError('bad_request', message, options);
  const text = message ? `The provider "${provider}" failed (${status}): ${message}` : `The provider "${provider}" failed (HTTP ${httpStatus}).`;
  return new GatewayError(mapping.kind, text, options);
}

/** An HTTP error response from Gemini as the canonical error. */
export function parseGeminiErrorResponse(httpStatus: number, bodyText: string, provider: string, retryAfterHeaderMs?: number): GatewayError {
  let json: unknown;
  try {
    json = JSON.parse(bodyText);
  } catch {
    json = undefined;
  }
  return toGatewayError(readGoogleError(json), httpStatus, provider, retryAfterHeaderMs);
}
