import { createHash } from 'node:crypto';
import type { DeploymentPricing, ModelConfig, PriceChange, Pricing } from '@openrouter/config';
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
  /** Per 1M cache-write tokens kept an hour. */
  readonly cacheWrite1h: Money;
  /** Per 1M input image tokens (an image edit's). */
  readonly imageInput: Money;
  readonly perRequest: Money;
  /** Per minute of audio transcribed or translated. */
  readonly perAudioMinute: Money;
  /** Per 1M characters of text spoken. */
  readonly perMillionCharacters: Money;
  /** Per image made. */
  readonly perImage: Money;
}

type Fields = Partial<Record<'currency' | 'input' | 'output' | 'cachedInput' | 'cacheWrite' | 'cacheWrite1h' | 'imageInput' | 'perRequest' | 'perAudioMinute' | 'perMillionCharacters' | 'perImage', string>>;

interface TimelineEntry {
  fromMs: number;
  label: string;
  fields: Fields;
}

interface ModelPrices {
  model: TimelineEntry[];
  deployments: Map<string, TimelineEntry[]>;
  /** By service tier (`priority`, `flex`, `scale`): laid over the model's and the deployment's. */
  tiers: Map<string, TimelineEntry[]>;
}

const FIELD_NAMES = ['currency', 'input', 'output', 'cachedInput', 'cacheWrite', 'perRequest'] as const;
/** Fields in a price's digest only when set above 0, so the prices that existed before them keep their versions. */
const UNIT_FIELD_NAMES = ['perAudioMinute', 'perMillionCharacters', 'perImage'] as const;
/** Fields in a price's digest only when set (unset, they are another field's price), for the same reason. */
const DERIVED_FIELD_NAMES = ['imageInput', 'cacheWrite1h'] as const;

/**
 * Every model's price timeline, from the configuration. A price applies from its `from` instant
 * until the next change, so pricing a request by the instant it was received gives the same
 * answer forever, whatever changes are added later.
 */
export class PriceBook {
  /** Resolved prices by the timeline entries they come from (model, deployment, tier): the same entries always resolve alike. */
  private readonly resolved = new Map<TimelineEntry, Map<TimelineEntry | undefined, Map<TimelineEntry | undefined, ResolvedPrice>>>();

  /**
   * The one currency every price of the catalog is in (model, deployment and change prices, the
   * schema's USD default included), or undefined when there are several or none.
   */
  readonly currency: string | undefined;

  private constructor(private readonly models: Map<string, ModelPrices>) {
    const currencies = new Set<string>();
    for (const prices of models.values()) {
      for (const entry of [...prices.model, ...[...prices.deployments.values(), ...prices.tiers.values()].flat()]) if (entry.fields.currency) currencies.add(entry.fields.currency);
    }
    this.currency = currencies.size === 1 ? [...currencies][0] : undefined;
  }

  static fromModels(models: ReadonlyArray<Pick<ModelConfig, 'id' | 'pricing'>>): PriceBook {
    return new PriceBook(new Map(models.map((m) => [m.id, timelinesOf(m.pricing)])));
  }

  /**
   * The price of `model` served by `deployment` at `atMs`, or undefined for an unknown model. With
   * `tier` (a `service_tier`), the model's price for that tier when it declares one; the standard
   * price otherwise (`auto`, `default`, or a tier it does not declare).
   */
  priceAt(model: string, deployment: string, atMs: number, tier?: string): ResolvedPrice | undefined {
    const prices = this.models.get(model);
    if (!prices) return undefined;
    const base = entryAt(prices.model, atMs);
    if (!base) return undefined;
    const overlay = entryAt(prices.deployments.get(deployment) ?? [], atMs);
    // Own entries only: a tier named `constructor` is no tier.
    const tiered = tier !== undefined && prices.tiers.has(tier) ? entryAt(prices.tiers.get(tier) ?? [], atMs) : undefined;
    let byOverlay = this.resolved.get(base);
    if (!byOverlay) this.resolved.set(base, (byOverlay = new Map()));
    let byTier = byOverlay.get(overlay);
    if (!byTier) byOverlay.set(overlay, (byTier = new Map()));
    let price = byTier.get(tiered);
    if (!price) byTier.set(tiered, (price = resolve(model, base, deployment, overlay, tiered && tier !== undefined ? { tier, entry: tiered } : undefined)));
    return price;
  }
}

