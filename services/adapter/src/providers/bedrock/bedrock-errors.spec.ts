import { toOpenAIError } from '@openrouter/openai-wire';
import { normalizeErrorType, parseBedrockErrorResponse, toGatewayError } from './bedrock-errors';

const SUFFIX = ':http://internal.amazon.com/coral/com.amazon.bedrock/';

describe('Bedrock error mapping', () => {
  it.each([
    [400, 'ValidationException', 'Malformed input request: #/temperature: 1.5 is not less or equal to 1', 'bad_request', false],
    [400, 'ValidationException', 'Input is too long for requested model.', 'context_length_exceeded', false],
    [400, 'ValidationException', 'prompt is too long: 210000 tokens > 200000 maximum', 'context_length_exceeded', false],
    [403, 'AccessDeniedException', "You don't have access to the model with the specified model ID.", 'permission_denied', true],
    [403, 'UnrecognizedClientException', 'The security token included in the request is invalid.', 'auth_failed', true],
    [403, 'InvalidSignatureException', 'The request signature we calculated does not match the signature you provided.', 'auth_failed', true],
    [403, 'ExpiredTokenException', 'The security token included in the request is expired', 'auth_failed', true],
    [404, 'ResourceNotFoundException', 'Could not resolve the foundation model from the provided model identifier.', 'not_found', true],
    [429, 'ThrottlingException', 'Too many requests, please wait before trying again.', 'rate_limited', true],
    [503, 'ServiceUnavailableException', 'Bedrock is unable to process your request.', 'unavailable', true],
    [429, 'ModelNotReadyException', 'Model is not ready for inference.', 'unavailable', true],
    [408, 'ModelTimeoutException', 'Model has timed out in processing the request.', 'timeout', true],
    [500, 'InternalServerException', 'The system encountered an unexpected error.', 'upstream_error', true],
    [424, 'ModelErrorException', 'The model returned an error.', 'upstream_error', true],
    [400, 'ServiceQuotaExceededException', 'Your request exceeds the service quota for your account.', 'rate_limited', true],
  ])('maps HTTP %i %s to %s', (status, type, message, kind, retryable) => {
    const error = parseBedrockErrorResponse(status, `${type}${SUFFIX}`, JSON.stringify({ message }), 'bedrock-east');
    expect(error).toMatchObject({ kind, retryable, upstreamStatus: status, provider: 'bedrock-east' });
  });

  it('reads the type from the body when the header is missing, and falls back to the status', () => {
    expect(parseBedrockErrorResponse(400, undefined, JSON.stringify({ __type: 'com.amazon.coral.service#ThrottlingException', message: 'slow' }), 'b')).toMatchObject({ kind: 'rate_limited' });
    expect(parseBedrockErrorResponse(502, undefined, '<html>bad gateway</html>', 'b')).toMatchObject({ kind: 'upstream_error', retryable: true });
    expect(parseBedrockErrorResponse(429, undefined, '', 'b', 3000)).toMatchObject({ kind: 'rate_limited', retryAfterMs: 3000 });
    expect(parseBedrockErrorResponse(404, undefined, '{}', 'b')).toMatchObject({ kind: 'not_found' });
  });

  it('keeps the provider text of a validation error for the client', () => {
    const error = parseBedrockErrorResponse(400, 'ValidationException', '{"message":"A conversation must start with a user message."}', 'b');
    expect(error.message).toBe('A conversation must start with a user message.');
  });

  it('never passes on the text of an auth failure, and redacts access key ids elsewhere', () => {
    const auth = parseBedrockErrorResponse(403, 'InvalidSignatureException', '{"message":"The Canonical String for this request should have been POST /model/x AKIAABCDEFGHIJKLMNOP"}', 'b');
    expect(auth.message).not.toContain('Canonical');
    expect(auth.code).toBe('upstream_auth_failed');
    const denied = parseBedrockErrorResponse(403, 'AccessDeniedException', '{"message":"User AKIAABCDEFGHIJKLMNOP is not authorized"}', 'b');
    expect(denied.message).not.toContain('AKIAABCDEFGHIJKLMNOP');
  });

  it.each([
    'The provided model identifier is invalid.',
    "Invocation of model ID anthropic.claude-sonnet-4-20250514-v1:0 with on-demand throughput isn't supported. Retry your request with the ID or ARN of an inference profile that contains this model.",
  ])('maps a ValidationException about the deployment\'s model id to a retryable not_found (502 upstream_not_found): %s', (message) => {
    const error = parseBedrockErrorResponse(400, `ValidationException${SUFFIX}`, JSON.stringify({ message }), 'b');
    expect(error).toMatchObject({ kind: 'not_found', retryable: true, upstreamStatus: 400 });
    expect(error.message).toContain(message);
    expect(toOpenAIError(error)).toMatchObject({ status: 502, body: { error: { code: 'upstream_not_found' } } });
  });

  it("keeps an AccessDeniedException's text (the gateway's AWS account and role) from the client, in the cause for the log", () => {
    const text =
      'User: arn:aws:sts::123456789012:assumed-role/GatewayRole/i-0abc is not authorized to perform: bedrock:InvokeModelWithResponseStream on resource: arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-x';
    const http = parseBedrockErrorResponse(403, `AccessDeniedException${SUFFIX}`, JSON.stringify({ message: text }), 'b');
    // The same exception as a ConverseStream frame.
    const frame = toGatewayError({ status: 403, errorType: 'accessDeniedException', message: text }, 'b');
    for (const error of [http, frame]) {
      expect(error).toMatchObject({ kind: 'permission_denied', retryable: true, code: 'upstream_access_denied' });
      expect(error.message).not.toContain('123456789012');
      expect(JSON.stringify(toOpenAIError(error).body)).not.toMatch(/123456789012|GatewayRole/);
      expect(String(error.cause)).toContain('arn:aws:sts::123456789012:assumed-role/GatewayRole');
    }
    // A 403 with no error type is the same refusal.
    expect(parseBedrockErrorResponse(403, undefined, JSON.stringify({ message: text }), 'b')).toMatchObject({ kind: 'permission_denied', retryable: true, message: expect.not.stringContaining('123456789012') });
  });

  it.each([
    'The model returned the following errors: input length and `max_tokens` exceed context limit: 199759 + 8192 > 200000, decrease input length or `max_tokens` and try again',
    'The model returned the following errors: prompt is too long: 210415 tokens > 200000 maximum',
  ])("maps Claude's context overflow, passed through in a ValidationException, to context_length_exceeded: %s", (message) => {
    const http = parseBedrockErrorResponse(400, `ValidationException${SUFFIX}`, JSON.stringify({ message }), 'b');
    // The same exception as a ConverseStream frame.
    const frame = toGatewayError({ status: 400, errorType: 'validationException', message }, 'b');
    for (const error of [http, frame]) {
      expect(error).toMatchObject({ kind: 'context_length_exceeded', code: 'context_length_exceeded', upstreamStatus: 400 });
      expect(toOpenAIError(error)).toMatchObject({ status: 400, body: { error: { code: 'context_length_exceeded' } } });
    }
  });

  it("redacts the AWS account id in the ARNs a passed-on message quotes, and keeps the rest of the text", () => {
    const profile = 'arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-20250514-v1:0';
    const notFound = parseBedrockErrorResponse(400, `ValidationException${SUFFIX}`, JSON.stringify({ message: `The provided model identifier is invalid: ${profile}` }), 'b');
    const invalid = parseBedrockErrorResponse(400, `ValidationException${SUFFIX}`, JSON.stringify({ message: `The guardrail arn:aws-us-gov:bedrock:us-gov-west-1:123456789012:guardrail/abc1234 was not found.` }), 'b');
    const failed = toGatewayError({ status: 500, errorType: 'internalServerException', message: `Failed to read arn:aws:sts::123456789012:assumed-role/GatewayRole/x` }, 'b');
    expect(notFound).toMatchObject({ kind: 'not_found' });
    expect(invalid).toMatchObject({ kind: 'bad_request' });
    for (const error of [notFound, invalid, failed]) {
      expect(error.message).not.toContain('123456789012');
      expect(JSON.stringify(toOpenAIError(error).body)).not.toContain('123456789012');
    }
    expect(notFound.message).toContain('arn:aws:bedrock:us-east-1:[redacted]:inference-profile/us.anthropic.claude-sonnet-4-20250514-v1:0');
    expect(invalid.message).toBe('The guardrail arn:aws-us-gov:bedrock:us-gov-west-1:[redacted]:guardrail/abc1234 was not found.');
    expect(failed.message).toContain('arn:aws:sts::[redacted]:assumed-role/GatewayRole/x');
  });

  it('normalises error types from headers, bodies and stream frames alike', () => {
    expect(normalizeErrorType('ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/')).toBe('throttlingexception');
    expect(normalizeErrorType('com.amazon.coral.service#ThrottlingException')).toBe('throttlingexception');
    expect(normalizeErrorType('throttlingException')).toBe('throttlingexception');
    expect(normalizeErrorType(undefined)).toBeUndefined();
  });
});
