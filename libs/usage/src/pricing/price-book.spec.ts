import { createHash } from 'node:crypto';
import { usagev1 } from '@openrouter/contracts';
import { pricingSchema } from '@openrouter/config';
import { emptyUsageEvent } from '../event/usage-event.factory';
import { costOf, priceEvent } from './cost';
import { Money, moneyText } from './money';
import { PriceBook } from './price-book';

const JUNE = Date.parse('2025-06-01T00:00:00Z');

function book(pricing: Record<string, unknown>, id = 'm'): PriceBook {
  return PriceBook.fromModels([{ id, pricing: pricingSchema.parse(pricing) }]);
}

function event(model: string, deployment: string, atMs: number, tokens: Partial<usagev1.Tokens>, status = usagev1.Status.STATUS_OK): usagev1.UsageEvent {
  const e = emptyUsageEvent('r', atMs);
  e.servedModel = model;
  e.deployment = deployment;
  e.status = status;
  e.tokens = { prompt: 0, completion: 0, cachedRead: 0, cacheWrite: 0, reasoning: 0, estimated: false, ...tokens };
  return e;
}

describe('pricing', () => {
  it('computes cost exactly where floats would not', () => {
    const b = book({ input: '0.1', output: '0.2' });
    // 0.1 + 0.2 per token in floats is 0.30000000000000004.
    const priced = priceEvent(b, event('m', 'd', JUNE, { prompt: 1_000_000, completion: 1_000_000 }));
    expect(priced.amount).toBe('0.3');
    let sum = new Money(0);
    for (let i = 0; i < 10_000; i++) sum = sum.plus(priceEvent(b, event('m', 'd', JUNE, { prompt: 7, completion: 3 })).amount);
    expect(moneyText(sum)).toBe('0.013');
  });

  it('prices cached reads, cache writes and output at their own rates, and the request fee', () => {
    const b = book({ input: '3', output: '15', cachedInput: '0.3', cacheWrite: '3.75', perRequest: '0.0001' });
    const price = b.priceAt('m', 'd', JUNE);
    if (!price) throw new Error('no price');
    // 1000 prompt tokens of which 600 cached reads and 100 cache writes: 300 plain.
    const cost = costOf({ prompt: 1000, completion: 200, cachedRead: 600, cacheWrite: 100 }, price, true);
    // (300*3 + 600*0.3 + 100*3.75 + 200*15) / 1e6 + 0.0001
    expect(moneyText(cost)).toBe('0.004555');
    expect(moneyText(costOf({ prompt: 1000, completion: 200, cachedRead: 600, cacheWrite: 100 }, price, false))).toBe('0.004455');
  });

  it('prices cache writes kept an hour at cacheWrite1h, the rest of the writes at cacheWrite; unset, at cacheWrite', () => {
    const b = book({ input: '3', output: '15', cachedInput: '0.3', cacheWrite: '3.75', cacheWrite1h: '6' });
    const price = b.priceAt('m', 'd', JUNE);
    if (!price) throw new Error('no price');
    // 1000 prompt tokens: 100 written for five minutes, 400 for an hour, 500 plain. (500*3 + 100*3.75 + 400*6) / 1e6
    expect(moneyText(costOf({ prompt: 1000, completion: 0, cachedRead: 0, cacheWrite: 500, cacheWrite1h: 400 }, price, false))).toBe('0.004275');
    // Never more hour-long writes than writes.
    expect(moneyText(costOf({ prompt: 1000, completion: 0, cachedRead: 0, cacheWrite: 100, cacheWrite1h: 400 }, price, false))).toBe(moneyText(costOf({ prompt: 1000, completion: 0, cachedRead: 0, cacheWrite: 100, cacheWrite1h: 100 }, price, false)));
    expect(priceEvent(b, event('m', 'd', JUNE, { prompt: 1000, cacheWrite: 500, cacheWrite1h: 400 })).amount).toBe('0.004275');
    // Unset: the cacheWrite price, as before it existed, and the price's version is unchanged.
    const plain = book({ input: '3', output: '15', cachedInput: '0.3', cacheWrite: '3.75' });
    expect(priceEvent(plain, event('m', 'd', JUNE, { prompt: 1000, cacheWrite: 500, cacheWrite1h: 400 })).amount).toBe('0.003375');
    expect(plain.priceAt('m', 'd', JUNE)?.version).not.toBe(price.version);
  });

  it('charges cached tokens at the input price when no cache price is set', () => {
    const b = book({ input: '2', output: '0' });
    expect(priceEvent(b, event('m', 'd', JUNE, { prompt: 500_000, cachedRead: 250_000 })).amount).toBe('1');
  });

  it('keeps earlier requests at their price when the price changes', () => {
    const b = book({ input: '1', output: '2', changes: [{ from: '2025-06-15', input: '0.5' }, { from: '2025-07-01T12:00:00Z', output: '4' }] });
    const tokens = { prompt: 1_000_000, completion: 1_000_000 };
    const before = priceEvent(b, event('m', 'd', Date.parse('2025-06-14T23:59:59.999Z'), tokens));
    const after = priceEvent(b, event('m', 'd', Date.parse('2025-06-15T00:00:00Z'), tokens));
    const later = priceEvent(b, event('m', 'd', Date.parse('2025-07-02T00:00:00Z'), tokens));
    expect([before.amount, after.amount, later.amount]).toEqual(['3', '2.5', '4.5']);
    expect(new Set([before.priceVersion, after.priceVersion, later.priceVersion]).size).toBe(3);
    expect(before.priceVersion).toMatch(/^m@base#[0-9a-f]{10}$/);
    expect(after.priceVersion).toMatch(/^m@2025-06-15T00:00:00\.000Z#/);
    // Adding a later change does not touch the version or amount of earlier requests.
    const extended = book({ input: '1', output: '2', changes: [{ from: '2025-06-15', input: '0.5' }, { from: '2025-07-01T12:00:00Z', output: '4' }, { from: '2026-01-01', input: '9' }] });
    expect(priceEvent(extended, event('m', 'd', Date.parse('2025-06-14T00:00:00Z'), tokens))).toEqual(before);
  });

  it('lays deployment prices over the model price', () => {
    const b = book({ input: '1', output: '2', changes: [{ from: '2025-06-15', output: '3' }], deployments: { cheap: { input: '0.5', changes: [{ from: '2025-07-01', perRequest: '0.01' }] } } });
    const tokens = { prompt: 1_000_000, completion: 1_000_000 };
    expect(priceEvent(b, event('m', 'other', JUNE, tokens)).amount).toBe('3');
    expect(priceEvent(b, event('m', 'cheap', JUNE, tokens)).amount).toBe('2.5');
    expect(priceEvent(b, event('m', 'cheap', Date.parse('2025-06-20T00:00:00Z'), tokens)).amount).toBe('3.5');
    const july = priceEvent(b, event('m', 'cheap', Date.parse('2025-07-02T00:00:00Z'), tokens));
    expect(july.amount).toBe('3.51');
    expect(july.priceVersion).toMatch(/^m@2025-06-15T00:00:00\.000Z\+cheap@2025-07-01T00:00:00\.000Z#/);
  });

  it('prices a request at the service tier that served it when the model declares that tier, else at the standard price', () => {
    const b = book({
      input: '2.5',
      output: '10',
      cachedInput: '1.25',
      deployments: { azure: { input: '2' } },
      tiers: { priority: { input: '4.25', output: '17', cachedInput: '2.125', changes: [{ from: '2025-07-01', output: '20' }] }, flex: { input: '1.25', output: '5' } },
    });
    const tokens = { prompt: 1_000_000, completion: 1_000_000 };
    const at = (serviceTier: string | undefined, deployment = 'd', atMs = JUNE) => priceEvent(b, { ...event('m', deployment, atMs, tokens), serviceTier });
    expect(at(undefined).amount).toBe('12.5');
    expect(at('default').amount).toBe('12.5');
    expect(at('priority').amount).toBe('21.25');
    expect(at('priority').priceVersion).toMatch(/^m@base\+priority@base#/);
    expect(at('flex').amount).toBe('6.25');
    // A tier's changes apply from their instant; a deployment's own prices give way to the tier's.
    expect(at('priority', 'd', Date.parse('2025-07-02T00:00:00Z')).amount).toBe('24.25');
    expect(at('priority', 'azure').amount).toBe('21.25');
    // A tier the model does not declare (`scale` here) is priced at the standard price.
    expect(at('scale')).toEqual(at(undefined));
    // Each call of a request metered call by call at its own tier, else the request's.
    const calls = [
      { servedModel: 'm', deployment: 'd', tokens: { prompt: 1_000_000, completion: 0, cachedRead: 0, cacheWrite: 0 }, serviceTier: 'flex' },
      { servedModel: 'm', deployment: 'd', tokens: { prompt: 1_000_000, completion: 0, cachedRead: 0, cacheWrite: 0 } },
    ];
    expect(priceEvent(b, { ...event('m', 'd', JUNE, {}), serviceTier: 'priority' }, calls).amount).toBe('5.5');
  });

  it('gives the same version for the same prices however they are written', () => {
    const a = book({ input: '0.15', output: '0.6' }).priceAt('m', 'd', JUNE);
    const b = book({ input: '0.150', output: '0.60' }).priceAt('m', 'd', JUNE);
    expect(a?.version).toBe(b?.version);
  });

  it('prices audio by the minute to the millisecond and speech by the million characters, on top of tokens', () => {
    const b = book({ input: '3', output: '5', perAudioMinute: '0.006', perMillionCharacters: '15', perRequest: '0.0001', changes: [{ from: '2025-07-01', perAudioMinute: '0.003' }] });
    const audio = { ...event('m', 'd', JUNE, { prompt: 100, completion: 50 }), audioMs: 9_450 };
    // 100 × 3 / 1e6 + 50 × 5 / 1e6 + 9.45 s at 0.006 a minute + the fee
    expect(priceEvent(b, audio).amount).toBe('0.001595');
    expect(priceEvent(b, { ...audio, receivedAtMs: Date.parse('2025-07-02T00:00:00Z') }).amount).toBe('0.0011225');
    const speech = { ...event('m', 'd', JUNE, {}), characters: 1234 };
    expect(priceEvent(b, speech).amount).toBe('0.01861');
    expect(priceEvent(b, { ...speech, status: usagev1.Status.STATUS_ERROR }).amount).toBe('0.01851');
  });

  it('lays audio prices of deployments and tiers over the model\'s, and versions them', () => {
    const b = book({ perAudioMinute: '0.006', deployments: { cheap: { perAudioMinute: '0.004' } } });
    expect(b.priceAt('m', 'cheap', JUNE)?.perAudioMinute.toFixed()).toBe('0.004');
    expect(b.priceAt('m', 'other', JUNE)?.perAudioMinute.toFixed()).toBe('0.006');
    expect(b.priceAt('m', 'cheap', JUNE)?.version).not.toBe(b.priceAt('m', 'other', JUNE)?.version);
    expect(book({ perMillionCharacters: '15' }).priceAt('m', 'd', JUNE)?.version).not.toBe(book({ perMillionCharacters: '30' }).priceAt('m', 'd', JUNE)?.version);
  });

  it("prices an edit's input image tokens at imageInput, the rest of its input at input, and imageInput unset at input", () => {
    const b = book({ input: '5', imageInput: '10', output: '40' });
    const edit = { ...event('m', 'd', JUNE, { prompt: 1_331, completion: 4_160 }), imagePromptTokens: 1_323 };
    // 8 × 5 + 1323 × 10 + 4160 × 40, per 1M
    expect(priceEvent(b, edit).amount).toBe('0.17967');
    // More image tokens than input (a malformed report) never prices text below 0.
    expect(priceEvent(b, { ...edit, imagePromptTokens: 5_000 }).amount).toBe('0.17971');
    expect(priceEvent(book({ input: '5', output: '40' }), edit).amount).toBe('0.173055');
    expect(book({ input: '5' }).priceAt('m', 'd', JUNE)?.version).not.toBe(b.priceAt('m', 'd', JUNE)?.version);
  });

  it('prices each image made at perImage, on top of tokens, laid over by deployments and changes and versioned', () => {
    const b = book({ perImage: '0.02', perRequest: '0.001', changes: [{ from: '2025-07-01', perImage: '0.018' }], deployments: { hd: { perImage: '0.08' } } });
    const images = { ...event('m', 'd', JUNE, { prompt: 5 }), images: 10 };
    expect(priceEvent(b, images).amount).toBe('0.201');
    expect(priceEvent(b, { ...images, receivedAtMs: Date.parse('2025-07-02T00:00:00Z') }).amount).toBe('0.181');
    expect(priceEvent(b, { ...images, deployment: 'hd' }).amount).toBe('0.801');
    // No image made (a request that failed before its answer): the fee alone, or nothing.
    expect(priceEvent(b, { ...images, images: 0 }).amount).toBe('0.001');
    expect(b.priceAt('m', 'hd', JUNE)?.version).not.toBe(b.priceAt('m', 'd', JUNE)?.version);
    expect(book({ input: '0.15', output: '0.6', perImage: '0' }).priceAt('m', 'd', JUNE)?.version).toBe(book({ input: '0.15', output: '0.6' }).priceAt('m', 'd', JUNE)?.version);
  });

  it('keeps the versions of prices without audio fields as they were before those fields existed', () => {
    const digest = createHash('sha256').update('currency=USD;input=0.15;output=0.6;cachedInput=0.15;cacheWrite=0.15;perRequest=0').digest('hex').slice(0, 10);
    expect(book({ input: '0.15', output: '0.6' }).priceAt('m', 'd', JUNE)?.version).toBe(`m@base#${digest}`);
    expect(book({ input: '0.15', output: '0.6', perAudioMinute: '0' }).priceAt('m', 'd', JUNE)?.version).toBe(`m@base#${digest}`);
    expect(book({ input: '0.15', output: '0.6', imageInput: '0.15' }).priceAt('m', 'd', JUNE)?.version).not.toBe(`m@base#${digest}`);
  });

  it('costs nothing for an unknown model and charges no request fee for errors', () => {
    const b = book({ input: '1', perRequest: '0.5' });
    expect(priceEvent(b, event('unknown', 'd', JUNE, { prompt: 10 }))).toEqual({ amount: '0', currency: 'USD', priceVersion: '' });
    expect(priceEvent(b, event('m', 'd', JUNE, {}, usagev1.Status.STATUS_ERROR)).amount).toBe('0');
    expect(priceEvent(b, event('m', 'd', JUNE, {}, usagev1.Status.STATUS_CANCELLED)).amount).toBe('0.5');
  });

  it('records a request with no price at 0 in the catalog\'s currency when it has one, so per-currency totals stay whole', () => {
    const eur = PriceBook.fromModels([
      { id: 'a', pricing: pricingSchema.parse({ currency: 'EUR', input: '1', changes: [{ from: '2025-06-15', input: '2' }] }) },
      { id: 'b', pricing: pricingSchema.parse({ currency: 'EUR', input: '3', deployments: { d: { input: '4' } } }) },
    ]);
    expect(eur.currency).toBe('EUR');
    const refused = event('', '', JUNE, {}, usagev1.Status.STATUS_ERROR);
    expect(priceEvent(eur, refused)).toEqual({ amount: '0', currency: 'EUR', priceVersion: '' });
    expect(priceEvent(eur, event('unknown', 'd', JUNE, { prompt: 10 }))).toEqual({ amount: '0', currency: 'EUR', priceVersion: '' });
    // A model left at the default currency, or a deployment priced in another, makes two: no single one.
    const mixed = [
      PriceBook.fromModels([{ id: 'a', pricing: pricingSchema.parse({ currency: 'EUR' }) }, { id: 'b', pricing: pricingSchema.parse({}) }]),
      PriceBook.fromModels([{ id: 'a', pricing: pricingSchema.parse({ currency: 'EUR', deployments: { d: { currency: 'GBP' } } }) }]),
      PriceBook.fromModels([{ id: 'a', pricing: pricingSchema.parse({ currency: 'EUR', changes: [{ from: '2025-07-01', currency: 'CHF' }] }) }]),
    ];
    for (const b of mixed) {
      expect(b.currency).toBeUndefined();
      expect(priceEvent(b, refused).currency).toBe('USD');
    }
    expect(PriceBook.fromModels([]).currency).toBeUndefined();
  });

  it('prices each call of a request that made several at its own model and deployment, with a request fee per call', () => {
    const b = PriceBook.fromModels([
      { id: 'cheap', pricing: pricingSchema.parse({ input: '0.15', output: '0.60', perRequest: '0.01', deployments: { east: { perRequest: '0.02' } } }) },
      { id: 'dear', pricing: pricingSchema.parse({ input: '3', output: '15', perRequest: '0.01' }) },
    ]);
    const million = { prompt: 1_000_000, completion: 1_000_000, cachedRead: 0, cacheWrite: 0 };
    const calls = [
      { servedModel: 'cheap', deployment: 'west', tokens: million },
      { servedModel: 'dear', deployment: 'x', tokens: million },
      { servedModel: 'cheap', deployment: 'east', tokens: million },
    ];
    // The event's own model and tokens are not read when it has several calls.
    const e = event('cheap', 'west', JUNE, { prompt: 1 });
    const priced = priceEvent(b, e, calls);
    // 0.76 + 18.01 + 0.77
    expect(priced.amount).toBe('19.54');
    expect(priced.currency).toBe('USD');
    expect(priced.priceVersion.split(', ')).toEqual([b.priceAt('cheap', 'west', JUNE)?.version, b.priceAt('dear', 'x', JUNE)?.version, b.priceAt('cheap', 'east', JUNE)?.version]);
    // Failed: tokens only, no fee, as for one call.
    expect(priceEvent(b, { ...e, status: usagev1.Status.STATUS_ERROR }, calls).amount).toBe('19.5');
    // A call that answered pays its fee when a later one failed the request; one that failed does not.
    const failed = { ...e, status: usagev1.Status.STATUS_ERROR };
    const answered = calls.map((c, i) => ({ ...c, served: i < 2 }));
    expect(priceEvent(b, failed, answered).amount).toBe('19.52');
    // A call's own flag wins over the request's status either way.
    expect(priceEvent(b, e, answered).amount).toBe('19.52');
    // A call of an unknown model adds nothing; one call alone is priced as that call, as an event of it would be.
    expect(priceEvent(b, e, [...calls.slice(0, 1), { servedModel: 'gone', deployment: 'x', tokens: million }]).amount).toBe('0.76');
    expect(priceEvent(b, e, calls.slice(1, 2)).amount).toBe(priceEvent(b, event('dear', 'x', JUNE, million)).amount);
    expect(priceEvent(b, failed, [{ servedModel: 'dear', deployment: 'x', tokens: million, served: true }]).amount).toBe('18.01');
    // Costs are never converted: a call priced in another currency than the first is left out.
    const two = PriceBook.fromModels([{ id: 'eur', pricing: pricingSchema.parse({ currency: 'EUR', input: '1' }) }, { id: 'usd', pricing: pricingSchema.parse({ input: '1' }) }]);
    const both = [
      { servedModel: 'eur', deployment: 'd', tokens: million },
      { servedModel: 'usd', deployment: 'd', tokens: million },
    ];
    expect(priceEvent(two, e, both)).toMatchObject({ amount: '1', currency: 'EUR' });
  });

  it('rejects price changes out of order', () => {
    expect(() => pricingSchema.parse({ changes: [{ from: '2025-07-01' }, { from: '2025-06-01' }] })).toThrow(/increasing/);
    expect(() => pricingSchema.parse({ changes: [{ from: 'yesterday' }] })).toThrow(/date/);
  });
});
