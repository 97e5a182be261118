import { ConfigError, parseConfig } from './config-loader';
import { budgetSchema, MAX_BUDGET_AMOUNT } from './budgets.schema';
import { MINIMAL_CONFIG } from './minimal-config.testing';

const budget = (amount: unknown) => ({ id: 'b', scope: { org: 'acme' }, period: 'monthly', amount });

/** The problems `parseConfig` reports for a configuration with these budgets. */
function problems(list: unknown[]): string[] {
  try {
    parseConfig({ ...MINIMAL_CONFIG, budgets: { list } }, {});
    return [];
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
}

describe('budget amounts', () => {
  it('accepts amounts up to 2^53 − 1 micro-units, exactly', () => {
    expect(budgetSchema.parse(budget(MAX_BUDGET_AMOUNT)).amount).toBe('9007199254.740991');
    expect(budgetSchema.parse(budget('2500.00')).amount).toBe('2500.00');
    expect(budgetSchema.parse(budget(9_007_199_254)).amount).toBe('9007199254');
    // Within the bound once rounded up to a whole micro-unit.
    expect(budgetSchema.safeParse(budget('9007199254.7409900001')).success).toBe(true);
  });

  it('refuses at load an amount the ledger cannot count (IDR and VND budgets get there), naming the field and the bound', () => {
    // 10 billion: the configuration loaded, then every request under the budget failed with a 500.
    expect(problems([budget('1'), budget('10000000000')].map((b, i) => ({ ...b, id: `b${i}` })))).toEqual([
      'budgets.list[1].amount: must be at most 9007199254.740991 (budgets count in millionths of the currency, exactly up to 2^53 - 1 of them)',
    ]);
    // One micro-unit past the bound, and a fraction of one (rounded up, as the ledger rounds).
    expect(budgetSchema.safeParse(budget('9007199254.740992')).success).toBe(false);
    expect(budgetSchema.safeParse(budget('9007199254.7409910001')).success).toBe(false);
    expect(budgetSchema.safeParse(budget(1e16)).success).toBe(false);
    expect(budgetSchema.safeParse(budget('0')).error?.issues.map((i) => i.message)).toEqual(['must be greater than 0']);
  });

  it('refuses an amount that is not a decimal with that problem alone, among the others, whether written or from the environment', () => {
    const decimal = 'must be a non-negative decimal number, e.g. "0.15"';
    // Each of these threw out of the parse (a SyntaxError quoting the amount), losing every other problem.
    expect(problems(['ten', '1e5', '12,50', '-5'].map((amount, i) => ({ ...budget(amount), id: `b${i}` })))).toEqual([0, 1, 2, 3].map((i) => `budgets.list[${i}].amount: ${decimal}`));
    expect(() => parseConfig({ ...MINIMAL_CONFIG, budgets: { list: [budget('${AMOUNT}')] }, log: { level: 'loud' } }, { AMOUNT: '2,500.00' })).toThrow(
      new ConfigError('inline', ['log.level: Invalid option: expected one of "fatal"|"error"|"warn"|"info"|"debug"|"trace"|"silent"', `budgets.list[0].amount: ${decimal}`]),
    );
  });
});

describe('billing.chargeback', () => {
  const chargeback = (value: unknown): string[] => {
    try {
      parseConfig({ ...MINIMAL_CONFIG, billing: { ...MINIMAL_CONFIG.billing, chargeback: value } }, {});
      return [];
    } catch (error) {
      if (error instanceof ConfigError) return error.problems;
      throw error;
    }
  };

  it('refuses a fixed share for a shared cost centre, whose spend is the pool itself', () => {
    expect(chargeback({ sharedCostCenters: ['platform'], allocation: 'fixed', fixedShares: { 'cc-search': '3', platform: '1' } })).toEqual([
      'billing.chargeback.fixedShares.platform: "platform" is a shared cost centre (sharedCostCenters): its spend is the pool, so it takes no share of it',
    ]);
    expect(chargeback({ sharedCostCenters: ['platform'], allocation: 'fixed', fixedShares: { 'cc-search': '3', 'cc-ads': '1' } })).toEqual([]);
  });
});
