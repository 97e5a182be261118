import { upgradeKey } from './upgrade-key';

const KEY = 'sk-or-socket-key';

function refusal(headers: Record<string, string>): { kind?: string; code?: string; message?: string } {
  try {
    upgradeKey(headers);
  } catch (error) {
    return error as { kind?: string; code?: string; message?: string };
  }
  throw new Error('expected the upgrade to be refused');
}

describe('upgradeKey', () => {
  it('reads Authorization: Bearer, x-api-key (as Anthropic clients send it) and the bearer subprotocol', () => {
    expect(upgradeKey({ authorization: `Bearer ${KEY}` })).toBe(KEY);
    expect(upgradeKey({ 'x-api-key': KEY })).toBe(KEY);
    expect(upgradeKey({ 'x-api-key': ` ${KEY} ` })).toBe(KEY);
    expect(upgradeKey({ 'sec-websocket-protocol': `openrouter.v1, bearer.${KEY}` })).toBe(KEY);
  });

  it('judges an upgrade with both headers by its Authorization header alone, as over HTTP', () => {
    expect(upgradeKey({ authorization: 'Bearer sk-a', 'x-api-key': 'sk-b' })).toBe('sk-a');
    expect(refusal({ authorization: 'Basic abc', 'x-api-key': KEY })).toMatchObject({ kind: 'auth_failed', code: 'missing_api_key' });
    // An empty Authorization header is no header.
    expect(upgradeKey({ authorization: '', 'x-api-key': KEY })).toBe(KEY);
  });

  it('prefers a key in the headers to one in the subprotocol', () => {
    expect(upgradeKey({ authorization: 'Bearer sk-a', 'sec-websocket-protocol': 'openrouter.v1, bearer.sk-b' })).toBe('sk-a');
    expect(upgradeKey({ 'x-api-key': 'sk-a', 'sec-websocket-protocol': 'openrouter.v1, bearer.sk-b' })).toBe('sk-a');
  });

  it('reads the subprotocol beside an Authorization header that is not a Bearer token (a browser adds its site credentials)', () => {
    expect(upgradeKey({ authorization: 'Basic abc', 'sec-websocket-protocol': `openrouter.v1, bearer.${KEY}` })).toBe(KEY);
  });

  it('refuses an upgrade without a key, naming every way to send one', () => {
    const withoutKey: Array<Record<string, string>> = [{}, { 'sec-websocket-protocol': 'openrouter.v1' }, { 'sec-websocket-protocol': 'openrouter.v1, bearer.' }];
    for (const headers of withoutKey) {
      const error = refusal(headers);
      expect(error).toMatchObject({ kind: 'auth_failed', code: 'missing_api_key' });
      for (const way of ['Authorization', 'x-api-key', 'bearer.YOUR_KEY']) expect(error.message).toContain(way);
    }
    expect(refusal({ 'x-api-key': '   ' })).toMatchObject({ kind: 'auth_failed', code: 'missing_api_key' });
  });
});
