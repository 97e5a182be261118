import { GatewayError } from '@openrouter/errors';

export interface OpenAIErrorResponse {
  status: number;
  headers: Record<string, string>;
  body: { error: { message: string; type: string; param: string | null; code: string | null } };
}

function shape(status: number, type: string, e: GatewayError, code: string | null, message = e.message): OpenAIErrorResponse {
  return { status, headers: {}, body: { error: { message, type, param: e.param ?? null, code: e.code ?? code } } };
}

/** The canonical error as OpenAI's error response; one exhaustive mapping for the edge. */
export function toOpenAIError(e: GatewayError): OpenAIErrorResponse {
  switch (e.kind) {
    case 'bad_request':
      return shape(400, 'invalid_request_error', e, null);
    case 'context_length_exceeded':
      return shape(400, 'invalid_request_error', e, 'context_length_exceeded');
    case 'content_filtered':
      return shape(400, 'invalid_request_error', e, 'content_filter');
    case 'auth_failed':
      return shape(401, 'authentication_error', e, 'invalid_api_key');
    case 'permission_denied':
      return shape(403, 'permission_error', e, null);
    case 'not_found':
      return shape(404, 'invalid_request_error', e, null);
    case 'budget_exceeded':
      return shape(402, 'insufficient_quota', e, 'budget_exceeded');
    case 'rate_limited': {
      const response = shape(429, 'rate_limit_error', e, 'rate_limit_exceeded');
      response.body.error.code = 'rate_limit_exceeded';
      if (e.retryAfterMs !== undefined) response.headers['retry-after'] = String(Math.max(1, Math.ceil(e.retryAfterMs / 1000)));
      return response;
    }
    case 'overloaded':
    case 'unavailable':
      return shape(503, 'server_error', e, e.kind);
    case 'upstream_error':
      return shape(502, 'server_error', e, 'upstream_error');
    case 'timeout':
      return shape(504, 'server_error', e, 'timeout');
    case 'cancelled':
      return shape(499, 'invalid_request_error', e, 'cancelled');
    case 'internal':
      return shape(500, 'server_error', e, null, 'The gateway failed to process the request.');
  }
}

function retryAfterMs(header: string | undefined): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.round(seconds * 1000);
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

function readProviderError(bodyText: string): { message?: string; param?: string; code?: string } {
  try {
    const parsed = JSON.parse(bodyText) as { error?: { message?: unknown; param?: unknown; code?: unknown } | string; message?: unknown };
    const err = typeof parsed.error === 'object' && parsed.error ? parsed.error : {};
    const str = (v: unknown): string | undefined => (typeof v === 'string' && v ? v : typeof v === 'number' ? String(v) : undefined);
    return { message: str(err.message) ?? str(parsed.error) ?? str(parsed.message), param: str(err.param), code: str(err.code) };
  } catch {
    return {};
  }
}

/** A provider's HTTP error (OpenAI-shaped body) as a canonical error the router can act on. */
export function parseOpenAIErrorResponse(status: number, retryAfterHeader: string | undefined, bodyText: string, provider: string): GatewayError {
  const detail = readProviderError(bodyText);
  const base = { upstreamStatus: status, provider, param: detail.param, code: detail.code };
  const message = (fallback: string): string => `${fallback}${detail.message ? `: ${detail.message}` : ''}`;
  if (status === 400 || status === 422) {
    if (detail.code === 'context_length_exceeded' || /maximum context length/i.test(detail.message ?? '')) {
      return new GatewayError('context_length_exceeded', message('The request exceeds the model context window'), { ...base, code: 'context_length_exceeded' });
    }
    if (detail.code === 'content_filter' || detail.code === 'content_policy_violation') {
      return new GatewayError('content_filtered', message('The provider filtered the content'), { ...base, code: 'content_filter' });
    }
    return new GatewayError('bad_request', detail.message ?? 'The provider rejected the request.', base);
  }
  switch (status) {
    case 401:
      return new GatewayError('auth_failed', `The provider "${provider}" rejected the gateway's credentials.`, { ...base, code: 'upstream_auth_failed', retryable: true });
    case 403:
      return new GatewayError('permission_denied', message(`The provider "${provider}" refused the request`), base);
    case 404:
      return new GatewayError('not_found', message(`The provider "${provider}" does not know the model or endpoint`), { ...base, retryable: true });
    case 408:
      return new GatewayError('timeout', `The provider "${provider}" timed out.`, base);
    case 429:
      return new GatewayError('rate_limited', `The provider "${provider}" is rate limiting requests.`, { ...base, code: 'rate_limit_exceeded', retryAfterMs: retryAfterMs(retryAfterHeader) });
    case 503:
    case 529:
      return new GatewayError('overloaded', `The provider "${provider}" is overloaded.`, base);
    case 504:
      return new GatewayError('timeout', `The provider "${provider}" timed out.`, base);
    default:
      return new GatewayError(status >= 500 ? 'upstream_error' : 'bad_request', status >= 500 ? `The provider "${provider}" failed (HTTP ${status}).` : detail.message ?? `The provider rejected the request (HTTP ${status}).`, base);
  }
}
