import { GatewayError, type GatewayErrorOptions } from '@openrouter/errors';
import { isObject } from './validation';

export interface OpenAIErrorResponse {
  status: number;
  headers: Record<string, string>;
  body: { error: { message: string; type: string; param: string | null; code: string | null } };
}

const GENERIC_INTERNAL_MESSAGE = 'The gateway failed to process the request.';

function response(status: number, type: string, e: GatewayError, code: string | null, message = e.message): OpenAIErrorResponse {
  return { status, headers: {}, body: { error: { message, type, param: e.param ?? null, code } } };
}

/**
 * Client errors HTTP has a status of its own for (OpenAI answers 413 for an oversized body). The
 * OpenAI SDKs retry 408 (a request too slow to arrive may be sent again) and none of the others.
 */
const BAD_REQUEST_STATUS: ReadonlyMap<string, number> = new Map([
  ['request_timeout', 408],
  ['request_too_large', 413],
  ['url_too_long', 414],
  ['headers_too_large', 431],
  // A request whose Idempotency-Key was used before with another request (draft-ietf-httpapi-idempotency-key-header).
  ['idempotency_key_reused', 422],
]);

/**
 * The limit a refusal by the gateway's own rate limits names. OpenAI's 429 for its rate limits has
 * it as the error's `type` (`requests` for RPM/RPD, `tokens` for TPM/TPD, also in `Request too
 * large`), where other 429s have `rate_limit_error`.
 */
export type RateLimitKind = 'requests' | 'tokens';

/**
 * The canonical error as OpenAI's error response; the one mapping every client-facing edge uses.
 * A `rate_limited` error may carry `limitKind` (set by the gateway's own rate limiter only).
 */
export function toOpenAIError(e: GatewayError & { readonly limitKind?: RateLimitKind | undefined }): OpenAIErrorResponse {
  const kind = e.kind;
  switch (kind) {
    case 'bad_request':
      return response((e.code !== undefined && BAD_REQUEST_STATUS.get(e.code)) || 400, 'invalid_request_error', e, e.code ?? null);
    case 'context_length_exceeded':
      return response(400, 'invalid_request_error', e, 'context_length_exceeded');
    case 'content_filtered':
      // A provider's filter is `content_filter`; the gateway's own guardrails say `content_policy_violation`.
      return response(400, 'invalid_request_error', e, e.code ?? 'content_filter');
    case 'auth_failed':
      // A provider refusing the gateway's own credentials is the gateway's fault, not a bad key of the client's.
      if (e.upstreamStatus !== undefined) return response(502, 'server_error', e, e.code ?? 'upstream_auth_failed');
      return response(401, 'authentication_error', e, e.code ?? 'invalid_api_key');
    case 'budget_exceeded':
      return response(402, 'insufficient_quota', e, 'budget_exceeded');
    case 'permission_denied':
      // A provider refusing the gateway's account (a suspended key, a model the project may not use,
      // a region) is the gateway's misconfiguration: a 403 would tell the client its own request is
      // forbidden, and its SDK would not retry.
      if (e.upstreamStatus !== undefined) return response(502, 'server_error', e, e.code ?? 'upstream_access_denied');
      return response(403, 'permission_error', e, e.code ?? null);
    case 'not_found':
      // A provider that does not know a configured deployment's model: the gateway is misconfigured;
      // the client named a model it lists.
      if (e.upstreamStatus !== undefined) return response(502, 'server_error', e, 'upstream_not_found');
      return response(404, 'invalid_request_error', e, e.code ?? null);
    case 'conflict':
      return response(409, 'invalid_request_error', e, e.code ?? 'conflict');
    case 'rate_limited': {
      const out = response(429, e.limitKind ?? 'rate_limit_error', e, 'rate_limit_exceeded');
      if (e.retryAfterMs !== undefined) {
        out.headers['retry-after'] = String(Math.max(0, Math.ceil(e.retryAfterMs / 1000)));
        out.headers['retry-after-ms'] = String(Math.max(0, Math.ceil(e.retryAfterMs)));
      }
      return out;
    }
    case 'cancelled':
      return response(499, 'invalid_request_error', e, e.code ?? 'cancelled');
    case 'internal':
      return { status: 500, headers: {}, body: { error: { message: GENERIC_INTERNAL_MESSAGE, type: 'server_error', param: null, code: null } } };
    case 'upstream_error':
      return response(502, 'server_error', e, e.code ?? 'upstream_error');
    case 'overloaded':
      return response(503, 'server_error', e, e.code ?? 'overloaded');
    case 'unavailable':
      return response(503, 'server_error', e, e.code ?? 'unavailable');
    case 'timeout':
      return response(504, 'server_error', e, 'timeout');
    default: {
      const unhandled: never = kind;
      throw new Error(`Unhandled error kind ${String(unhandled)}`);
    }
  }
}

