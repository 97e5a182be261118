import { ERROR_KINDS, type ErrorKind, GatewayError } from '@openrouter/errors';
import { parseOpenAIErrorResponse, parseOpenAIStreamError, parseRetryAfter, toOpenAIError } from './openai-errors';

describe('toOpenAIError', () => {
  const table: Record<ErrorKind, [number, string, string | null]> = {
    bad_request: [400, 'invalid_request_error', null],
    auth_failed: [401, 'authentication_error', 'invalid_api_key'],
    permission_denied: [403, 'permission_error', null],
    not_found: [404, 'invalid_request_error', null],
    conflict: [409, 'invalid_request_error', 'conflict'],
    rate_limited: [429, 'rate_limit_error', 'rate_limit_exceeded'],
    budget_exceeded: [402, 'insufficient_quota', 'budget_exceeded'],
    overloaded: [503, 'server_error', 'overloaded'],
    context_length_exceeded: [400, 'invalid_request_error', 'context_length_exceeded'],
    content_filtered: [400, 'invalid_request_error', 'content_filter'],
    timeout: [504, 'server_error', 'timeout'],
    unavailable: [503, 'server_error', 'unavailable'],
    upstream_error: [502, 'server_error', 'upstream_error'],
    cancelled: [499, 'invalid_request_error', 'cancelled'],
    internal: [500, 'server_error', null],
  };

  it.each(ERROR_KINDS.map((k) => [k, ...table[k]] as const))('maps %s to HTTP %i, type %s, code %s', (kind, status, type, code) => {
    const response = toOpenAIError(new GatewayError(kind, 'Something specific.'));
    expect(response.status).toBe(status);
    expect(response.body.error).toMatchObject({ type, code, param: null });
  });

  it("names the kind of the gateway's own rate limit in the type, as OpenAI does; other 429s keep rate_limit_error", () => {
    const limited = (limitKind?: 'requests' | 'tokens') => Object.assign(new GatewayError('rate_limited', 'Rate limit reached.', { code: 'rate_limit_exceeded', retryAfterMs: 1500 }), { limitKind });
    expect(toOpenAIError(limited('requests')).body.error).toMatchObject({ type: 'requests', code: 'rate_limit_exceeded' });
    expect(toOpenAIError(limited('tokens'))).toMatchObject({ status: 429, headers: { 'retry-after': '2', 'retry-after-ms': '1500' }, body: { error: { type: 'tokens' } } });
    expect(toOpenAIError(limited()).body.error.type).toBe('rate_limit_error');
  });

  it("answers a provider's refusal of the gateway's account as a 502, not as the client's 403", () => {
    const refused = toOpenAIError(new GatewayError('permission_denied', 'The provider "openai" refused the request.', { upstreamStatus: 403, provider: 'openai' }));
    expect(refused.status).toBe(502);
    expect(refused.body.error).toMatchObject({ type: 'server_error', code: 'upstream_access_denied' });
    expect(toOpenAIError(new GatewayError('permission_denied', 'Only admins may do this.')).status).toBe(403);
  });

  it('keeps the message and param of client errors', () => {
    expect(toOpenAIError(new GatewayError('bad_request', "Invalid value for 'temperature'.", { param: 'temperature', code: 'invalid_value' })).body).toEqual({
      error: { message: "Invalid value for 'temperature'.", type: 'invalid_request_error', param: 'temperature', code: 'invalid_value' },
    });
  });

  it.each([
    ['request_too_large', 413],
    ['url_too_long', 414],
    ['headers_too_large', 431],
    ['request_timeout', 408],
    ['idempotency_key_reused', 422],
    ['invalid_value', 400],
    ['constructor', 400],
  ])('answers a bad_request with code %s with HTTP %i', (code, status) => {
    const response = toOpenAIError(new GatewayError('bad_request', 'Too much.', { code }));
    expect(response.status).toBe(status);
    expect(response.body.error).toEqual({ message: 'Too much.', type: 'invalid_request_error', param: null, code });
  });

  it("keeps a content_filtered error's own code: the gateway's guardrails say content_policy_violation, a provider's filter content_filter", () => {
    const refused = toOpenAIError(new GatewayError('content_filtered', 'Refused by a guardrail.', { param: 'messages[0].content', code: 'content_policy_violation' }));
    expect(refused).toEqual({ status: 400, headers: {}, body: { error: { message: 'Refused by a guardrail.', type: 'invalid_request_error', param: 'messages[0].content', code: 'content_policy_violation' } } });
    expect(toOpenAIError(parseOpenAIErrorResponse(400, undefined, JSON.stringify({ error: { message: 'blocked', code: 'content_filter' } }), 'openai')).body.error.code).toBe('content_filter');
  });

  it('keeps the code given for not_found', () => {
    expect(toOpenAIError(new GatewayError('not_found', "The model 'x' does not exist.", { param: 'model', code: 'model_not_found' })).body.error).toMatchObject({ code: 'model_not_found', param: 'model' });
  });

  it('answers a provider refusing the gateway (its credentials, a model it does not know) with 502, not as the client’s 401 or 404', () => {
    const auth = toOpenAIError(parseOpenAIErrorResponse(401, undefined, JSON.stringify({ error: { message: 'Incorrect API key provided: sk-proj-abc.' } }), 'openai'));
    expect(auth.status).toBe(502);
    expect(auth.body.error).toMatchObject({ type: 'server_error', code: 'upstream_auth_failed' });
    const missing = toOpenAIError(parseOpenAIErrorResponse(404, undefined, JSON.stringify({ error: { message: 'model not found', code: 'model_not_found' } }), 'openai'));
    expect(missing.status).toBe(502);
    expect(missing.body.error).toMatchObject({ type: 'server_error', code: 'upstream_not_found' });
  });

  it('hides the text of internal errors', () => {
    const response = toOpenAIError(new GatewayError('internal', 'db password=hunter2 failed', { param: 'x', code: 'y' }));
    expect(response.body.error).toEqual({ message: 'The gateway failed to process the request.', type: 'server_error', param: null, code: null });
  });

  it.each([
    [1200, '2'],
    [1000, '1'],
    [1, '1'],
    [0, '0'],
  ])('sends retry-after %ims as whole seconds rounded up (%s), and retry-after-ms', (ms, header) => {
    expect(toOpenAIError(new GatewayError('rate_limited', 'x', { retryAfterMs: ms })).headers).toEqual({ 'retry-after': header, 'retry-after-ms': String(Math.ceil(ms)) });
  });

  it('sends no retry-after when the wait is unknown', () => {
    expect(toOpenAIError(new GatewayError('rate_limited', 'x')).headers).toEqual({});
  });
});

