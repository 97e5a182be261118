import { Metadata, status } from '@grpc/grpc-js';
import { GRPC_MESSAGE_MAX_BYTES } from '@openrouter/config';
import { GatewayError } from '@openrouter/errors';
import { fromGrpcError, toGrpcStatus } from './grpc-errors';
import { MAX_MESSAGE_BYTES } from './grpc-server';

describe('fromGrpcError', () => {
  it('reads a peer refusing this service’s token as the gateway’s own failure, not the client’s bad key', () => {
    const refused = fromGrpcError({ code: status.UNAUTHENTICATED, details: 'This call lacks a valid service token (grpc.auth.token).', metadata: new Metadata() });
    expect(refused).toMatchObject({ kind: 'internal', code: 'service_token_refused', retryable: false });
  });

  it('keeps an auth failure a handler reported, carried in the error trailer', () => {
    const handled = fromGrpcError(toGrpcStatus(new GatewayError('auth_failed', 'The provider rejected the key.', { upstreamStatus: 401, provider: 'openai' })));
    expect(handled).toMatchObject({ kind: 'auth_failed', upstreamStatus: 401, provider: 'openai' });
  });

  it('carries a conflict across the hop as ALREADY_EXISTS, and reads that status as a conflict without the trailer', () => {
    const conflict = toGrpcStatus(new GatewayError('conflict', 'The team "search" already exists.', { code: 'already_exists', param: 'id' }));
    expect(conflict.code).toBe(status.ALREADY_EXISTS);
    expect(fromGrpcError(conflict)).toMatchObject({ kind: 'conflict', code: 'already_exists', param: 'id' });
    expect(fromGrpcError({ code: status.ALREADY_EXISTS, details: 'exists', metadata: new Metadata() })).toMatchObject({ kind: 'conflict', retryable: false });
  });

  it('reads grpc-js refusing a message over the size limit as a 413 request_too_large for the request, a server error for an answer, and leaves other RESOURCE_EXHAUSTED as they were', () => {
    const exhausted = (details: string) => fromGrpcError({ code: status.RESOURCE_EXHAUSTED, details, metadata: new Metadata() });
    // This side refusing to send the request, and the peer refusing to take it: the request's size.
    for (const details of ['Attempted to send message with a size larger than 67108864', 'Received message larger than max (70000000 vs 67108864)']) {
      expect(exhausted(details)).toMatchObject({ kind: 'bad_request', code: 'request_too_large', retryable: false, message: expect.stringContaining('67108864 bytes (64 MiB)') });
    }
    expect(exhausted('Sent message larger than max (70000000 vs. 67108864)')).toMatchObject({ kind: 'internal', code: 'response_too_large' });
    // Not a size: HTTP/2's ENHANCE_YOUR_CALM reset, the connection failing (see below).
    expect(exhausted('Bandwidth exhausted or memory limit exceeded')).toMatchObject({ kind: 'unavailable', code: 'internal_connection_failed', retryable: true });
    // A rate limit a handler reported keeps its own kind: the trailer wins.
    expect(fromGrpcError(toGrpcStatus(new GatewayError('rate_limited', 'Too many requests larger than usual.', { retryAfterMs: 1000 })))).toMatchObject({ kind: 'rate_limited', retryAfterMs: 1000 });
  });
});

describe('fromGrpcError, a status no handler sent', () => {
  it('reads INTERNAL or UNKNOWN without the error trailer (a reset stream, a proxy) as the connection failing: retryable, so the router fails over', () => {
    for (const code of [status.INTERNAL, status.UNKNOWN]) {
      expect(fromGrpcError({ code, details: 'Received RST_STREAM with code 2 (Internal server error)', metadata: new Metadata() })).toMatchObject({
        kind: 'unavailable',
        code: 'internal_connection_failed',
        retryable: true,
      });
    }
  });

  it('keeps a handler’s own internal error, carried in the trailer, a server error that is not retried', () => {
    const handled = fromGrpcError(toGrpcStatus(new GatewayError('internal', 'A bug.')));
    expect(handled).toMatchObject({ kind: 'internal', retryable: false });
  });
});

describe('MAX_MESSAGE_BYTES', () => {
  it('is the limit the configuration checks request sizes against at start-up', () => {
    expect(MAX_MESSAGE_BYTES).toBe(GRPC_MESSAGE_MAX_BYTES);
  });
});
