import { ERROR_KINDS, GatewayError } from '@openrouter/errors';
import { parseOpenAIErrorResponse, toOpenAIError } from './openai-errors';

describe('OpenAI error mapping', () => {
  it.each(ERROR_KINDS.map((k) => [k]))('maps %s to an OpenAI error body with a 4xx/5xx status', (kind) => {
    const response = toOpenAIError(new GatewayError(kind, 'msg'));
    expect(response.status).toBeGreaterThanOrEqual(400);
    expect(response.body.error).toEqual(expect.objectContaining({ message: expect.any(String), type: expect.any(String) }));
  });

  it('never turns client mistakes into 5xx', () => {
    for (const kind of ['bad_request', 'auth_failed', 'not_found', 'context_length_exceeded', 'budget_exceeded', 'rate_limited'] as const) {
      expect(toOpenAIError(new GatewayError(kind, 'x')).status).toBeLessThan(500);
    }
  });

  it('rounds Retry-After up to whole seconds', () => {
    expect(toOpenAIError(new GatewayError('rate_limited', 'x', { retryAfterMs: 1200 })).headers['retry-after']).toBe('2');
  });

  it.each([
    [429, '3', '{"error":{"message":"slow"}}', 'rate_limited'],
    [400, undefined, '{"error":{"message":"too long","code":"context_length_exceeded"}}', 'context_length_exceeded'],
    [400, undefined, "{\"error\":{\"message\":\"This model's maximum context length is 10\"}}", 'context_length_exceeded'],
    [400, undefined, '{"error":{"code":"content_filter"}}', 'content_filtered'],
    [400, undefined, '{"error":{"message":"bad","param":"x"}}', 'bad_request'],
    [401, undefined, 'not json', 'auth_failed'],
    [404, undefined, '', 'not_found'],
    [500, undefined, '', 'upstream_error'],
    [503, undefined, '', 'overloaded'],
    [529, undefined, '', 'overloaded'],
    [504, undefined, '', 'timeout'],
  ])('reads a provider %i as %s', (status, retryAfter, body, kind) => {
    const error = parseOpenAIErrorResponse(status, retryAfter, body, 'p');
    expect(error.kind).toBe(kind);
    expect(error.upstreamStatus).toBe(status);
    if (retryAfter) expect(error.retryAfterMs).toBe(3000);
  });
});
