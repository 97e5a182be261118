import { evaluateReadiness, type ReadinessCheck } from './health';

const check = (name: string, ok: boolean, extra: Partial<ReadinessCheck> = {}): ReadinessCheck => ({ name, check: async () => ok, ...extra });

describe('evaluateReadiness', () => {
  it('is ready when every check passes, and not when one fails (a check that throws fails)', async () => {
    expect(await evaluateReadiness([check('store', true), check('bus', true)])).toEqual({ ready: true, checks: { store: 'ok', bus: 'ok' } });
    expect(await evaluateReadiness([check('store', true), check('bus', false)])).toEqual({ ready: false, checks: { store: 'ok', bus: 'failing' } });
    const throwing: ReadinessCheck = { name: 'peer', check: () => Promise.reject(new Error('down')) };
    expect((await evaluateReadiness([throwing])).ready).toBe(false);
  });

  it('shows an advisory check and its details without letting it decide', async () => {
    const consumer = check('usage-consumer', false, { advisory: true, details: async () => ({ state: 'stopped' }) });
    expect(await evaluateReadiness([check('clickhouse', true), consumer])).toEqual({
      ready: true,
      checks: { clickhouse: 'ok', 'usage-consumer': 'failing' },
      details: { 'usage-consumer': { state: 'stopped' } },
    });
    // Any other check failing still decides.
    expect((await evaluateReadiness([check('clickhouse', false), consumer])).ready).toBe(false);
  });
});