describe('parseOpenAIErrorResponse', () => {
  const body = (error: Record<string, unknown>): string => JSON.stringify({ error });

  it.each([
    [400, body({ message: 'too long', code: 'context_length_exceeded' }), 'context_length_exceeded'],
    [400, body({ message: "This model's maximum context length is 8192 tokens. However, you requested 9000 tokens." }), 'context_length_exceeded'],
    [400, body({ message: 'blocked', code: 'content_filter' }), 'content_filtered'],
    [400, body({ message: 'Your request was rejected by the safety system.', type: 'image_generation_user_error', param: '', code: 'moderation_blocked' }), 'content_filtered'],
    [400, body({ message: 'Your request was rejected as a result of our safety system.', code: 'content_policy_violation' }), 'content_filtered'],
    [400, body({ message: 'bad', param: 'x', code: 'invalid_value' }), 'bad_request'],
    [422, JSON.stringify({ detail: 'field required' }), 'bad_request'],
    [401, body({ message: 'Incorrect API key provided: sk-proj-abcdef123456.' }), 'auth_failed'],
    [402, body({ message: 'out of credits' }), 'upstream_error'],
    [403, body({ message: 'region not supported' }), 'permission_denied'],
    [404, body({ message: 'model not found', code: 'model_not_found' }), 'not_found'],
    [408, '', 'timeout'],
    [409, 'conflict', 'bad_request'],
    [429, body({ message: 'slow down' }), 'rate_limited'],
    [500, '', 'upstream_error'],
    [502, '<html>bad gateway</html>', 'upstream_error'],
    [503, '', 'overloaded'],
    [529, body({ type: 'overloaded_error', message: 'Overloaded' }), 'overloaded'],
    [504, '', 'timeout'],
    [599, '', 'upstream_error'],
  ])('reads a provider HTTP %i as %s', (status, text, kind) => {
    const error = parseOpenAIErrorResponse(status, undefined, text, 'acme');
    expect(error).toBeInstanceOf(GatewayError);
    expect(error.kind).toBe(kind);
    expect(error.upstreamStatus).toBe(status);
    expect(error.provider).toBe('acme');
  });

  it('keeps the provider message and param of a 400', () => {
    expect(parseOpenAIErrorResponse(400, undefined, body({ message: "Invalid 'tools[0].function.name'", param: 'tools[0].function.name', code: 'invalid_value' }), 'acme')).toMatchObject({
      kind: 'bad_request',
      message: "Invalid 'tools[0].function.name'",
      param: 'tools[0].function.name',
      code: 'invalid_value',
    });
  });

  it('never echoes a key from a 401', () => {
    const error = parseOpenAIErrorResponse(401, undefined, body({ message: 'Incorrect API key provided: sk-proj-abcdef123456. You can find your API key at …' }), 'acme');
    expect(error.message).not.toMatch(/sk-|abcdef/);
  });

  it('redacts credentials other errors quote', () => {
    const error = parseOpenAIErrorResponse(403, undefined, body({ message: 'key sk-live-1234567890 is not allowed; header was Bearer abc.def' }), 'acme');
    expect(error.message).not.toMatch(/1234567890|abc\.def/);
    expect(error.message).toContain('[redacted]');
  });

  it.each([
    ['3', undefined, 3000],
    ['0.5', undefined, 500],
    [undefined, '1500', 1500],
    ['10', '250', 250],
    [undefined, undefined, undefined],
    ['soon', undefined, undefined],
  ])('reads retry-after %p / retry-after-ms %p as %p ms', (retryAfter, retryAfterMs, expected) => {
    expect(parseOpenAIErrorResponse(429, retryAfter, '', 'acme', retryAfterMs).retryAfterMs).toBe(expected);
  });

  it('reads a Retry-After HTTP date', () => {
    const inTenSeconds = new Date(Date.now() + 10_000).toUTCString();
    const ms = parseOpenAIErrorResponse(429, inTenSeconds, '', 'acme').retryAfterMs ?? 0;
    expect(ms).toBeGreaterThan(8_000);
    expect(ms).toBeLessThanOrEqual(10_000);
    expect(parseRetryAfter('Wed, 21 Oct 2015 07:28:00 GMT')).toBe(0);
  });

  it('marks retryable kinds retryable', () => {
    expect(parseOpenAIErrorResponse(429, undefined, '', 'acme').retryable).toBe(true);
    expect(parseOpenAIErrorResponse(503, undefined, '', 'acme').retryable).toBe(true);
    expect(parseOpenAIErrorResponse(400, undefined, '', 'acme').retryable).toBe(false);
  });

  it('marks a 403 retryable, as a 401 and a 404: another deployment (key, region, provider) may be allowed', () => {
    const refused = parseOpenAIErrorResponse(403, undefined, body({ message: 'Country, region, or territory not supported', code: 'unsupported_country_region_territory' }), 'acme');
    expect(refused).toMatchObject({ kind: 'permission_denied', retryable: true, upstreamStatus: 403 });
    expect(toOpenAIError(refused).status).toBe(502);
  });

  it("reads OpenAI's insufficient_quota 429 as a 402 is read: the gateway's account out of credit, a retryable 502 upstream_quota_exceeded, no rate limit", () => {
    const quota = body({ message: 'You exceeded your current quota, please check your plan and billing details.', type: 'insufficient_quota', param: null, code: 'insufficient_quota' });
    for (const error of [parseOpenAIErrorResponse(429, '20', quota, 'acme'), parseOpenAIErrorResponse(402, undefined, body({ message: 'out of credits' }), 'acme')]) {
      expect(error).toMatchObject({ kind: 'upstream_error', code: 'upstream_quota_exceeded', retryable: true, retryAfterMs: undefined });
      expect(toOpenAIError(error)).toMatchObject({ status: 502, headers: {}, body: { error: { type: 'server_error', code: 'upstream_quota_exceeded' } } });
    }
    // A rate limit (OpenAI's, Azure's `"code": "429"`) stays one.
    expect(parseOpenAIErrorResponse(429, '3', body({ message: 'Rate limit reached', type: 'requests', code: 'rate_limit_exceeded' }), 'acme')).toMatchObject({ kind: 'rate_limited', retryAfterMs: 3000 });
    expect(parseOpenAIErrorResponse(429, '6', JSON.stringify({ error: { code: '429', message: 'Requests to the ChatCompletions_Create Operation … Please retry after 6 seconds.' } }), 'az')).toMatchObject({ kind: 'rate_limited', retryAfterMs: 6000 });
  });

  it("redacts the operator's OpenAI organization and project ids and Azure GUIDs from the text a client gets", () => {
    const limited = parseOpenAIErrorResponse(
      429,
      undefined,
      body({ message: 'Rate limit reached for gpt-4o in organization org-AbCdEf123456 on tokens per min (TPM): Limit 30000, Used 29000, Requested 2000.', type: 'tokens', code: 'rate_limit_exceeded' }),
      'openai',
    );
    expect(limited.message).toBe('The provider "openai" is rate limiting requests: Rate limit reached for gpt-4o in organization [redacted] on tokens per min (TPM): Limit 30000, Used 29000, Requested 2000.');
    const project = parseOpenAIErrorResponse(403, undefined, body({ message: 'Project `proj_Xy12ab34Cd56ef78Gh90ij12` does not have access to model `o3`' }), 'openai');
    expect(project.message).not.toContain('proj_Xy12');
    expect(project.message).toContain('Project `[redacted]` does not have access to model `o3`');
    const azure = parseOpenAIErrorResponse(
      403,
      undefined,
      JSON.stringify({ error: { code: 'PermissionDenied', message: 'The principal `4f8c2a1e-93b7-4d5e-a0c6-1b2d3e4f5a6b` lacks the required data action on /subscriptions/0F1E2D3C-4B5A-6978-8796-A5B4C3D2E1F0/resourceGroups/rg.' } }),
      'az',
    );
    expect(azure.message).toBe('The provider "az" refused the request: The principal `[redacted]` lacks the required data action on /subscriptions/[redacted]/resourceGroups/rg.');
    // Words that only look alike stay.
    expect(parseOpenAIErrorResponse(400, undefined, body({ message: 'An org-wide limit applies to proj_a.' }), 'acme').message).toBe('An org-wide limit applies to proj_a.');
    expect(toOpenAIError(limited).body.error.message).not.toContain('AbCdEf123456');
  });

  it('round-trips through toOpenAIError for the client-visible kinds', () => {
    const error = parseOpenAIErrorResponse(400, undefined, body({ message: "This model's maximum context length is 10 tokens." }), 'acme');
    expect(toOpenAIError(error)).toMatchObject({ status: 400, body: { error: { code: 'context_length_exceeded', type: 'invalid_request_error' } } });
  });
});

