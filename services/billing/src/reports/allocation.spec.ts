import { Money, moneyText } from '@openrouter/usage';
import { allocate } from './allocation';

const m = (v: string): Money => new Money(v);

describe('allocate', () => {
  it('splits in proportion and always adds up to the pool exactly', () => {
    const shares = allocate(m('1'), [
      ['a', m('1')],
      ['b', m('1')],
      ['c', m('1')],
    ]);
    const values = [...(shares?.values() ?? [])];
    expect(values.map(moneyText)).toEqual(['0.333333333333333334', '0.333333333333333333', '0.333333333333333333']);
    expect(moneyText(values.reduce((s, v) => s.plus(v), m('0')))).toBe('1');
  });

  it('gives nothing to zero weights and nothing at all when no weight is positive', () => {
    const shares = allocate(m('0.3'), [
      ['a', m('2')],
      ['b', m('0')],
      ['c', m('1')],
    ]);
    expect(moneyText(shares?.get('a') ?? m('-1'))).toBe('0.2');
    expect(shares?.has('b')).toBe(false);
    expect(moneyText(shares?.get('c') ?? m('-1'))).toBe('0.1');
    expect(allocate(m('1'), [['a', m('0')]])).toBeUndefined();
  });

  it('stays exact over many random pools', () => {
    let seed = 7;
    const next = (): number => (seed = (seed * 48_271) % 2_147_483_647) / 2_147_483_647;
    for (let i = 0; i < 200; i++) {
      const pool = m(next().toFixed(12)).times(1000);
      const weights = Array.from({ length: 1 + Math.floor(next() * 9) }, (_, j) => [`cc${j}`, m(next().toFixed(6))] as const);
      const shares = allocate(pool, weights);
      if (!shares) continue;
      expect(moneyText([...shares.values()].reduce((s, v) => s.plus(v), m('0')))).toBe(moneyText(pool));
    }
  });
});