/** Milliseconds from a Retry-After value: delay seconds (fractions allowed) or an HTTP date. */
export function parseRetryAfter(header: string | undefined, now = Date.now()): number | undefined {
  if (header === undefined) return undefined;
  const trimmed = header.trim();
  if (trimmed === '') return undefined;
  const seconds = Number(trimmed);
  if (Number.isFinite(seconds)) return seconds >= 0 ? Math.round(seconds * 1000) : undefined;
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

function parseRetryAfterMs(header: string | undefined): number | undefined {
  if (header === undefined || header.trim() === '') return undefined;
  const ms = Number(header);
  return Number.isFinite(ms) && ms >= 0 ? Math.round(ms) : undefined;
}

interface ProviderErrorDetail {
  message?: string | undefined;
  param?: string | undefined;
  code?: string | undefined;
  type?: string | undefined;
}

const text = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : typeof v === 'number' ? String(v) : undefined);

/** Reads OpenAI's `{error:{message,type,param,code}}` and the looser shapes compatible servers send. */
function readProviderError(bodyText: string): ProviderErrorDetail {
  let parsed: unknown;
  try {
    parsed = JSON.parse(bodyText);
  } catch {
    return {};
  }
  if (!isObject(parsed)) return {};
  const inner = parsed['error'];
  const err = isObject(inner) ? inner : parsed;
  return {
    message: redact(text(err['message']) ?? text(inner) ?? text(parsed['message']) ?? text(parsed['detail'])),
    param: text(err['param']),
    code: text(err['code']),
    type: text(err['type']),
  };
}

// Providers sometimes quote the credential they were given; it must not travel further.
const SECRET = /\b(?:sk|pk|rk|gsk|xai|key)-[A-Za-z0-9_*.-]{6,}|\bBearer\s+\S+/gi;
// The operator's account ids: OpenAI names its organization (`org-…`) and project (`proj_…`) in
// its 429s and 403s ("Rate limit reached for gpt-4o in organization org-… on tokens per min"),
// and Azure names subscriptions and principals by GUID. They say nothing the client can act on
// and tell anyone who sees the error whose account the gateway uses.
const ACCOUNT_ID = /\b(?:org-|proj_)[A-Za-z0-9]{8,}\b|\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/gi;
const redact = (message: string | undefined): string | undefined => message?.replace(SECRET, '[redacted]').replace(ACCOUNT_ID, '[redacted]');

const CONTEXT_LENGTH = /maximum context length|context[_ ]length[_ ]exceeded|context window|prompt is too long/i;
// `moderation_blocked`: GPT Image's safety system refused the prompt (type `image_generation_user_error`).
const CONTENT_FILTER_CODES = new Set(['content_filter', 'content_policy_violation', 'moderation_blocked']);

/**
 * A provider's HTTP error (an OpenAI-shaped body, or not) as the canonical error the router acts
 * on. `retryAfterMsHeader` is the non-standard `retry-after-ms` header some servers send; it wins
 * over Retry-After because it is more precise.
 */
export function parseOpenAIErrorResponse(status: number, retryAfterHeader: string | undefined, bodyText: string, provider: string, retryAfterMsHeader?: string): GatewayError {
  const detail = readProviderError(bodyText);
  const base: GatewayErrorOptions = { upstreamStatus: status, provider, param: detail.param, code: detail.code };
  const withDetail = (summary: string): string => (detail.message ? `${summary}: ${detail.message}` : `${summary}.`);
  // The gateway's account with the provider is out of credit or quota: the gateway's problem, not
  // the client's (a 502, never the 402 that means the client's own budget), and another deployment
  // (another account or provider) may serve.
  const quotaExceeded = (): GatewayError =>
    new GatewayError('upstream_error', withDetail(`The provider "${provider}" refused to bill the request`), { ...base, code: 'upstream_quota_exceeded', retryable: true });

  if (status === 400 || status === 422) {
    if (detail.code === 'context_length_exceeded' || CONTEXT_LENGTH.test(detail.message ?? '')) {
      return new GatewayError('context_length_exceeded', withDetail('The request exceeds the model context length'), { ...base, code: 'context_length_exceeded' });
    }
    if ((detail.code !== undefined && CONTENT_FILTER_CODES.has(detail.code)) || detail.type === 'content_filter') {
      return new GatewayError('content_filtered', withDetail('The provider filtered the content'), { ...base, code: 'content_filter' });
    }
    return new GatewayError('bad_request', detail.message ?? `The provider "${provider}" rejected the request (HTTP ${status}).`, base);
  }
  switch (status) {
    case 401:
      // The provider's own text is dropped: it often quotes part of the key it was sent.
      return new GatewayError('auth_failed', `The provider "${provider}" rejected the gateway's credentials.`, { upstreamStatus: status, provider, code: 'upstream_auth_failed', retryable: true });
    case 402:
      return quotaExceeded();
    case 403:
      // A refusal of the gateway's account, key or region on this deployment: another deployment
      // (another key, region or provider) may serve, as after a 401 or 404.
      return new GatewayError('permission_denied', withDetail(`The provider "${provider}" refused the request`), { ...base, retryable: true });
    case 404:
      return new GatewayError('not_found', withDetail(`The provider "${provider}" does not know the model or endpoint`), { ...base, retryable: true });
    case 408:
      return new GatewayError('timeout', `The provider "${provider}" timed out.`, base);
    case 429:
      // OpenAI answers an account out of credit with a 429 too, but waiting does not cure it: a
      // client told "rate limited" would retry for nothing.
      if (detail.code === 'insufficient_quota' || detail.type === 'insufficient_quota') return quotaExceeded();
      return new GatewayError('rate_limited', withDetail(`The provider "${provider}" is rate limiting requests`), {
        ...base,
        code: detail.code ?? 'rate_limit_exceeded',
        retryAfterMs: parseRetryAfterMs(retryAfterMsHeader) ?? parseRetryAfter(retryAfterHeader),
      });
    case 503:
    case 529:
      return new GatewayError('overloaded', withDetail(`The provider "${provider}" is overloaded`), { ...base, retryAfterMs: parseRetryAfterMs(retryAfterMsHeader) ?? parseRetryAfter(retryAfterHeader) });
    case 504:
      return new GatewayError('timeout', `The provider "${provider}" timed out.`, base);
  }
  if (status >= 500) return new GatewayError('upstream_error', withDetail(`The provider "${provider}" failed (HTTP ${status})`), base);
  return new GatewayError('bad_request', detail.message ?? `The provider "${provider}" rejected the request (HTTP ${status}).`, base);
}

