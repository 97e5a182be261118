import { ConfigError, parseConfig } from './config-loader';
import { MINIMAL_CONFIG } from './minimal-config.testing';

/** The problems `parseConfig` reports for these models laid over the minimal configuration. */
function problems(models: unknown[]): string[] {
  try {
    parseConfig({ ...MINIMAL_CONFIG, models }, {});
    return [];
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
}

const model = (id: string, extra: Record<string, unknown> = {}) => ({ id, deployments: [{ id: `${id}-d`, provider: 'sim', model: 'up' }], ...extra });

describe('models[].lifecycle', () => {
  it('takes dates and date-times with an offset, and a configured replacement', () => {
    const lifecycle = { deprecatedAt: '2026-01-01', retiresAt: '2026-06-30T12:00:00+02:00', replacement: 'new' };
    const config = parseConfig({ ...MINIMAL_CONFIG, models: [model('old', { lifecycle }), model('new')] }, {});
    expect(config.models[0]?.lifecycle).toEqual(lifecycle);
    expect(config.models[1]?.lifecycle).toBeUndefined();
  });

  it('refuses a date-time without an offset (it would be read in local time) and anything that is no date', () => {
    expect(problems([model('m', { lifecycle: { deprecatedAt: '2026-01-01T00:00:00' } })])).toEqual([
      'models[0].lifecycle.deprecatedAt: must be an ISO 8601 date (2026-03-01) or date-time with an offset (2026-03-01T12:00:00Z)',
    ]);
    expect(problems([model('m', { lifecycle: { retiresAt: 'next year' } })])).toEqual([
      'models[0].lifecycle.retiresAt: must be an ISO 8601 date (2026-03-01) or date-time with an offset (2026-03-01T12:00:00Z)',
    ]);
    expect(problems([model('m', { lifecycle: { retiredAt: '2026-01-01' } })])).toEqual([expect.stringContaining('models[0].lifecycle: unknown key "retiredAt"')]);
  });

  it('refuses a retirement before the deprecation', () => {
    expect(problems([model('m', { lifecycle: { deprecatedAt: '2026-02-01', retiresAt: '2026-01-31T23:59:59Z' } })])).toEqual([
      'models[0].lifecycle.retiresAt: 2026-01-31T23:59:59Z is before deprecatedAt (2026-02-01): a model is retired after it is deprecated',
    ]);
    expect(problems([model('m', { lifecycle: { deprecatedAt: '2026-02-01', retiresAt: '2026-02-01T00:00:00Z' } })])).toEqual([]);
  });

  it('refuses a replacement that is unknown, the model itself, or unable to take its requests', () => {
    expect(problems([model('m', { lifecycle: { replacement: 'gone' } })])).toEqual(['models[0].lifecycle.replacement: unknown model "gone"']);
    expect(problems([model('m', { lifecycle: { replacement: 'm' } })])).toEqual(['models[0].lifecycle.replacement: a model cannot replace itself ("m")']);
    expect(problems([model('emb', { capabilities: ['embeddings'], lifecycle: { replacement: 'chat' } }), model('chat')])).toEqual([
      'models[0].lifecycle.replacement: "chat" does not support embeddings, which requests for "emb" use',
    ]);
    // Tools, vision and JSON modes may differ: a request that needs one the replacement lacks gets the usual 400.
    expect(problems([model('m', { capabilities: ['chat', 'tools'], lifecycle: { replacement: 'n' } }), model('n')])).toEqual([]);
  });

  it('refuses replacements that form a cycle, once, and allows a chain', () => {
    expect(problems([model('a', { lifecycle: { replacement: 'b' } }), model('b', { lifecycle: { replacement: 'c' } }), model('c', { lifecycle: { replacement: 'a' } })])).toEqual([
      'models[0].lifecycle.replacement: replacements form a cycle: a → b → c → a',
    ]);
    expect(problems([model('x', { lifecycle: { replacement: 'a' } }), model('a', { lifecycle: { replacement: 'b' } }), model('b', { lifecycle: { replacement: 'a' } })])).toEqual([
      'models[1].lifecycle.replacement: replacements form a cycle: a → b → a',
    ]);
    expect(problems([model('a', { lifecycle: { retiresAt: '2026-01-01', replacement: 'b' } }), model('b', { lifecycle: { retiresAt: '2027-01-01', replacement: 'c' } }), model('c')])).toEqual([]);
  });
});
