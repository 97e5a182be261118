import { GatewayError } from '@openrouter/errors';
import { parseRetryAfter } from '@openrouter/openai-wire';
import { parseAnthropicErrorResponse, type ErrorResponseHeaders } from '../anthropic/anthropic-errors';
import { readGoogleError, toGatewayError } from '../gemini/gemini-errors';

function parse(bodyText: string): unknown {
  try {
    return JSON.parse(bodyText);
  } catch {
    return undefined;
  }
}

/**
 * Vertex AI's own refusals (credentials, access, quota, unknown model) in Google's error JSON, as
 * the Gemini family maps them. A refused token is named as such: Vertex takes no API key.
 */
export function vertexGoogleError(status: number, bodyText: string, provider: string, retryAfterMs: number | undefined): GatewayError {
  // Google's text names the operator's project and location; `toGatewayError` redacts them, in streams too.
  const error = toGatewayError(readGoogleError(parse(bodyText)), status, provider, retryAfterMs);
  if (error.kind !== 'auth_failed') return error;
  return new GatewayError('auth_failed', `The provider "${provider}" rejected the gateway's access token.`, {
    provider,
    upstreamStatus: error.upstreamStatus,
    code: error.code,
    retryable: true,
    cause: error.cause,
  });
}

/** Anthropic's error body: `{"type":"error","error":{"type":…,"message":…}}`. */
function isAnthropicError(json: unknown): boolean {
  if (typeof json !== 'object' || json === null) return false;
  const record = json as { type?: unknown; error?: unknown };
  const inner = record.error as { type?: unknown } | undefined;
  return record.type === 'error' || (typeof inner === 'object' && inner !== null && typeof inner.type === 'string');
}

/**
 * A Claude call's error: the model's own (overloaded, invalid request, context length) in
 * Anthropic's shape, Vertex's front end (auth, quota, not found) in Google's.
 */
export function vertexClaudeError(status: number, headers: ErrorResponseHeaders, bodyText: string, provider: string): GatewayError {
  if (isAnthropicError(parse(bodyText))) return parseAnthropicErrorResponse(status, headers, bodyText, provider);
  return vertexGoogleError(status, bodyText, provider, parseRetryAfter(headers.retryAfter));
}