/**
 * The HTTP status OpenAI answers each error `code` or `type` with, for an error that came without
 * one. A code is more specific than a type (OpenAI's unknown model is type `invalid_request_error`,
 * code `model_not_found`, and a 404), so it is looked up first.
 */
const ERROR_NAME_STATUS: ReadonlyMap<string, number> = new Map([
  ['invalid_request_error', 400],
  ['context_length_exceeded', 400],
  ['content_filter', 400],
  ['content_policy_violation', 400],
  ['moderation_blocked', 400],
  ['invalid_api_key', 401],
  ['authentication_error', 401],
  ['permission_error', 403],
  ['model_not_found', 404],
  ['not_found_error', 404],
  ['rate_limit_exceeded', 429],
  ['rate_limit_error', 429],
  ['insufficient_quota', 429],
]);

/** An HTTP error status given as a number or as its digits (LiteLLM's `"code": "400"`). */
function errorStatus(value: unknown): number | undefined {
  const status = typeof value === 'number' ? value : typeof value === 'string' && /^\d{3}$/.test(value.trim()) ? Number(value) : undefined;
  return status !== undefined && Number.isInteger(status) && status >= 400 && status <= 599 ? status : undefined;
}

/** The status an error event inside a stream stands for: its own, else its code's or type's, else 500. */
function streamErrorStatus(data: string): number {
  let parsed: unknown;
  try {
    parsed = JSON.parse(data);
  } catch {
    return 500;
  }
  if (!isObject(parsed)) return 500;
  const inner = parsed['error'];
  const err = isObject(inner) ? inner : parsed;
  const own = errorStatus(err['status']) ?? errorStatus(err['code']) ?? errorStatus(parsed['status']) ?? errorStatus(parsed['code']);
  if (own !== undefined) return own;
  for (const name of [err['code'], err['type']]) {
    const status = typeof name === 'string' ? ERROR_NAME_STATUS.get(name) : undefined;
    if (status !== undefined) return status;
  }
  return 500;
}

/**
 * An error event a provider sent inside a stream, after its HTTP 200 (`data: {"error":{…}}`, as
 * OpenAI, LiteLLM and vLLM send one), as the canonical error the HTTP error it stands for would
 * be. Its status is the event's own (`status`, or a numeric `code`: LiteLLM sends `"400"`, vLLM
 * `400`), else the one OpenAI answers its `code` or `type` with, else 500. So a refusal of the
 * request (too long, filtered, invalid) stays the client's error, one the router does not fail
 * over for, and only a failure of the provider is retried elsewhere.
 */
export function parseOpenAIStreamError(data: string, provider: string): GatewayError {
  return parseOpenAIErrorResponse(streamErrorStatus(data), undefined, data, provider);
}

/**
 * An error of the chat path (raised after a body was translated) in the words of the API the
 * client called: its `param` renamed by `rename` (`max_completion_tokens` → `max_output_tokens`),
 * and in its message too when it is a parameter name; a plain word (`messages`) is left in its
 * sentence. Anything else is returned as it is.
 */
export function withParamRenamed<E>(error: E, rename: (param: string) => string): E | GatewayError {
  if (!(error instanceof GatewayError) || error.param === undefined) return error;
  const param = rename(error.param);
  if (param === error.param) return error;
  const message = /[_.[]/.test(error.param) ? error.message.split(error.param).join(param) : error.message;
  return new GatewayError(error.kind, message, {
    param,
    code: error.code,
    retryable: error.retryable,
    retryAfterMs: error.retryAfterMs,
    upstreamStatus: error.upstreamStatus,
    provider: error.provider,
    cause: error.cause,
  });
}
