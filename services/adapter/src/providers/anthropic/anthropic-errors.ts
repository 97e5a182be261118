import { z } from 'zod';
import { GatewayError, type GatewayErrorOptions } from '@openrouter/errors';
import { parseRetryAfter } from '@openrouter/openai-wire';

/** `{"type":"error","error":{"type":…,"message":…}}`, the body of every Anthropic error and stream error event. */
const errorBody = z.looseObject({
  error: z.looseObject({
    type: z.string().optional(),
    message: z.string().optional(),
    details: z.looseObject({ error_code: z.string().optional() }).nullish(),
  }),
});

export interface AnthropicErrorDetail {
  type: string | undefined;
  message: string | undefined;
  errorCode: string | undefined;
}

export function readAnthropicError(json: unknown): AnthropicErrorDetail {
  const parsed = errorBody.safeParse(json);
  if (!parsed.success) return { type: undefined, message: undefined, errorCode: undefined };
  const e = parsed.data.error;
  return { type: e.type, message: redact(e.message), errorCode: e.details?.error_code ?? undefined };
}

// Error texts sometimes quote the credential they were given; it must not travel further.
const SECRET = /\bsk-ant-[A-Za-z0-9_*.-]+|\b(?:sk|key)-[A-Za-z0-9_*.-]{6,}/gi;
const redact = (message: string | undefined): string | undefined => (message === '' ? undefined : message?.replace(SECRET, '[redacted]'));

const CONTEXT_LENGTH = /prompt is too long|exceed context limit|context window|maximum context length/i;
/**
 * Refusals about the gateway's own Anthropic account that arrive as a 400 invalid_request_error
 * (an empty credit balance, a disabled organization): nothing the client sent is wrong, and
 * another deployment may serve the request.
 */
const ACCOUNT_REFUSAL = /credit balance is too low|\b(?:organization|workspace)\b[^.]*\b(?:disabled|not allowed|archived)\b/i;

/** The HTTP status Anthropic uses for each error type, for errors that arrive without one (stream events). */
const STATUS_OF_TYPE: Readonly<Record<string, number>> = {
  invalid_request_error: 400,
  authentication_error: 401,
  billing_error: 402,
  permission_error: 403,
  not_found_error: 404,
  request_too_large: 413,
  rate_limit_error: 429,
  api_error: 500,
  timeout_error: 504,
  overloaded_error: 529,
};

/** The status of an error type; own entries only, so a type named `constructor` or `toString` has none. */
const statusOfType = (type: string | undefined): number | undefined => (type !== undefined && Object.hasOwn(STATUS_OF_TYPE, type) ? STATUS_OF_TYPE[type] : undefined);

export interface ErrorResponseHeaders {
  retryAfter?: string | undefined;
}

/** An Anthropic HTTP error response as the canonical error the router acts on. */
export function parseAnthropicErrorResponse(status: number, headers: ErrorResponseHeaders, bodyText: string, provider: string): GatewayError {
  let json: unknown;
  try {
    json = JSON.parse(bodyText);
  } catch {
    json = undefined;
  }
  return anthropicError(status, readAnthropicError(json), provider, parseRetryAfter(headers.retryAfter));
}

/** A stream's `error` event; it has no status, so the error type decides. */
export function anthropicStreamError(json: unknown, provider: string): GatewayError {
  const detail = readAnthropicError(json);
  const status = statusOfType(detail.type) ?? 500;
  return anthropicError(status, detail, provider, undefined);
}

function anthropicError(status: number, detail: AnthropicErrorDetail, provider: string, retryAfterMs: number | undefined): GatewayError {
  const base: GatewayErrorOptions = { upstreamStatus: status, provider, code: detail.type };
  const withDetail = (summary: string): string => (detail.message ? `${summary}: ${detail.message}` : `${summary}.`);
  // A gateway-level 503/504/529 says more than the generic error type a proxy in front may put in the body.
  const kindStatus = [503, 504, 529].includes(status) ? status : (statusOfType(detail.type) ?? status);

  if (status === 400 || status === 422 || kindStatus === 400) {
    if (CONTEXT_LENGTH.test(detail.message ?? '')) {
      return new GatewayError('context_length_exceeded', withDetail('The request exceeds the model context length'), { ...base, code: 'context_length_exceeded' });
    }
    if (ACCOUNT_REFUSAL.test(detail.message ?? '')) return accountRefusal(status, detail, provider);
  }
  switch (kindStatus) {
    case 400:
      return new GatewayError('bad_request', detail.message ?? `The provider "${provider}" rejected the request (HTTP ${status}).`, base);
    case 401:
      // The provider's own text is dropped: it may quote part of the key it was sent. Another
      // deployment has other credentials, so the router may try it.
      return new GatewayError('auth_failed', `The provider "${provider}" rejected the gateway's credentials.`, { upstreamStatus: status, provider, code: 'upstream_auth_failed', retryable: true });
    case 402:
      return accountRefusal(status, detail, provider);
    case 403:
      // A refusal of the gateway's key or workspace (a model it may not use): another deployment,
      // with another key, may serve the request, as after a 401 or 404.
      return new GatewayError('permission_denied', withDetail(`The provider "${provider}" refused the request`), { ...base, code: 'upstream_access_denied', retryable: true });
    case 404:
      return new GatewayError('not_found', withDetail(`The provider "${provider}" does not know the model or endpoint`), { ...base, retryable: true });
    case 408:
    case 504:
      return new GatewayError('timeout', `The provider "${provider}" timed out.`, base);
    case 413:
      return new GatewayError('bad_request', withDetail(`The request is larger than the provider "${provider}" accepts`), { ...base, code: 'request_too_large' });
    case 429:
      if (detail.errorCode === 'enforced_spend_limit_reached') {
        // The account's monthly limit: waiting will not help, another deployment may.
        return new GatewayError('rate_limited', withDetail(`The provider "${provider}" account reached its spend limit`), { ...base, code: 'spend_limit_reached' });
      }
      return new GatewayError('rate_limited', withDetail(`The provider "${provider}" is rate limiting requests`), { ...base, code: 'rate_limit_exceeded', retryAfterMs });
    case 503:
    case 529:
      return new GatewayError('overloaded', withDetail(`The provider "${provider}" is overloaded`), { ...base, code: 'overloaded', retryAfterMs });
  }
  if (kindStatus >= 500) return new GatewayError('upstream_error', withDetail(`The provider "${provider}" failed (HTTP ${status})`), base);
  return new GatewayError('bad_request', detail.message ?? `The provider "${provider}" rejected the request (HTTP ${status}).`, base);
}

/**
 * The provider refused the gateway's account (billing, a disabled organization). Its text is the
 * operator's business, not the client's: it stays in the cause, which the adapter's log shows and
 * no response carries. Another deployment may still serve the request.
 */
function accountRefusal(status: number, detail: AnthropicErrorDetail, provider: string): GatewayError {
  return new GatewayError('upstream_error', `The provider "${provider}" refused the gateway's account.`, {
    upstreamStatus: status,
    provider,
    code: 'upstream_account_refused',
    retryable: true,
    cause: new Error(detail.message ?? `HTTP ${status} ${detail.type ?? ''}`.trim()),
  });
}
