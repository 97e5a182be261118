import { createHash } from 'node:crypto';
import type { ModelConfig, PriceChange, Pricing } from '@openrouter/config';
import { Money } from './money';

/** The prices in effect for one model deployment at one instant. */
export interface ResolvedPrice {
  /** Stable id of this price (which entries applied, and a digest of their values). */
  readonly version: string;
  readonly currency: string;
  /** Per 1M tokens. */
  readonly input: Money;
  readonly output: Money;
  readonly cachedInput: Money;
  readonly cacheWrite: Money;
  readonly perRequest: Money;
}

type Fields = Partial<Record<'currency' | 'input' | 'output' | 'cachedInput' | 'cacheWrite' | 'perRequest', string>>;

interface TimelineEntry {
  fromMs: number;
  label: string;
  fields: Fields;
}

interface ModelPrices {
  model: TimelineEntry[];
  deployments: Map<string, TimelineEntry[]>;
}

const FIELD_NAMES = ['currency', 'input', 'output', 'cachedInput', 'cacheWrite', 'perRequest'] as const;

/**
 * Every model's price timeline, from the configuration. A price applies from its `from` instant
 * until the next change, so pricing a request by the instant it was received gives the same
 * answer forever, whatever changes are added later.
 */
export class PriceBook {
  /** Resolved prices by the timeline entries they come from: the same entries always resolve alike. */
  private readonly resolved = new Map<TimelineEntry, Map<TimelineEntry | undefined, ResolvedPrice>>();

  /**
   * The one currency every price of the catalog is in (model, deployment and change prices, the
   * schema's USD default included), or undefined when there are several or none.
   */
  readonly currency: string | undefined;

  private constructor(private readonly models: Map<string, ModelPrices>) {
    const currencies = new Set<string>();
    for (const prices of models.values()) {
      for (const entry of [...prices.model, ...[...prices.deployments.values()].flat()]) if (entry.fields.currency) currencies.add(entry.fields.currency);
    }
    this.currency = currencies.size === 1 ? [...currencies][0] : undefined;
  }

  static fromModels(models: ReadonlyArray<Pick<ModelConfig, 'id' | 'pricing'>>): PriceBook {
    return new PriceBook(new Map(models.map((m) => [m.id, timelinesOf(m.pricing)])));
  }

  /** The price of `model` served by `deployment` at `atMs`, or undefined for an unknown model. */
  priceAt(model: string, deployment: string, atMs: number): ResolvedPrice | undefined {
    const prices = this.models.get(model);
    if (!prices) return undefined;
    const base = entryAt(prices.model, atMs);
    if (!base) return undefined;
    const overlay = entryAt(prices.deployments.get(deployment) ?? [], atMs);
    let byOverlay = this.resolved.get(base);
    if (!byOverlay) this.resolved.set(base, (byOverlay = new Map()));
    let price = byOverlay.get(overlay);
    if (!price) byOverlay.set(overlay, (price = resolve(model, base, deployment, overlay)));
    return price;
  }
}

function resolve(model: string, base: TimelineEntry, deployment: string, overlay: TimelineEntry | undefined): ResolvedPrice {
  const fields: Fields = { ...base.fields, ...(overlay?.fields ?? {}) };
  const label = overlay ? `${model}@${base.label}+${deployment}@${overlay.label}` : `${model}@${base.label}`;
  const input = fields.input ?? '0';
  const resolved = {
    currency: fields.currency ?? 'USD',
    input,
    output: fields.output ?? '0',
    cachedInput: fields.cachedInput ?? input,
    cacheWrite: fields.cacheWrite ?? input,
    perRequest: fields.perRequest ?? '0',
  };
  const digest = createHash('sha256')
    .update(FIELD_NAMES.map((f) => `${f}=${f === 'currency' ? resolved.currency : new Money(resolved[f]).toFixed()}`).join(';'))
    .digest('hex')
    .slice(0, 10);
  return {
    version: `${label}#${digest}`,
    currency: resolved.currency,
    input: new Money(resolved.input),
    output: new Money(resolved.output),
    cachedInput: new Money(resolved.cachedInput),
    cacheWrite: new Money(resolved.cacheWrite),
    perRequest: new Money(resolved.perRequest),
  };
}

function timelinesOf(pricing: Pricing): ModelPrices {
  const baseFields: Fields = {
    currency: pricing.currency,
    input: pricing.input,
    output: pricing.output,
    cachedInput: pricing.cachedInput,
    cacheWrite: pricing.cacheWrite,
    perRequest: pricing.perRequest,
  };
  const model = timeline(baseFields, pricing.changes);
  const deployments = new Map(
    Object.entries(pricing.deployments).map(([id, d]) => [id, timeline({ currency: d.currency, input: d.input, output: d.output, cachedInput: d.cachedInput, cacheWrite: d.cacheWrite, perRequest: d.perRequest }, d.changes)]),
  );
  return { model, deployments };
}

/** Cumulative entries: each change keeps the fields it leaves out from the entry before it. */
function timeline(base: Fields, changes: PriceChange[]): TimelineEntry[] {
  const entries: TimelineEntry[] = [{ fromMs: Number.NEGATIVE_INFINITY, label: 'base', fields: defined(base) }];
  for (const change of changes) {
    const previous = entries[entries.length - 1]?.fields ?? {};
    const fromMs = Date.parse(change.from);
    entries.push({ fromMs, label: new Date(fromMs).toISOString(), fields: { ...previous, ...defined(change) } });
  }
  return entries;
}

function defined(source: Fields & Partial<Record<string, unknown>>): Fields {
  const out: Fields = {};
  for (const name of FIELD_NAMES) {
    const value = source[name];
    if (typeof value === 'string') out[name] = value;
  }
  return out;
}

function entryAt(entries: TimelineEntry[], atMs: number): TimelineEntry | undefined {
  let found: TimelineEntry | undefined;
  for (const entry of entries) {
    if (entry.fromMs <= atMs) found = entry;
    else break;
  }
  return found;
}
