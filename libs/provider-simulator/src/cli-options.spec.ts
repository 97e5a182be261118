import { parseCliArgs } from './cli-options';

describe('CLI options', () => {
  it('defaults to an empty option set', () => {
    expect(parseCliArgs([])).toEqual({ kind: 'start', options: {} });
  });

  it('maps flags onto simulator options and behaviour', () => {
    expect(
      parseCliArgs(['--port', '8089', '--host', '0.0.0.0', '--api-key', 'sk-x', '--latency-ms', '20', '--ttft-ms', '150', '--tokens-per-second', '40', '--seed', '9']),
    ).toEqual({
      kind: 'start',
      options: { port: 8089, host: '0.0.0.0', apiKey: 'sk-x', seed: 9, behaviour: { latencyMs: 20, ttftMs: 150, tokensPerSecond: 40 } },
    });
    expect(parseCliArgs(['--completion-tokens=64', '--embedding-dimensions=256', '--context-window=8000'])).toEqual({
      kind: 'start',
      options: { behaviour: { completionTokens: 64, embeddingDimensions: 256, contextWindow: 8000 } },
    });
  });

  it('reads the public keys of the Google service accounts the token endpoint trusts', () => {
    const files: Record<string, string> = { '/keys/sa.pem': '-----BEGIN PUBLIC KEY-----\n…' };
    const read = (path: string): string => {
      const text = files[path];
      if (text === undefined) throw new Error('ENOENT');
      return text;
    };
    expect(parseCliArgs(['--google-service-account', 'sa@p.iam.gserviceaccount.com=/keys/sa.pem', '--access-token-expires-in', '600'], read)).toEqual({
      kind: 'start',
      options: { googleServiceAccounts: [{ clientEmail: 'sa@p.iam.gserviceaccount.com', publicKey: files['/keys/sa.pem'] }], behaviour: { accessTokenExpiresInSeconds: 600 } },
    });
    expect(() => parseCliArgs(['--google-service-account', 'sa@p=/missing.pem'], read)).toThrow('--google-service-account: cannot read /missing.pem');
    expect(() => parseCliArgs(['--google-service-account', 'no-file'], read)).toThrow(/EMAIL=PUBLIC_KEY_FILE/);
  });

  it('recognises --help', () => {
    expect(parseCliArgs(['--help'])).toEqual({ kind: 'help' });
  });

  it.each([[['--port', 'abc']], [['--port', '70000']], [['--latency-ms', '-5']], [['--bogus']], [['positional']]])('rejects %j', (argv) => {
    expect(() => parseCliArgs(argv)).toThrow();
  });
});
