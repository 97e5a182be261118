import Decimal from 'decimal.js';
import { AUTO_MODEL, type AliasConfig, type Capability, type DeploymentConfig, type GatewayConfig, type ModelConfig, type Pricing, type TaskType } from '@openrouter/config';
import { systemClock, type Clock } from '../stats/clock';

export interface Deployment extends DeploymentConfig {
  id: string;
}

/** Prices per 1M tokens in effect now, as exact decimals. */
export interface EffectivePrice {
  currency: string;
  input: Decimal;
  output: Decimal;
  /** The flat price of a request, on top of its tokens. */
  perRequest: Decimal;
  /** Per minute of audio transcribed or translated, and per 1M characters spoken, on top of the tokens. */
  perAudioMinute: Decimal;
  perMillionCharacters: Decimal;
  /** Per image made, on top of the tokens. */
  perImage: Decimal;
  /** The same as numbers, for ranking estimates (exact comparisons use the decimals). */
  estimate: { input: number; output: number; perRequest: number; perAudioMinute: number; perMillionCharacters: number; perImage: number };
}

export interface CatalogModel extends Omit<ModelConfig, 'deployments'> {
  deployments: Deployment[];
}

/**
 * What a request naming a model should be told of its lifecycle: set from the model's
 * `deprecatedAt` (or, with only a `retiresAt` configured, from start-up) on, retired or not.
 * Times in Unix seconds; 0 when not set.
 */
export interface LifecycleNotice {
  model: string;
  /** When it was deprecated; for a retired model configured without a deprecation, its retirement. */
  deprecatedAt: number;
  retiresAt: number;
  /** The model to move to now (the replacement, followed past those retired since); empty: none. */
  replacement: string;
  retired: boolean;
}

/** A model's lifecycle dates in epoch milliseconds (unset: never). */
interface LifecycleTimes {
  deprecatedAt: number | undefined;
  retiresAt: number | undefined;
  replacement: string | undefined;
}

/** The quality a model gets when its configuration says nothing about a task. */
export const DEFAULT_QUALITY = 0.5;

/** The models and aliases the gateway offers, from configuration. */
export class ModelCatalog {
  private readonly models: ReadonlyMap<string, CatalogModel>;
  private readonly deployments: ReadonlyMap<string, { model: CatalogModel; deployment: Deployment }>;
  private readonly aliases: ReadonlyMap<string, AliasConfig>;
  /** Prices per deployment, valid until the next configured price change. */
  private readonly prices = new Map<string, { price: EffectivePrice; validFrom: number; validUntil: number }>();
  private readonly lifecycles: ReadonlyMap<string, LifecycleTimes>;

  /** `clock` judges the models' lifecycles (retired models leave aliases and `auto`). */
  constructor(
    config: Pick<GatewayConfig, 'models' | 'routing'>,
    private readonly clock: Clock = systemClock,
  ) {
    this.models = new Map(
      config.models.map((m) => [m.id, { ...m, deployments: m.deployments.map((d, i) => ({ ...d, id: d.id ?? `${m.id}#${i}` })) }]),
    );
    this.deployments = new Map([...this.models.values()].flatMap((model) => model.deployments.map((deployment) => [deployment.id, { model, deployment }] as const)));
    this.aliases = new Map(Object.entries(config.routing.aliases));
    const time = (at: string | undefined): number | undefined => (at === undefined ? undefined : Date.parse(at));
    this.lifecycles = new Map(
      config.models.flatMap((m) => (m.lifecycle ? [[m.id, { deprecatedAt: time(m.lifecycle.deprecatedAt), retiresAt: time(m.lifecycle.retiresAt), replacement: m.lifecycle.replacement }] as const] : [])),
    );
  }

  now(): number {
    return this.clock.now();
  }

  /** Whether the model is past its `retiresAt`. */
  retired(id: string, now = this.clock.now()): boolean {
    const retiresAt = this.lifecycles.get(id)?.retiresAt;
    return retiresAt !== undefined && now >= retiresAt;
  }

  /**
   * The model that serves requests naming `id` now: the model itself, or for a retired one the first
   * model along its replacements that is not retired (configuration refuses cycles). Undefined for
   * an unknown id, or a retired model that nothing replaces.
   */
  serving(id: string, now = this.clock.now()): CatalogModel | undefined {
    let current = id;
    for (let hops = 0; hops <= this.models.size; hops++) {
      if (!this.retired(current, now)) return this.models.get(current);
      const next = this.lifecycles.get(current)?.replacement;
      if (next === undefined) return undefined;
      current = next;
    }
    return undefined;
  }

  /** When the model retires (or retired), as configured; undefined when never. */
  retiresAt(id: string): number | undefined {
    return this.lifecycles.get(id)?.retiresAt;
  }

  /** What a request naming the model should be told of its lifecycle now; undefined before its deprecation or without one. */
  notice(id: string, now = this.clock.now()): LifecycleNotice | undefined {
    const times = this.lifecycles.get(id);
    if (!times || (times.deprecatedAt === undefined && times.retiresAt === undefined)) return undefined;
    if (times.deprecatedAt !== undefined && now < times.deprecatedAt) return undefined;
    const retired = this.retired(id, now);
    const seconds = (ms: number | undefined): number => (ms === undefined ? 0 : Math.floor(ms / 1000));
    const replacement = times.replacement === undefined ? '' : (this.serving(times.replacement, now)?.id ?? '');
    return { model: id, deprecatedAt: seconds(times.deprecatedAt ?? (retired ? times.retiresAt : undefined)), retiresAt: seconds(times.retiresAt), replacement, retired };
  }

