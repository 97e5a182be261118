import { ingressTestConfig } from '../test-config.testing';
import { endUserIds, pseudonym, PSEUDONYM_PREFIX } from './end-user-ids';

const SECRET = 'a-secret-of-at-least-thirty-two-characters';

describe('end-user ids in usage records', () => {
  it('keeps the id as sent by default', () => {
    const config = ingressTestConfig();
    expect(config.usage.endUsers).toBe('raw');
    expect(endUserIds(config.usage)('acme', 'jane@example.com')).toBe('jane@example.com');
  });

  it('pseudonymizes: the same user of the same organisation always alike, another user or organisation otherwise, nothing of the id readable', () => {
    const ids = endUserIds({ endUsers: 'pseudonymized', endUserSecret: SECRET });
    const jane = ids('acme', 'jane@example.com');
    expect(jane).toMatch(new RegExp(`^${PSEUDONYM_PREFIX}[A-Za-z0-9_-]{32}$`));
    expect(jane).not.toContain('jane');
    expect(ids('acme', 'jane@example.com')).toBe(jane);
    expect(ids('acme', 'john@example.com')).not.toBe(jane);
    // One user's records in two organisations cannot be joined.
    expect(ids('beta', 'jane@example.com')).not.toBe(jane);
    // Nor can the organisation and the id be shifted into each other.
    expect(ids('acm', 'ejane@example.com')).not.toBe(jane);
    // Without the secret, trying likely ids gives other digests.
    expect(pseudonym('another-secret-of-at-least-thirty-two-chars', 'acme', 'jane@example.com')).not.toBe(jane);
    // No end user stays no end user.
    expect(ids('acme', '')).toBe('');
  });

  it('drops the id when told to', () => {
    expect(endUserIds({ endUsers: 'dropped', endUserSecret: '' })('acme', 'jane@example.com')).toBe('');
  });

  it('refuses pseudonyms without a secret long enough, naming the setting', () => {
    expect(() => ingressTestConfig({ usage: { endUsers: 'pseudonymized', endUserSecret: 'short' } })).toThrow(/usage\.endUserSecret: set a secret of at least 32 characters/);
    expect(() => ingressTestConfig({ usage: { endUsers: 'hashed' } })).toThrow(/usage\.endUsers/);
    expect(ingressTestConfig({ usage: { endUsers: 'pseudonymized', endUserSecret: SECRET } }).usage.endUsers).toBe('pseudonymized');
  });
});
