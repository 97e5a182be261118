import { toOpenAIError } from '@openrouter/openai-wire';
import { anthropicStreamError, parseAnthropicErrorResponse } from './anthropic-errors';

const body = (type: string, message: string, extra: Record<string, unknown> = {}) => JSON.stringify({ type: 'error', error: { type, message, ...extra }, request_id: 'req_011' });
const parse = (status: number, text: string, retryAfter?: string) => parseAnthropicErrorResponse(status, { retryAfter }, text, 'anthropic');

describe('parseAnthropicErrorResponse', () => {
  it.each([
    [400, 'invalid_request_error', 'max_tokens: Field required', 'bad_request', false],
    [401, 'authentication_error', 'invalid x-api-key', 'auth_failed', true],
    [402, 'billing_error', 'Your credit balance is too low', 'upstream_error', true],
    [403, 'permission_error', 'Not allowed', 'permission_denied', true],
    [404, 'not_found_error', 'model: claude-nope', 'not_found', true],
    [413, 'request_too_large', 'Request exceeds the maximum allowed number of bytes.', 'bad_request', false],
    [429, 'rate_limit_error', 'Number of requests has exceeded your rate limit', 'rate_limited', true],
    [500, 'api_error', 'Internal server error', 'upstream_error', true],
    [504, 'timeout_error', 'Request timed out', 'timeout', true],
    [529, 'overloaded_error', 'Overloaded', 'overloaded', true],
  ])('maps HTTP %i %s to %s (retryable %s)', (status, type, message, kind, retryable) => {
    const error = parse(status, body(type, message));
    expect(error).toMatchObject({ kind, retryable, upstreamStatus: status, provider: 'anthropic' });
  });

  it.each(['prompt is too long: 208310 tokens > 200000 maximum', 'input length and `max_tokens` exceed context limit: 198000 + 8192 > 200000, decrease input length or `max_tokens` and try again'])(
    'recognises "%s" as context_length_exceeded',
    (message) => {
      const error = parse(400, body('invalid_request_error', message));
      expect(error).toMatchObject({ kind: 'context_length_exceeded', code: 'context_length_exceeded', retryable: false });
      expect(error.message).toContain(message);
    },
  );

  it.each([
    [400, 'invalid_request_error', 'Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits.'],
    [400, 'invalid_request_error', 'This organization has been disabled.'],
    [400, 'invalid_request_error', 'Your organization is not allowed to use this model.'],
    [402, 'billing_error', 'Your credit balance is too low'],
  ])('treats a refusal of the account (HTTP %i %s "%s") as retryable elsewhere, without passing its text on', (status, type, message) => {
    const error = parse(status, body(type, message));
    expect(error).toMatchObject({ kind: 'upstream_error', code: 'upstream_account_refused', retryable: true, upstreamStatus: status });
    expect(error.message).not.toMatch(/credit|organization|billing/i);
    expect((error.cause as Error).message).toBe(message);
  });

  it('keeps an ordinary bad request naming an organization-free "not allowed" as the client’s error', () => {
    const error = parse(400, body('invalid_request_error', 'messages.0: tool_result blocks are only allowed in user messages'));
    expect(error).toMatchObject({ kind: 'bad_request', retryable: false });
  });

  it('answers a 403 as the documented 502 upstream_access_denied, retryable on another deployment', () => {
    const error = parse(403, body('permission_error', 'Your API key does not have permission to use the specified resource.'));
    expect(error).toMatchObject({ kind: 'permission_denied', code: 'upstream_access_denied', retryable: true });
    expect(toOpenAIError(error)).toMatchObject({ status: 502, body: { error: { type: 'server_error', code: 'upstream_access_denied' } } });
    expect(anthropicStreamError(JSON.parse(body('permission_error', 'no')), 'anthropic')).toMatchObject({ code: 'upstream_access_denied', retryable: true });
  });

  it('carries retry-after of a 429 and a 529 in milliseconds', () => {
    expect(parse(429, body('rate_limit_error', 'slow down'), '7').retryAfterMs).toBe(7000);
    expect(parse(529, body('overloaded_error', 'Overloaded'), '2').retryAfterMs).toBe(2000);
    expect(parse(429, body('rate_limit_error', 'slow down')).retryAfterMs).toBeUndefined();
  });

  it('reports a reached spend limit without a retry-after', () => {
    const error = parse(429, body('rate_limit_error', 'You have reached your monthly spend limit', { details: { error_code: 'enforced_spend_limit_reached' } }), '3600');
    expect(error).toMatchObject({ kind: 'rate_limited', code: 'spend_limit_reached', retryAfterMs: undefined });
  });

  it('never passes on the provider’s text for a 401, and redacts keys quoted elsewhere', () => {
    const auth = parse(401, body('authentication_error', 'invalid x-api-key sk-ant-api03-abcdefghijklmnop'));
    expect(auth.message).not.toContain('sk-ant');
    const forbidden = parse(403, body('permission_error', 'key sk-ant-api03-abcdefghijklmnop may not use this model'));
    expect(forbidden.message).toContain('[redacted]');
    expect(forbidden.message).not.toContain('abcdefghijklmnop');
  });

  it('classifies bodies that are not Anthropic errors by status alone', () => {
    expect(parse(413, '<html>Request Entity Too Large</html>')).toMatchObject({ kind: 'bad_request', code: 'request_too_large' });
    expect(parse(502, 'Bad gateway')).toMatchObject({ kind: 'upstream_error', retryable: true });
    expect(parse(503, '')).toMatchObject({ kind: 'overloaded', retryable: true });
    expect(parse(409, body('invalid_request_error', 'conflict'))).toMatchObject({ kind: 'bad_request', message: 'conflict' });
  });
});

describe('anthropicStreamError', () => {
  it('takes the status from the error type', () => {
    expect(anthropicStreamError({ type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } }, 'anthropic')).toMatchObject({ kind: 'overloaded', upstreamStatus: 529 });
    expect(anthropicStreamError({ type: 'error', error: { type: 'invalid_request_error', message: 'bad' } }, 'anthropic')).toMatchObject({ kind: 'bad_request', upstreamStatus: 400 });
  });

  it.each(['constructor', 'toString', '__proto__', 'hasOwnProperty'])('reads an error type named %s as unknown (a 500), not as an inherited member', (type) => {
    const error = anthropicStreamError({ type: 'error', error: { type, message: 'x' } }, 'anthropic');
    expect(error).toMatchObject({ kind: 'upstream_error', upstreamStatus: 500, retryable: true });
  });

  it('classifies a response whose error type is an inherited name by its HTTP status', () => {
    expect(parseAnthropicErrorResponse(503, {}, body('constructor', 'x'), 'anthropic')).toMatchObject({ kind: 'overloaded', upstreamStatus: 503 });
    expect(parseAnthropicErrorResponse(429, {}, body('toString', 'slow'), 'anthropic')).toMatchObject({ kind: 'rate_limited', upstreamStatus: 429 });
  });
});