function resolve(model: string, base: TimelineEntry, deployment: string, overlay: TimelineEntry | undefined, tiered: { tier: string; entry: TimelineEntry } | undefined): ResolvedPrice {
  // The tier's fields win: a deployment's own prices are its standard tier's.
  const fields: Fields = { ...base.fields, ...(overlay?.fields ?? {}), ...(tiered?.entry.fields ?? {}) };
  const standard = overlay ? `${model}@${base.label}+${deployment}@${overlay.label}` : `${model}@${base.label}`;
  // The version names the tier, so a record shows which tier's price it was charged at.
  const label = tiered ? `${standard}+${tiered.tier}@${tiered.entry.label}` : standard;
  const input = fields.input ?? '0';
  const resolved = {
    currency: fields.currency ?? 'USD',
    input,
    output: fields.output ?? '0',
    cachedInput: fields.cachedInput ?? input,
    cacheWrite: fields.cacheWrite ?? input,
    cacheWrite1h: fields.cacheWrite1h ?? fields.cacheWrite ?? input,
    imageInput: fields.imageInput ?? input,
    perRequest: fields.perRequest ?? '0',
    perAudioMinute: fields.perAudioMinute ?? '0',
    perMillionCharacters: fields.perMillionCharacters ?? '0',
    perImage: fields.perImage ?? '0',
  };
  const terms = FIELD_NAMES.map((f) => `${f}=${f === 'currency' ? resolved.currency : new Money(resolved[f]).toFixed()}`);
  for (const f of UNIT_FIELD_NAMES) {
    const value = new Money(resolved[f]);
    if (value.gt(0)) terms.push(`${f}=${value.toFixed()}`);
  }
  for (const f of DERIVED_FIELD_NAMES) if (fields[f] !== undefined) terms.push(`${f}=${new Money(resolved[f]).toFixed()}`);
  const digest = createHash('sha256')
    .update(terms.join(';'))
    .digest('hex')
    .slice(0, 10);
  return {
    version: `${label}#${digest}`,
    currency: resolved.currency,
    input: new Money(resolved.input),
    output: new Money(resolved.output),
    cachedInput: new Money(resolved.cachedInput),
    cacheWrite: new Money(resolved.cacheWrite),
    cacheWrite1h: new Money(resolved.cacheWrite1h),
    imageInput: new Money(resolved.imageInput),
    perRequest: new Money(resolved.perRequest),
    perAudioMinute: new Money(resolved.perAudioMinute),
    perMillionCharacters: new Money(resolved.perMillionCharacters),
    perImage: new Money(resolved.perImage),
  };
}

function timelinesOf(pricing: Pricing): ModelPrices {
  const baseFields: Fields = {
    currency: pricing.currency,
    input: pricing.input,
    output: pricing.output,
    cachedInput: pricing.cachedInput,
    cacheWrite: pricing.cacheWrite,
    cacheWrite1h: pricing.cacheWrite1h,
    imageInput: pricing.imageInput,
    perRequest: pricing.perRequest,
    perAudioMinute: pricing.perAudioMinute,
    perMillionCharacters: pricing.perMillionCharacters,
    perImage: pricing.perImage,
  };
  const model = timeline(baseFields, pricing.changes);
  const deployments = new Map(Object.entries(pricing.deployments).map(([id, d]) => [id, overlayTimeline(d)]));
  const tiers = new Map(Object.entries(pricing.tiers).flatMap(([tier, t]) => (t ? [[tier, overlayTimeline(t)] as const] : [])));
  return { model, deployments, tiers };
}

/** The timeline of prices laid over the model's (a deployment's, a tier's). */
function overlayTimeline(d: DeploymentPricing): TimelineEntry[] {
  return timeline(
    { currency: d.currency, input: d.input, output: d.output, cachedInput: d.cachedInput, cacheWrite: d.cacheWrite, cacheWrite1h: d.cacheWrite1h, imageInput: d.imageInput, perRequest: d.perRequest, perAudioMinute: d.perAudioMinute, perMillionCharacters: d.perMillionCharacters, perImage: d.perImage },
    d.changes,
  );
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
  for (const name of [...FIELD_NAMES, ...UNIT_FIELD_NAMES, ...DERIVED_FIELD_NAMES]) {
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
