import { bearerAuth, CachedTokenSource, type GrantedToken } from './access-token';

const never = new AbortController().signal;

describe('CachedTokenSource, a refused token', () => {
  function countingSource(): { source: CachedTokenSource; calls: () => number; at: (ms: number) => void } {
    let calls = 0;
    let now = 1_000_000;
    const grant = async (): Promise<GrantedToken> => ({ accessToken: `tok-${++calls}`, expiresInSeconds: 3600 });
    return { source: new CachedTokenSource(grant, { provider: 'p', now: () => now }), calls: () => calls, at: (ms) => (now = ms) };
  }

  it('is dropped, so a revoked token is replaced, as often as tokens are revoked', async () => {
    const { source, calls } = countingSource();
    const auth = bearerAuth(source);
    expect(auth.refused?.(await auth.headers(never))).toBe(true);
    const second = await auth.headers(never);
    expect(second).toEqual({ authorization: 'Bearer tok-2' });
    // The fresh token served (no refusal of it on the retry), then was revoked in turn.
    expect(auth.refused?.(second)).toBe(true);
    await expect(auth.headers(never)).resolves.toEqual({ authorization: 'Bearer tok-3' });
    expect(calls()).toBe(3);
  });

  it('is kept for a minute once a fresh token was refused too: a steady 401 costs one token fetch a minute, not two a call', async () => {
    const { source, calls, at } = countingSource();
    const auth = bearerAuth(source);
    expect(auth.refused?.(await auth.headers(never))).toBe(true);
    const fresh = await auth.headers(never);
    // The call's second try, with the fresh token, refused as well (a role not granted).
    expect(auth.refused?.(fresh, true)).toBe(false);
    at(1_000_000 + 59_000);
    // The next calls: refused, and passed on with no second try and no fetch.
    expect(auth.refused?.(await auth.headers(never))).toBe(false);
    await expect(auth.headers(never)).resolves.toEqual(fresh);
    expect(calls()).toBe(2);
    // A minute on, a refusal gets a fresh token again.
    at(1_000_000 + 60_000);
    expect(auth.refused?.(fresh)).toBe(true);
    await expect(auth.headers(never)).resolves.toEqual({ authorization: 'Bearer tok-3' });
    expect(calls()).toBe(3);
  });
});

describe('bearerAuth, a 403', () => {
  it('is passed on without a fresh token, unless the source says the credentials were replaced since', async () => {
    let replaced = false;
    const asked: string[] = [];
    const plain = bearerAuth({ token: async () => 'tok', invalidate: () => true });
    expect(await plain.refused?.({ authorization: 'Bearer tok' }, false, 403)).toBe(false);
    const rotating = bearerAuth({
      token: async () => 'tok',
      invalidate: () => true,
      forbidden: async (token) => {
        asked.push(token);
        return replaced;
      },
    });
    expect(await rotating.refused?.({ authorization: 'Bearer tok' }, false, 403)).toBe(false);
    replaced = true;
    expect(await rotating.refused?.({ authorization: 'Bearer tok' }, false, 403)).toBe(true);
    // The fresh token's own 403 is passed on: the source is not asked again.
    expect(await rotating.refused?.({ authorization: 'Bearer tok' }, true, 403)).toBe(false);
    expect(asked).toEqual(['tok', 'tok']);
  });
});
