import { GatewayError } from './gateway-error';

describe('GatewayError', () => {
  it('marks transient kinds retryable by default', () => {
    expect(new GatewayError('rate_limited', 'slow down').retryable).toBe(true);
    expect(new GatewayError('unavailable', 'down').retryable).toBe(true);
    expect(new GatewayError('bad_request', 'no').retryable).toBe(false);
    expect(new GatewayError('context_length_exceeded', 'long').retryable).toBe(false);
  });

  it('lets the caller override retryability', () => {
    expect(new GatewayError('bad_request', 'x', { retryable: true }).retryable).toBe(true);
  });

  it('wraps unknown failures as internal without their message', () => {
    const wrapped = GatewayError.from(new Error('secret detail'));
    expect(wrapped.kind).toBe('internal');
    expect(wrapped.message).not.toContain('secret');
    expect(wrapped.cause).toBeInstanceOf(Error);
  });

  it('recognises kinds', () => {
    expect(GatewayError.isKind('timeout')).toBe(true);
    expect(GatewayError.isKind('nope')).toBe(false);
  });
});
