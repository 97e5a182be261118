import { idempotencyKeyOf, requestFingerprint } from './idempotency.interceptor';

describe('idempotencyKeyOf', () => {
  const sent = (...values: string[]) => ['Host', 'gateway', ...values.flatMap((v, i) => [i % 2 ? 'idempotency-key' : 'Idempotency-Key', v]), 'Accept', '*/*'];

  it('takes 1 to 255 printable ASCII characters; none sent is no key', () => {
    expect(idempotencyKeyOf(sent())).toBeUndefined();
    expect(idempotencyKeyOf(sent('8e03978e-40d5-43e8-bc93-6894a57f9324'))).toBe('8e03978e-40d5-43e8-bc93-6894a57f9324');
    expect(idempotencyKeyOf(sent('x'.repeat(255)))).toHaveLength(255);
    expect(idempotencyKeyOf(sent('a key with spaces ~!'))).toBe('a key with spaces ~!');
    // One header whose value holds a comma is one key.
    expect(idempotencyKeyOf(sent('first, second'))).toBe('first, second');
  });

  it.each([
    [[''], 'empty'],
    [['x'.repeat(256)], 'at most 255'],
    [['clé'], 'printable ASCII'],
    [['tab\there'], 'printable ASCII'],
    [['a', 'b'], 'send it once'],
    [['same', 'same'], 'send it once'],
  ])('refuses %j with 400 invalid_idempotency_key (%s)', (values, why) => {
    expect(() => idempotencyKeyOf(sent(...values))).toThrow(expect.objectContaining({ kind: 'bad_request', code: 'invalid_idempotency_key', param: 'Idempotency-Key', message: expect.stringContaining(why) }));
  });
});

describe('requestFingerprint', () => {
  it('is the same for the same method, path and body, whatever the order of its keys or the query', () => {
    expect(requestFingerprint('POST', '/admin/v1/keys', { org: 'acme', limits: { rpm: 1, tpm: 2 } })).toBe(requestFingerprint('POST', '/admin/v1/keys?x=1', { limits: { tpm: 2, rpm: 1 }, org: 'acme' }));
  });

  it('differs for another body, path or method', () => {
    const base = requestFingerprint('POST', '/admin/v1/keys', { org: 'acme' });
    expect(requestFingerprint('POST', '/admin/v1/keys', { org: 'initech' })).not.toBe(base);
    expect(requestFingerprint('POST', '/admin/v1/tenants', { org: 'acme' })).not.toBe(base);
    expect(requestFingerprint('PATCH', '/admin/v1/keys', { org: 'acme' })).not.toBe(base);
    // The same change to two tenants is two requests: a key reused on the second is refused, not replayed.
    expect(requestFingerprint('PATCH', '/admin/v1/tenants/acme', { name: 'x' })).not.toBe(requestFingerprint('PATCH', '/admin/v1/tenants/initech', { name: 'x' }));
    expect(requestFingerprint('POST', '/admin/v1/keys', { org: 'acme', tags: [1, 2] })).not.toBe(requestFingerprint('POST', '/admin/v1/keys', { org: 'acme', tags: [2, 1] }));
    expect(requestFingerprint('POST', '/admin/v1/keys', undefined)).toBe(requestFingerprint('POST', '/admin/v1/keys', null));
  });
});
