import type { Dispatcher } from 'undici';
import { GatewayError } from '@openrouter/errors';
import { bearerAuth, CachedTokenSource } from './access-token';
import type { Secret } from './credential-file';
import { failure } from './gateway-failure.testing';
import { secretAuth, sendWithCredentials, staticAuth, type UpstreamAuth } from './upstream-auth';

const never = new AbortController().signal;

/** A file's secret a spec rotates by hand: `reread` takes what was written last, and is counted. */
class RotatingSecret implements Secret {
  rereads = 0;
  private written: string;
  constructor(private current: string) {
    this.written = current;
  }
  value(): string {
    return this.current;
  }
  reread(): Promise<void> {
    this.rereads++;
    this.current = this.written;
    return Promise.resolve();
  }
  close(): void {}
  rotate(next: string): void {
    this.written = next;
  }
}

/** A provider that takes one key: each call's answer is 200 for it, else `refusal` (401 by default). */
function provider(accepted: () => string, refusal = 401) {
  const sent: string[] = [];
  const answer = (statusCode: number, text: string): Dispatcher.ResponseData => ({ statusCode, headers: {}, body: { text: () => Promise.resolve(text) } }) as unknown as Dispatcher.ResponseData;
  return {
    sent,
    send: (headers: Record<string, string>) => {
      const key = headers['authorization'] ?? '';
      sent.push(key);
      return Promise.resolve(key === `Bearer ${accepted()}` ? answer(200, '{}') : answer(refusal, 'refused'));
    },
  };
}

const parseError = (response: Dispatcher.ResponseData, text: string): GatewayError =>
  response.statusCode === 400
    ? new GatewayError('auth_failed', 'The provider "p" rejected the gateway\'s API key.', { upstreamStatus: 400, code: 'upstream_auth_failed' })
    : new GatewayError(response.statusCode === 429 ? 'rate_limited' : 'auth_failed', `HTTP ${response.statusCode}: ${text}`, { upstreamStatus: response.statusCode });

const call = (auth: UpstreamAuth, send: (headers: Record<string, string>) => Promise<Dispatcher.ResponseData>) => sendWithCredentials(() => auth.headers(never), auth.refused, send, parseError);
const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

describe('a key read from a file, refused by the provider', () => {
  it.each([401, 403, 400])('(HTTP %i) is read again, and the call sent once more with the rotated key', async (status) => {
    const secret = new RotatingSecret('sk-old');
    const upstream = provider(() => 'sk-new', status);
    secret.rotate('sk-new');
    const response = await call(secretAuth(secret, bearer), upstream.send);
    expect(response.statusCode).toBe(200);
    expect(upstream.sent).toEqual(['Bearer sk-old', 'Bearer sk-new']);
    expect(secret.rereads).toBe(1);
  });

  it('is passed on as it came, sent once, when the file holds the refused key still', async () => {
    const secret = new RotatingSecret('sk-old');
    const upstream = provider(() => 'sk-other');
    const error = await failure(call(secretAuth(secret, bearer), upstream.send));
    expect(error).toMatchObject({ kind: 'auth_failed', upstreamStatus: 401 });
    expect(upstream.sent).toEqual(['Bearer sk-old']);
    expect(secret.rereads).toBe(1);
  });

  it('twice (the rotated key refused too) is passed on without a third try or a second read', async () => {
    const secret = new RotatingSecret('sk-old');
    secret.rotate('sk-new');
    const upstream = provider(() => 'sk-third');
    await failure(call(secretAuth(secret, bearer), upstream.send));
    expect(upstream.sent).toEqual(['Bearer sk-old', 'Bearer sk-new']);
    expect(secret.rereads).toBe(1);
  });

  it('reads nothing for an answer that is not a refusal of the credentials', async () => {
    const secret = new RotatingSecret('sk-old');
    const upstream = provider(() => 'nobody', 429);
    await expect(call(secretAuth(secret, bearer), upstream.send)).rejects.toMatchObject({ kind: 'rate_limited' });
    expect(secret.rereads).toBe(0);
  });

  it('given inline is never retried', async () => {
    const upstream = provider(() => 'sk-other');
    await failure(call(staticAuth(bearer('sk-inline')), upstream.send));
    expect(upstream.sent).toEqual(['Bearer sk-inline']);
  });
});

describe('an access token refused', () => {
  it('with 403 keeps the token (what it may do is the identity’s, which a fresh token would not change); with 401 fetches a fresh one', async () => {
    let grants = 0;
    const auth = bearerAuth(new CachedTokenSource(async () => ({ accessToken: `tok-${++grants}`, expiresInSeconds: 3600 }), { provider: 'p' }));
    const forbidden = provider(() => 'nobody', 403);
    await failure(call(auth, forbidden.send));
    expect(forbidden.sent).toEqual(['Bearer tok-1']);
    const unauthorized = provider(() => 'tok-2', 401);
    await expect(call(auth, unauthorized.send)).resolves.toMatchObject({ statusCode: 200 });
    expect(unauthorized.sent).toEqual(['Bearer tok-1', 'Bearer tok-2']);
  });
});