  /** Every configured model, retired ones included. */
  list(): CatalogModel[] {
    return [...this.models.values()];
  }

  /** The models not retired at `now`. */
  live(now = this.clock.now()): CatalogModel[] {
    return this.list().filter((m) => !this.retired(m.id, now));
  }

  model(id: string): CatalogModel | undefined {
    return this.models.get(id);
  }

  deployment(id: string): { model: CatalogModel; deployment: Deployment } | undefined {
    return this.deployments.get(id);
  }

  alias(name: string): AliasConfig | undefined {
    return this.aliases.get(name);
  }

  aliasNames(): string[] {
    return [...this.aliases.keys()];
  }

  isAlias(name: string): boolean {
    return this.aliases.has(name) || name === AUTO_MODEL;
  }

  /**
   * What a name stands for now: one model (a retired one's replacement, or none when nothing
   * replaces it), the members of an alias, or every model `auto` may use. Retired models are in no
   * alias and not in `auto`.
   */
  membersOf(name: string, capability: Capability, now = this.clock.now()): CatalogModel[] | undefined {
    const alias = this.aliases.get(name);
    if (alias) return alias.models.flatMap((id) => (this.retired(id, now) ? [] : (this.models.get(id) ?? [])));
    if (name === AUTO_MODEL) return this.live(now).filter((m) => !m.excludeFromAuto && m.capabilities.includes(capability));
    if (!this.models.has(name)) return undefined;
    const model = this.serving(name, now);
    return model ? [model] : [];
  }

  quality(model: CatalogModel, task: TaskType): number {
    return model.quality[task] ?? model.quality.default ?? DEFAULT_QUALITY;
  }

  /** The price of a deployment now: the model's price (and changes in effect) under the deployment's own. */
  price(model: CatalogModel, deployment: Deployment, now: number): EffectivePrice {
    const cached = this.prices.get(deployment.id);
    if (cached && now < cached.validUntil && now >= cached.validFrom) return cached.price;
    const price = this.computePrice(model, deployment, now);
    const changes = [...model.pricing.changes, ...(model.pricing.deployments[deployment.id]?.changes ?? [])].map((c) => Date.parse(c.from));
    const validUntil = Math.min(Infinity, ...changes.filter((t) => t > now));
    const validFrom = Math.max(-Infinity, ...changes.filter((t) => t <= now));
    this.prices.set(deployment.id, { price, validUntil, validFrom });
    return price;
  }

  private computePrice(model: CatalogModel, deployment: Deployment, now: number): EffectivePrice {
    const base = inEffect(model.pricing, now);
    const own = model.pricing.deployments[deployment.id];
    const override = own ? inEffect({ ...base, changes: own.changes, ...definedPrices(own) }, now) : base;
    const input = new Decimal(override.input);
    const output = new Decimal(override.output);
    const perRequest = new Decimal(override.perRequest);
    const perAudioMinute = new Decimal(override.perAudioMinute);
    const perMillionCharacters = new Decimal(override.perMillionCharacters);
    const perImage = new Decimal(override.perImage);
    return {
      currency: override.currency,
      input,
      output,
      perRequest,
      perAudioMinute,
      perMillionCharacters,
      perImage,
      estimate: { input: input.toNumber(), output: output.toNumber(), perRequest: perRequest.toNumber(), perAudioMinute: perAudioMinute.toNumber(), perMillionCharacters: perMillionCharacters.toNumber(), perImage: perImage.toNumber() },
    };
  }
}

type PriceFields = Pick<Pricing, 'currency' | 'input' | 'output' | 'perRequest' | 'perAudioMinute' | 'perMillionCharacters' | 'perImage'>;
type PriceLike = PriceFields & Pick<Pricing, 'changes'>;

function definedPrices(p: { [K in keyof PriceFields]?: string | undefined }): Partial<PriceFields> {
  const out: Partial<PriceFields> = {};
  if (p.currency !== undefined) out.currency = p.currency;
  if (p.input !== undefined) out.input = p.input;
  if (p.output !== undefined) out.output = p.output;
  if (p.perRequest !== undefined) out.perRequest = p.perRequest;
  if (p.perAudioMinute !== undefined) out.perAudioMinute = p.perAudioMinute;
  if (p.perMillionCharacters !== undefined) out.perMillionCharacters = p.perMillionCharacters;
  if (p.perImage !== undefined) out.perImage = p.perImage;
  return out;
}

function inEffect(pricing: PriceLike, now: number): PriceFields {
  let current: PriceFields = { currency: pricing.currency, input: pricing.input, output: pricing.output, perRequest: pricing.perRequest, perAudioMinute: pricing.perAudioMinute, perMillionCharacters: pricing.perMillionCharacters, perImage: pricing.perImage };
  for (const change of pricing.changes) {
    if (Date.parse(change.from) > now) break;
    current = { ...current, ...definedPrices(change) };
  }
  return current;
}
