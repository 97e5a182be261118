import { DEFAULT_BEHAVIOUR, mergeBehaviour, parseBehaviourPatch } from './behaviour-config';

describe('behaviour config', () => {
  it('has the documented defaults', () => {
    expect(DEFAULT_BEHAVIOUR).toEqual({
      latencyMs: 0,
      ttftMs: 0,
      tokensPerSecond: 0,
      completionTokens: 16,
      ignoreMaxTokens: false,
      ignoreStreamOptions: false,
      omitUsage: false,
      embeddingDimensions: 1536,
      contextWindow: 128_000,
      accessTokenExpiresInSeconds: 3600,
      faults: [],
    });
  });

  it('accepts a valid partial behaviour with faults', () => {
    const result = parseBehaviourPatch({ latencyMs: 5, faults: [{ kind: 'http_error', status: 429, retryAfterSeconds: 2, rate: 0.5, remaining: 3 }] });
    expect(result).toEqual({ ok: true, value: { latencyMs: 5, faults: [{ kind: 'http_error', status: 429, retryAfterSeconds: 2, rate: 0.5, remaining: 3 }] } });
  });

  it.each([
    [{ latencyMs: -1 }],
    [{ completionTokens: 1.5 }],
    [{ unknownKnob: 1 }],
    [{ faults: [{ kind: 'explode' }] }],
    [{ faults: [{ kind: 'http_error', rate: 2 }] }],
    [{ faults: [{ kind: 'http_error', status: 200 }] }],
    ['not an object'],
  ])('rejects %j', (input) => {
    const result = parseBehaviourPatch(input);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.message.length).toBeGreaterThan(0);
  });

  it('merges without sharing fault objects and replaces the fault list wholesale', () => {
    const base = mergeBehaviour(DEFAULT_BEHAVIOUR, { faults: [{ kind: 'timeout' }] });
    const merged = mergeBehaviour(base, { ttftMs: 10, latencyMs: undefined });
    expect(merged).toMatchObject({ ttftMs: 10, latencyMs: 0, faults: [{ kind: 'timeout' }] });
    expect(merged.faults[0]).not.toBe(base.faults[0]);
    expect(mergeBehaviour(base, { faults: [] }).faults).toEqual([]);
    expect(DEFAULT_BEHAVIOUR.faults).toEqual([]);
  });
});
