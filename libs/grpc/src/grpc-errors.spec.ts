import { Metadata, status } from '@grpc/grpc-js';
import { GatewayError } from '@openrouter/errors';
import { fromGrpcError, toGrpcStatus } from './grpc-errors';

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
});
