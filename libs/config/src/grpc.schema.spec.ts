import { ConfigError, parseConfig } from './config-loader';
import { MAX_CONNECTION_AGE_MS } from './config.schema';
import { MINIMAL_CONFIG } from './minimal-config.testing';
import { MAX_TIMER_MS } from './primitives';

const minimal = MINIMAL_CONFIG;

const TOKEN = '0123456789abcdef0123456789abcdef';

function problems(grpc: unknown, env: Record<string, string> = {}): string[] {
  try {
    parseConfig({ ...minimal, grpc }, env);
    return [];
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
}

describe('grpc.auth and grpc.tls', () => {
  it('default to no token and no TLS', () => {
    expect(parseConfig(minimal, {}).grpc).toMatchObject({ auth: { token: '' }, tls: { cert: '', key: '', ca: '', serverNameOverride: '' } });
  });

  it('take the token from the environment, and refuse one too short or that call metadata cannot carry', () => {
    expect(parseConfig({ ...minimal, grpc: { auth: { token: '${INTERNAL_TOKEN}' } } }, { INTERNAL_TOKEN: TOKEN }).grpc.auth.token).toBe(TOKEN);
    expect(problems({ auth: { token: '${INTERNAL_TOKEN}' } })).toEqual(['grpc.auth.token: environment variable INTERNAL_TOKEN is not set']);
    expect(problems({ auth: { token: 'short' } })).toEqual([expect.stringMatching(/^grpc\.auth\.token: must be at least 32 characters/)]);
    expect(problems({ auth: { token: `${TOKEN}\n` } })).toEqual([expect.stringMatching(/^grpc\.auth\.token: must be printable ASCII/)]);
  });

  it('want a certificate and its key together, and a server name override only with TLS', () => {
    expect(problems({ tls: { cert: '/tls/router.crt' } })).toEqual([expect.stringMatching(/^grpc\.tls\.key: required with grpc\.tls\.cert/)]);
    expect(problems({ tls: { key: '/tls/router.key' } })).toEqual([expect.stringMatching(/^grpc\.tls\.cert: required with grpc\.tls\.key/)]);
    expect(problems({ tls: { serverNameOverride: 'router.internal' } })).toEqual([expect.stringMatching(/^grpc\.tls\.serverNameOverride: applies to TLS only/)]);
    expect(problems({ tls: { ca: '/tls/ca.crt', serverNameOverride: 'router.internal' } })).toEqual([]);
    expect(problems({ tls: { cert: '/tls/router.crt', key: '/tls/router.key', ca: '/tls/ca.crt' } })).toEqual([]);
  });

  it('takes accepted tokens for a rotation, as a list or comma-separated text, each a valid token, with a token only', () => {
    const other = 'fedcba9876543210fedcba9876543210';
    expect(parseConfig({ ...minimal, grpc: { auth: { token: TOKEN, acceptedTokens: [other] } } }, {}).grpc.auth.acceptedTokens).toEqual([other]);
    expect(parseConfig({ ...minimal, grpc: { auth: { token: TOKEN, acceptedTokens: '${PREVIOUS:-}' } } }, { PREVIOUS: ` ${other}, ` }).grpc.auth.acceptedTokens).toEqual([other]);
    expect(parseConfig({ ...minimal, grpc: { auth: { token: TOKEN, acceptedTokens: '${PREVIOUS:-}' } } }, {}).grpc.auth.acceptedTokens).toEqual([]);
    expect(() => parseConfig({ ...minimal, grpc: { auth: { token: TOKEN, acceptedTokens: ['short'] } } }, {})).toThrow(/acceptedTokens/);
    expect(() => parseConfig({ ...minimal, grpc: { auth: { acceptedTokens: [other] } } }, {})).toThrow(/acceptedTokens/);
  });
});

describe('grpc.resolveIntervalMs', () => {
  it('is 30 s by default, 0 for off, at least 1000 otherwise, and a whole number of ms', () => {
    expect(parseConfig(minimal, {}).grpc.resolveIntervalMs).toBe(30_000);
    expect(parseConfig({ ...minimal, grpc: { resolveIntervalMs: 0 } }, {}).grpc.resolveIntervalMs).toBe(0);
    expect(parseConfig({ ...minimal, grpc: { resolveIntervalMs: 1_000 } }, {}).grpc.resolveIntervalMs).toBe(1_000);
    expect(problems({ resolveIntervalMs: 200 })).toEqual(['grpc.resolveIntervalMs: must be at least 1000 (ms), or 0 for only when a connection breaks or is renewed']);
    expect(problems({ resolveIntervalMs: -1 })).toEqual([expect.stringMatching(/^grpc\.resolveIntervalMs: /)]);
    expect(problems({ resolveIntervalMs: 1_500.5 })).toEqual([expect.stringMatching(/^grpc\.resolveIntervalMs: /)]);
  });

  it('leaves grpc.maxConnectionAgeMs at its default', () => {
    expect(parseConfig({ ...minimal, grpc: { resolveIntervalMs: 5_000 } }, {}).grpc.maxConnectionAgeMs).toBe(300_000);
  });
});

describe('grpc.maxConnectionAgeMs', () => {
  it('is refused where the 10 % jitter grpc-js adds could take a connection past the longest timer (which would fire after 1 ms)', () => {
    const message = 'grpc.maxConnectionAgeMs: must be at most 1952257860 (ms, about 22.6 days): each connection\'s age is given up to 10 % more at random, and a Node.js timer waits at most 2147483647 ms (0 for never)';
    expect(MAX_CONNECTION_AGE_MS * 1.1).toBeLessThanOrEqual(MAX_TIMER_MS);
    expect(parseConfig({ ...minimal, grpc: { maxConnectionAgeMs: MAX_CONNECTION_AGE_MS } }, {}).grpc.maxConnectionAgeMs).toBe(1_952_257_860);
    expect(problems({ maxConnectionAgeMs: MAX_CONNECTION_AGE_MS + 1 })).toEqual([message]);
    // grpc-js reads exactly 2^31 − 1 as never: 0 says that.
    expect(problems({ maxConnectionAgeMs: MAX_TIMER_MS })).toEqual([message]);
    expect(parseConfig({ ...minimal, grpc: { maxConnectionAgeMs: 0 } }, {}).grpc.maxConnectionAgeMs).toBe(0);
  });
});