describe('parseOpenAIStreamError', () => {
  const event = (error: Record<string, unknown>): string => JSON.stringify({ error });

  it.each([
    // The event's own status: vLLM's numeric code, LiteLLM's code as digits, a `status` field.
    ['vLLM 400', event({ object: 'error', message: 'This model has a maximum context length of 4096 tokens.', type: 'BadRequestError', param: null, code: 400 }), 'context_length_exceeded', 400, false],
    ['LiteLLM "429"', event({ message: 'litellm.RateLimitError: slow down', type: 'None', param: 'None', code: '429' }), 'rate_limited', 429, true],
    ['a status field', event({ message: 'not allowed', status: 403 }), 'permission_denied', 403, true],
    // Else its code or type, as OpenAI answers them.
    ['context_length_exceeded', event({ message: 'too long', type: 'invalid_request_error', code: 'context_length_exceeded' }), 'context_length_exceeded', 400, false],
    ['invalid_request_error', event({ message: "Invalid 'tools'", type: 'invalid_request_error', param: 'tools', code: null }), 'bad_request', 400, false],
    ['content_filter', event({ message: 'The response was filtered', type: null, code: 'content_filter' }), 'content_filtered', 400, false],
    ['rate_limit_error', event({ message: 'slow down', type: 'rate_limit_error' }), 'rate_limited', 429, true],
    ['rate_limit_exceeded', event({ message: 'slow down', type: 'requests', code: 'rate_limit_exceeded' }), 'rate_limited', 429, true],
    ['model_not_found', event({ message: 'no such model', type: 'invalid_request_error', code: 'model_not_found' }), 'not_found', 404, true],
    // Else a failure of the provider.
    ['server_error', event({ message: 'The server had an error while processing your request.', type: 'server_error', param: null, code: null }), 'upstream_error', 500, true],
    ['a bare string', JSON.stringify({ error: 'boom' }), 'upstream_error', 500, true],
  ])('reads an error event (%s) as %s, status %i', (_name, data, kind, status, retryable) => {
    expect(parseOpenAIStreamError(data, 'acme')).toMatchObject({ kind, upstreamStatus: status, retryable, provider: 'acme' });
  });

  it("reads insufficient_quota as the account's quota, failed over", () => {
    expect(parseOpenAIStreamError(event({ message: 'You exceeded your current quota.', type: 'insufficient_quota', code: 'insufficient_quota' }), 'acme')).toMatchObject({
      kind: 'upstream_error',
      code: 'upstream_quota_exceeded',
      retryable: true,
    });
  });

  it("answers a content filter's refusal to the client as the 400 a non-streamed one is", () => {
    const filtered = toOpenAIError(parseOpenAIStreamError(event({ message: 'filtered', code: 'content_filter' }), 'acme'));
    expect(filtered).toMatchObject({ status: 400, body: { error: { type: 'invalid_request_error', code: 'content_filter' } } });
  });
});
