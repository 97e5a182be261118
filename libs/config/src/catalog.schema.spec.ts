import { modelSchema, routingReferenceIssues, routingSchema } from './catalog.schema';

const model = (extra: Record<string, unknown>) => ({ id: 'm', deployments: [{ provider: 'p', model: 'u' }], ...extra });

describe('model catalog', () => {
  it('takes an image cost per model, a low-detail one no dearer than any image', () => {
    expect(modelSchema.parse(model({})).imageTokens).toBeUndefined();
    expect(modelSchema.parse(model({ imageTokens: { max: 48_169, low: 2_833 } })).imageTokens).toEqual({ max: 48_169, low: 2_833 });
    expect(modelSchema.safeParse(model({ imageTokens: { max: 85, low: 2_833 } })).error?.issues).toEqual([expect.objectContaining({ path: ['imageTokens', 'low'] })]);
    expect(modelSchema.safeParse(model({ imageTokens: { low: 85 } })).success).toBe(false);
  });

  it('takes prices for the flex, scale and priority service tiers only', () => {
    const parsed = modelSchema.parse(model({ pricing: { input: '2.5', output: '10', tiers: { priority: { input: '4.25', output: '17' } } } }));
    expect(parsed.pricing.tiers.priority).toMatchObject({ input: '4.25', output: '17', changes: [] });
    expect(modelSchema.parse(model({})).pricing.tiers).toEqual({});
    expect(modelSchema.safeParse(model({ pricing: { tiers: { turbo: { input: '1' } } } })).success).toBe(false);
  });
});

describe('model ids', () => {
  it('may not be auto, which names the gateway’s choice among the models (an alias named auto narrows that choice)', () => {
    const models = [modelSchema.parse(model({})), modelSchema.parse(model({ id: 'auto' }))];
    expect(routingReferenceIssues(routingSchema.parse({}), models, ['p'])).toEqual([
      { path: ['models', 1, 'id'], message: '"auto" is reserved for the gateway\'s choice among the models (routing.aliases.auto narrows it): give the model another id' },
    ]);
    expect(routingReferenceIssues(routingSchema.parse({ aliases: { auto: { models: ['m'] } } }), models.slice(0, 1), ['p'])).toEqual([]);
  });
});
