import { toOpenAIError } from '@openrouter/openai-wire';
import type { GatewayError } from '@openrouter/errors';
import { parseGeminiErrorResponse, readGoogleError, toGatewayError } from './gemini-errors';
import { embeddingResponse } from '../embedding-response';
import { batchEmbedBodies, parseBatchEmbedResponse } from './gemini-embeddings';
import { fromGeminiResponse, toolCallId } from './gemini-response';
import { estimatedUsage } from './gemini-usage';

const body = (code: number, status: string, message: string, details?: unknown[]): string => JSON.stringify({ error: { code, message, status, ...(details ? { details } : {}) } });

describe('parseGeminiErrorResponse', () => {
  it.each([
    [400, 'INVALID_ARGUMENT', 'Request contains an invalid argument.', 'bad_request', false],
    [400, 'FAILED_PRECONDITION', 'User location is not supported for the API use.', 'permission_denied', true],
    [403, 'PERMISSION_DENIED', 'The caller does not have permission', 'permission_denied', true],
    [401, 'UNAUTHENTICATED', 'Request had invalid authentication credentials.', 'auth_failed', true],
    [404, 'NOT_FOUND', 'models/gemini-9 is not found for API version v1beta.', 'not_found', true],
    [429, 'RESOURCE_EXHAUSTED', 'Resource has been exhausted (e.g. check quota).', 'rate_limited', true],
    [500, 'INTERNAL', 'An internal error has occurred.', 'upstream_error', true],
    [503, 'UNAVAILABLE', 'The service is currently unavailable.', 'unavailable', true],
    [503, 'UNAVAILABLE', 'The model is overloaded. Please try again later.', 'overloaded', true],
    [504, 'DEADLINE_EXCEEDED', 'Deadline expired before operation could complete.', 'timeout', true],
  ])('maps HTTP %i %s to %s', (status, googleStatus, message, kind, retryable) => {
    const error = parseGeminiErrorResponse(status, body(status, googleStatus, message), 'gemini');
    expect(error).toMatchObject({ kind, retryable, upstreamStatus: status, provider: 'gemini' });
  });

  it('reads the retry delay from RetryInfo, else from a retry-after header', () => {
    const details = [{ '@type': 'type.googleapis.com/google.rpc.QuotaFailure' }, { '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: '31.5s' }];
    expect(parseGeminiErrorResponse(429, body(429, 'RESOURCE_EXHAUSTED', 'quota', details), 'g').retryAfterMs).toBe(31_500);
    expect(parseGeminiErrorResponse(429, body(429, 'RESOURCE_EXHAUSTED', 'quota'), 'g', 4000).retryAfterMs).toBe(4000);
  });

  it('maps token-limit errors to context_length_exceeded', () => {
    const error = parseGeminiErrorResponse(400, body(400, 'INVALID_ARGUMENT', 'The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).'), 'g');
    expect(error).toMatchObject({ kind: 'context_length_exceeded', retryable: false, code: 'context_length_exceeded' });
    // Vertex's wording.
    const vertex = parseGeminiErrorResponse(400, body(400, 'INVALID_ARGUMENT', 'Unable to submit request because the input token count is 1200000 but model only supports up to 1048576. Reduce the input token count and try again.'), 'vertex');
    expect(vertex).toMatchObject({ kind: 'context_length_exceeded', code: 'context_length_exceeded' });
  });

  it('maps key problems to a retryable auth_failed that does not repeat Google\'s text', () => {
    const invalid = parseGeminiErrorResponse(400, body(400, 'INVALID_ARGUMENT', 'API key not valid. Please pass a valid API key.', [{ reason: 'API_KEY_INVALID' }]), 'g');
    const missing = parseGeminiErrorResponse(403, body(403, 'PERMISSION_DENIED', "Method doesn't allow unregistered callers."), 'g');
    for (const error of [invalid, missing]) {
      expect(error).toMatchObject({ kind: 'auth_failed', retryable: true, code: 'upstream_auth_failed' });
      expect(error.message).not.toMatch(/API key not valid|unregistered/);
    }
  });

  describe('key material in Google\'s text', () => {
    // The shape of a real key (made up): `AIza` and 35 more characters.
    const KEY = 'AIzaSyAbm-_oW12aAAxNc8FEEh-84QT7o-9r1Ak';
    const KEY_PART = /AIza|Abm-_oW12a|84QT7o-9r1Ak/;
    const suspendedBody = JSON.stringify({
      error: {
        code: 403,
        message: `Permission denied: Consumer 'api_key:${KEY}' has been suspended.`,
        status: 'PERMISSION_DENIED',
        details: [
          {
            '@type': 'type.googleapis.com/google.rpc.ErrorInfo',
            reason: 'CONSUMER_SUSPENDED',
            domain: 'googleapis.com',
            metadata: { consumer: 'projects/123', service: 'generativelanguage.googleapis.com' },
          },
        ],
      },
    });
    /** Everything of the error a client (or the router, over gRPC) can see. */
    const clientFacing = (error: GatewayError): string => JSON.stringify({ message: error.message, code: error.code, param: error.param, kind: error.kind, openai: toOpenAIError(error) });
    const causeText = (error: GatewayError): string => (error.cause instanceof Error ? error.cause.message : '');

    it('answers a suspended key (403 CONSUMER_SUSPENDED) with a fixed message that does not quote the key', () => {
      const error = parseGeminiErrorResponse(403, suspendedBody, 'gemini');
      expect(error).toMatchObject({ kind: 'permission_denied', retryable: true, code: 'upstream_access_denied', upstreamStatus: 403, provider: 'gemini' });
      expect(error.message).toBe('The provider "gemini" refused the gateway\'s key or account.');
      expect(clientFacing(error)).not.toMatch(KEY_PART);
      expect(clientFacing(error)).not.toMatch(/api_key|suspended/i);
      expect(toOpenAIError(error)).toMatchObject({ status: 502, body: { error: { type: 'server_error', code: 'upstream_access_denied' } } });
      // The log keeps Google's words and the reason, without the key.
      expect(causeText(error)).toBe("PERMISSION_DENIED (CONSUMER_SUSPENDED): Permission denied: Consumer 'api_key:[redacted]' has been suspended.");
    });

    it('does not quote the key when the suspension arrives as a stream error event or without a status', () => {
      const viaStream = toGatewayError(readGoogleError(JSON.parse(suspendedBody)), 403, 'gemini');
      const noStatus = parseGeminiErrorResponse(403, JSON.stringify({ error: { message: `Consumer 'api_key:${KEY}' has been suspended.` } }), 'gemini');
      const reasonOnly = parseGeminiErrorResponse(
        400,
        JSON.stringify({ error: { code: 400, status: 'FAILED_PRECONDITION', message: `Consumer ${KEY} is suspended.`, details: [{ reason: 'CONSUMER_SUSPENDED' }] } }),
        'gemini',
      );
      for (const error of [viaStream, noStatus, reasonOnly]) {
        expect(error).toMatchObject({ kind: 'permission_denied', retryable: true, code: 'upstream_access_denied' });
        expect(clientFacing(error)).not.toMatch(KEY_PART);
        expect(causeText(error)).not.toMatch(KEY_PART);
      }
    });

    it("keeps the operator's Google Cloud project out of what clients read, in answers and stream error events alike", () => {
      const missing = { error: { code: 404, status: 'NOT_FOUND', message: 'Publisher Model `projects/acme-prod-4711/locations/europe-west4/publishers/google/models/gemini-x` was not found.' } };
      const quota = { error: { code: 429, status: 'RESOURCE_EXHAUSTED', message: "Quota exceeded for quota metric 'Generate requests' and limit 'per minute' of service 'aiplatform.googleapis.com' for consumer 'project_number:123456789012'." } };
      for (const error of [parseGeminiErrorResponse(404, JSON.stringify(missing), 'vertex'), toGatewayError(readGoogleError(missing), 404, 'vertex'), toGatewayError(readGoogleError(quota), 429, 'vertex')]) {
        expect(clientFacing(error)).not.toMatch(/acme-prod-4711|europe-west4|123456789012/);
        expect(causeText(error)).not.toMatch(/acme-prod-4711|123456789012/);
      }
      expect(clientFacing(toGatewayError(readGoogleError(missing), 404, 'vertex'))).toContain('projects/…/publishers/google/models/gemini-x');
    });

    it('gives UNAUTHENTICATED the fixed auth_failed message', () => {
      const error = parseGeminiErrorResponse(401, body(401, 'UNAUTHENTICATED', `Request had invalid authentication credentials for api_key:${KEY}.`), 'gemini');
      expect(error).toMatchObject({ kind: 'auth_failed', retryable: true, code: 'upstream_auth_failed' });
      expect(error.message).toBe('The provider "gemini" rejected the gateway\'s API key.');
      expect(clientFacing(error)).not.toMatch(KEY_PART);
      expect(causeText(error)).not.toMatch(KEY_PART);
    });

    it.each([
      [429, 'RESOURCE_EXHAUSTED', `Quota exceeded for quota metric 'generate_content_requests' for consumer 'api_key:${KEY}'.`, 'rate_limited'],
      [500, 'INTERNAL', `Internal error calling https://generativelanguage.googleapis.com/v1beta/models/x:generateContent?alt=sse&key=${KEY}`, 'upstream_error'],
      [400, 'INVALID_ARGUMENT', `Request contains an invalid argument (x-goog-api-key: ${KEY.slice(0, 20)}).`, 'bad_request'],
      [503, 'UNAVAILABLE', `The model is overloaded for ${KEY}. Please try again later.`, 'overloaded'],
      [400, 'INVALID_ARGUMENT', `The input token count (1200000) exceeds the maximum number of tokens allowed (1048576) for key=${KEY}.`, 'context_length_exceeded'],
    ])('redacts the key in the text it passes on (HTTP %i %s as %s)', (status, googleStatus, message, kind) => {
      const error = parseGeminiErrorResponse(status, body(status, googleStatus, message), 'gemini');
      expect(error.kind).toBe(kind);
      expect(error.message).toContain('[redacted]');
      expect(clientFacing(error)).not.toMatch(KEY_PART);
    });

    it('keeps Google\'s text for errors that name no key', () => {
      const error = parseGeminiErrorResponse(400, body(400, 'FAILED_PRECONDITION', 'User location is not supported for the API use.'), 'gemini');
      expect(error.message).toBe('The provider "gemini" failed (FAILED_PRECONDITION): User location is not supported for the API use.');
    });
  });

  it('falls back to the HTTP status for bodies that are not Google errors, including list-wrapped ones', () => {
    expect(parseGeminiErrorResponse(502, '<html>Bad gateway</html>', 'g')).toMatchObject({ kind: 'upstream_error', upstreamStatus: 502 });
    expect(parseGeminiErrorResponse(429, `[${body(429, 'RESOURCE_EXHAUSTED', 'q')}]`, 'g')).toMatchObject({ kind: 'rate_limited' });
    expect(parseGeminiErrorResponse(413, '', 'g')).toMatchObject({ kind: 'bad_request', retryable: false });
  });
});

describe('fromGeminiResponse edge cases', () => {
  const ctx = { requestId: 'req-9', created: 1, upstreamModel: 'gemini-2.5-flash', provider: 'g', estimateUsage: (text: string) => estimatedUsage(5, text.length) };

  it('turns a blocked prompt into content_filtered', () => {
    expect(() => fromGeminiResponse({ promptFeedback: { blockReason: 'SAFETY' } }, ctx)).toThrow(expect.objectContaining({ kind: 'content_filtered', retryable: false }));
  });

  it('estimates usage when Gemini reports none, and keeps synthesized ids stable', () => {
    const json = { candidates: [{ content: { parts: [{ functionCall: { name: 'f', args: { a: 1 } } }] }, finishReason: 'STOP' }] };
    const first = fromGeminiResponse(json, ctx);
    const again = fromGeminiResponse(json, ctx);
    expect(first.usage).toMatchObject({ promptTokens: 5, completionTokens: 7, estimated: true });
    expect(first.choices[0]?.message?.toolCalls[0]?.id).toBe(again.choices[0]?.message?.toolCalls[0]?.id);
    expect(first.choices[0]?.message?.toolCalls[0]?.id).toBe(toolCallId('req-9', 0, 0, 'f'));
    expect(first.id).toBe('chatcmpl-req-9');
  });

  it('rejects a response without candidates or with the wrong shape as upstream_error', () => {
    expect(() => fromGeminiResponse({}, ctx)).toThrow(expect.objectContaining({ kind: 'upstream_error' }));
    expect(() => fromGeminiResponse({ candidates: 'nope' }, ctx)).toThrow(expect.objectContaining({ kind: 'upstream_error' }));
  });
});

describe('Gemini embeddings', () => {
  it('batches at most 100 texts per call and refuses token ids', () => {
    const texts = Array.from({ length: 205 }, (_, i) => `t${i}`);
    const bodies = batchEmbedBodies({ model: 'e', texts, tokenInputs: [], dimensions: 8, user: 'u', extraJson: '' }, 'models/gemini-embedding-001');
    expect(bodies.map((b) => b.requests.length)).toEqual([100, 100, 5]);
    expect(bodies[2]?.requests[4]).toEqual({ model: 'models/gemini-embedding-001', content: { parts: [{ text: 't204' }] }, outputDimensionality: 8 });
    expect(() => batchEmbedBodies({ model: 'e', texts: [], tokenInputs: [{ ids: [1, 2] }], dimensions: undefined, user: undefined, extraJson: '' }, 'models/x')).toThrow(
      expect.objectContaining({ kind: 'bad_request', param: 'input' }),
    );
  });

  it('turns values into float32 little-endian bytes with estimated usage', () => {
    const vectors = parseBatchEmbedResponse({ embeddings: [{ values: [0.5, -1] }, { values: [0.25, 2] }] }, 2, 'g');
    const request = { model: 'e', texts: ['hello world', 'hi'], tokenInputs: [], dimensions: undefined, user: undefined, extraJson: '' };
    const response = embeddingResponse(request, { model: 'gemini-embedding-001', vectors, reportedTokens: undefined }, 'g');
    expect(response.data.map((d) => [d.index, d.vectorF32le.readFloatLE(0), d.vectorF32le.readFloatLE(4)])).toEqual([
      [0, 0.5, -1],
      [1, 0.25, 2],
    ]);
    expect(response.usage).toEqual({ promptTokens: 3, completionTokens: 0, totalTokens: 3, cachedReadTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, estimated: true });
    expect(() => parseBatchEmbedResponse({ embeddings: [] }, 1, 'g')).toThrow(expect.objectContaining({ kind: 'upstream_error' }));
  });
});
