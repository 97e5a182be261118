import { usagev1 } from '@openrouter/contracts';
import { pricingSchema } from '@openrouter/config';
import { Registry, type Logger } from '@openrouter/observability';
import { emptyUsageEvent } from '../event/usage-event.factory';
import { priceEvent } from './cost';
import { PriceBook } from './price-book';
import { UnpricedModels } from './unpriced-models';

/** A logger that keeps what was logged at error level. */
function recordingLogger(): { logger: Logger; errors: Array<{ fields: unknown; message: string }> } {
  const errors: Array<{ fields: unknown; message: string }> = [];
  const noop = (): void => undefined;
  const logger = { error: (fields: unknown, message: string) => errors.push({ fields, message }), warn: noop, info: noop, debug: noop, trace: noop, fatal: noop } as unknown as Logger;
  return { logger, errors };
}

function served(book: PriceBook, model: string): usagev1.UsageEvent {
  const event = emptyUsageEvent('r', Date.now());
  event.servedModel = model;
  event.deployment = `${model}-dep`;
  event.status = usagev1.Status.STATUS_OK;
  event.tokens = { prompt: 1000, completion: 1000, cachedRead: 0, cacheWrite: 0, reasoning: 0, estimated: false };
  const cost = priceEvent(book, event);
  event.cost = { amount: cost.amount, currency: cost.currency, priceVersion: cost.priceVersion };
  return event;
}

async function counted(registry: Registry, model: string): Promise<number> {
  const metric = await registry.getSingleMetric('openrouter_unpriced_requests_total')?.get();
  return metric?.values.find((v) => v.labels['model'] === model)?.value ?? 0;
}

describe('UnpricedModels', () => {
  const book = PriceBook.fromModels([{ id: 'known', pricing: pricingSchema.parse({ input: '1', output: '2' }) }]);

  it('counts every request served by a model with no price, and logs each such model once', async () => {
    const registry = new Registry();
    const { logger, errors } = recordingLogger();
    const unpriced = new UnpricedModels(registry, logger);

    for (let i = 0; i < 3; i++) unpriced.check(served(book, 'new-model'));
    unpriced.check(served(book, 'other-new-model'));

    expect(await counted(registry, 'new-model')).toBe(3);
    expect(await counted(registry, 'other-new-model')).toBe(1);
    expect(errors.map((e) => e.fields)).toEqual([
      { model: 'new-model', deployment: 'new-model-dep' },
      { model: 'other-new-model', deployment: 'other-new-model-dep' },
    ]);
    expect(errors[0]?.message).toMatch(/restart the ingress/);
  });

  it('leaves priced requests and requests no model served alone', async () => {
    const registry = new Registry();
    const { logger, errors } = recordingLogger();
    const unpriced = new UnpricedModels(registry, logger);

    const priced = served(book, 'known');
    expect(priced.cost?.amount).toBe('0.003');
    unpriced.check(priced);
    unpriced.check(emptyUsageEvent('refused', Date.now()));

    expect(await counted(registry, 'known')).toBe(0);
    expect(await counted(registry, 'none')).toBe(0);
    expect(errors).toEqual([]);
  });
});
