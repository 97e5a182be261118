import Decimal from 'decimal.js';
import { AUTO_MODEL, type AliasConfig, type Capability, type DeploymentConfig, type GatewayConfig, type ModelConfig, type Pricing, type TaskType } from '@openrouter/config';

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
  /** The same as numbers, for ranking estimates (exact comparisons use the decimals). */
  estimate: { input: number; output: number; perRequest: number };
}

export interface CatalogModel extends Omit<ModelConfig, 'deployments'> {
  deployments: Deployment[];
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

  constructor(config: Pick<GatewayConfig, 'models' | 'routing'>) {
    this.models = new Map(
      config.models.map((m) => [m.id, { ...m, deployments: m.deployments.map((d, i) => ({ ...d, id: d.id ?? `${m.id}#${i}` })) }]),
    );
    this.deployments = new Map([...this.models.values()].flatMap((model) => model.deployments.map((deployment) => [deployment.id, { model, deployment }] as const)));
    this.aliases = new Map(Object.entries(config.routing.aliases));
  }

  list(): CatalogModel[] {
    return [...this.models.values()];
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

  /** What a name stands for: one model, the members of an alias, or every model `auto` may use. */
  membersOf(name: string, capability: Capability): CatalogModel[] | undefined {
    const alias = this.aliases.get(name);
    if (alias) return alias.models.flatMap((id) => this.models.get(id) ?? []);
    if (name === AUTO_MODEL) return this.list().filter((m) => !m.excludeFromAuto && m.capabilities.includes(capability));
    const model = this.models.get(name);
    return model ? [model] : undefined;
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
    const override = own ? inEffect({ currency: base.currency, input: base.input, output: base.output, perRequest: base.perRequest, changes: own.changes, ...definedPrices(own) }, now) : base;
    const input = new Decimal(override.input);
    const output = new Decimal(override.output);
    const perRequest = new Decimal(override.perRequest);
    return { currency: override.currency, input, output, perRequest, estimate: { input: input.toNumber(), output: output.toNumber(), perRequest: perRequest.toNumber() } };
  }
}

type PriceFields = Pick<Pricing, 'currency' | 'input' | 'output' | 'perRequest'>;
type PriceLike = PriceFields & Pick<Pricing, 'changes'>;

function definedPrices(p: { [K in keyof PriceFields]?: string | undefined }): Partial<PriceFields> {
  const out: Partial<PriceFields> = {};
  if (p.currency !== undefined) out.currency = p.currency;
  if (p.input !== undefined) out.input = p.input;
  if (p.output !== undefined) out.output = p.output;
  if (p.perRequest !== undefined) out.perRequest = p.perRequest;
  return out;
}

function inEffect(pricing: PriceLike, now: number): PriceFields {
  let current: PriceFields = { currency: pricing.currency, input: pricing.input, output: pricing.output, perRequest: pricing.perRequest };
  for (const change of pricing.changes) {
    if (Date.parse(change.from) > now) break;
    current = { ...current, ...definedPrices(change) };
  }
  return current;
}
