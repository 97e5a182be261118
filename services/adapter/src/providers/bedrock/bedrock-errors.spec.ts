import { normalizeErrorType, parseBedrockErrorResponse } from './bedrock-errors';

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

  it('normalises error types from headers, bodies and stream frames alike', () => {
    expect(normalizeErrorType('ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/')).toBe('throttlingexception');
    expect(normalizeErrorType('com.amazon.coral.service#ThrottlingException')).toBe('throttlingexception');
    expect(normalizeErrorType('throttlingException')).toBe('throttlingexception');
    expect(normalizeErrorType(undefined)).toBeUndefined();
  });
});
