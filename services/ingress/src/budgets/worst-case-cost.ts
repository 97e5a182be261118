import { overridable, policyFor, type Capability, type GatewayConfig } from '@openrouter/config';
import type { routerv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { codePoints, isAudioUpload, isAudioUploadEndpoint, isFormBody, isSpeechEndpoint, LEGACY_DEFAULT_MAX_TOKENS, MAX_IMAGES_PER_REQUEST, REQUEST_BOUNDS, wavDurationMs } from '@openrouter/openai-wire';
import { Money, type PriceBook } from '@openrouter/usage';
import { countTextTokens, DEFAULT_IMAGE_TOKENS, type ImageCost } from '../access/prompt-tokens';

/** The highest prices a request naming a model can be charged, per token, in micro-units. */
export interface WorstPrice {
  /** Micro-units per prompt token (the price per 1M tokens, read as micro-units per token). */
  inputMicros: Money;
  outputMicros: Money;
  /** Micro-units per request. */
  requestMicros: Money;
  /** Micro-units per minute of audio transcribed or translated (`perAudioMinute`). */
  audioMinuteMicros: Money;
  /** Micro-units per character spoken (`perMillionCharacters`, read as micro-units per character). */
  characterMicros: Money;
  /** Micro-units per image made (`perImage`). */
  imageMicros: Money;
}

/** The estimate of prompt tokens is padded so a provider that counts a few more is still covered. */
export const PROMPT_MARGIN = { ratio: 1.1, tokens: 16 } as const;

/** What in a request decides which models may serve it. */
export interface CandidateQuery {
  /** The model the request names (an id, an alias, `auto`). */
  model: string;
  /** The request's fallback list (`models`, in the body or the `x-openrouter-models` header). */
  fallbacks: readonly string[];
  /** The request's `route.allow_fallbacks`, when it sets one. */
  allowFallbacks: boolean | undefined;
  /** Who asks (the routing policy that applies depends on it). */
  tenant: { orgId: string; projectId: string };
  /** When the request is routed, about now (epoch ms): the models' lifecycles are judged then. */
  atMs: number;
}

/**
 * How long before its `retiresAt` a model already counts as retired here: the router judges the
 * lifecycle a moment after the reservation, by its own clock, and a request routed just after a
 * retirement goes to the replacement.
 */
export const RETIREMENT_LEAD_MS = 60_000;

/**
 * Worst-case prices for a request: the dearest of the deployments the router may use for it.
 * That is the named model (an alias: any member; `auto` or an unknown id: any model), the arms of
 * an experiment and both sides of a gray release on that name, and — when fallbacks are allowed —
 * the request's fallback list and each model's configured `fallbacks`, followed transitively.
 * A model named (by the request, an arm or a `fallbacks` list) that has retired is served by its
 * replacement, as the router serves it: its replacements are included, followed past those
 * retired too, and (fallbacks allowed) their own fallbacks. A retired member of an alias is not
 * replaced (the router leaves it out), so it adds nothing but its own price.
 * With `routing.contextFallback` on and fallbacks allowed, the router moves to a model with a
 * larger context window after a provider refused the request for its length: those models are
 * included when the request's padded size (`tokensFor`) does not fit a candidate's window. The
 * reservation already assumes a provider counts at most `PROMPT_MARGIN` more prompt tokens than the
 * estimate, so a request that fits every candidate's window this way is not refused for its length.
 */
export class WorstCasePricing {
  /** Each model's deployments: their price-list ids and the provider each calls. */
  private readonly deployments = new Map<string, Array<{ id: string; provider: string }>>();
  /** Provider id → its residency label, which tenant policies allow or not. */
  private readonly residency: ReadonlyMap<string, string | undefined>;
  private readonly catalog = new Map<string, GatewayConfig['models'][number]>();
  /** By name, as the router reads them: a request naming `constructor` names no alias. */
  private readonly aliases: ReadonlyMap<string, GatewayConfig['routing']['aliases'][string]>;
  private readonly routing: GatewayConfig['routing'];

  constructor(
    private readonly config: Pick<GatewayConfig, 'models' | 'routing' | 'budgets' | 'providers'>,
    private readonly prices: PriceBook,
  ) {
    for (const model of config.models) {
      this.deployments.set(model.id, model.deployments.map((d, i) => ({ id: d.id ?? `${model.id}#${i}`, provider: d.provider })));
      this.catalog.set(model.id, model);
    }
    this.residency = new Map(Object.entries(config.providers).map(([id, p]) => [id, p.residency]));
    this.routing = config.routing;
    this.aliases = new Map(Object.entries(config.routing.aliases));
  }

  /** Every public model the request may be served by. */
  candidates(query: CandidateQuery, tokensFor?: (models: readonly string[]) => number): string[] {
    const primaries = [query.model];
    for (const experiment of this.routing.experiments) if (experiment.enabled && experiment.target === query.model) primaries.push(...experiment.arms.map((a) => a.model));
    for (const release of this.routing.grayReleases) if (release.target === query.model) primaries.push(release.baseline, release.canary);
    const fallbacksAllowed = this.fallbacksAllowed(query, primaries);
    const names = fallbacksAllowed ? [...primaries, ...query.fallbacks] : primaries;
    const out = new Set<string>();
    for (const name of names) {
      const members = membersOf(name, this.catalog, this.aliases);
      if (!members) return [...this.deployments.keys()];
      for (const m of members) out.add(m);
      if (this.catalog.has(name)) for (const r of this.replacementsOf(name, query.atMs)) out.add(r);
    }
    if (!fallbacksAllowed) return [...out];
    // A set grows while it is iterated: every model added is visited too (fallbacks of fallbacks,
    // and of replacements).
    for (const id of out) {
      for (const fallback of this.catalog.get(id)?.fallbacks ?? []) {
        out.add(fallback);
        for (const r of this.replacementsOf(fallback, query.atMs)) out.add(r);
      }
    }
    if (this.routing.contextFallback) {
      const smallest = Math.min(...[...out].map((id) => this.catalog.get(id)?.contextWindow ?? Infinity));
      if (!tokensFor || tokensFor([...out]) > smallest) for (const model of this.catalog.values()) if (model.contextWindow > smallest) out.add(model.id);
    }
    return [...out];
  }

  /**
   * The models that may serve requests naming model `id` in its place at `atMs`: none while it is
   * live; once retired (see `RETIREMENT_LEAD_MS`), its replacement, and that one's when it is
   * retired too, as the router's `ModelCatalog.serving` follows them. The retired model itself
   * stays a candidate: the router may judge it a moment earlier.
   */
  private replacementsOf(id: string, atMs: number): string[] {
    const chain: string[] = [];
    let current = this.catalog.get(id);
    // Configuration refuses cycles; the bound only keeps a bad catalog from looping.
    while (current && chain.length < this.catalog.size) {
      const lifecycle = current.lifecycle;
      if (lifecycle?.retiresAt === undefined || lifecycle.replacement === undefined) break;
      if (Date.parse(lifecycle.retiresAt) > atMs + RETIREMENT_LEAD_MS) break;
      chain.push(lifecycle.replacement);
      current = this.catalog.get(lifecycle.replacement);
    }
    return chain;
  }

  /**
   * Whether the router may go past the first model: the routing defaults, the caller's policy,
   * the alias and the request, layered as the router layers them (a field the policy does not let
   * requests override keeps the policy's value). True when any of the possible primaries allows it.
   */
  private fallbacksAllowed(query: CandidateQuery, primaries: readonly string[]): boolean {
    const policy = policyFor(this.routing.policies, query.tenant);
    const requestMay = overridable(policy, 'allowFallbacks');
    return [query.model, ...primaries].some((name) => {
      let allowed = this.routing.defaults.allowFallbacks;
      if (policy?.route.allowFallbacks !== undefined) allowed = policy.route.allowFallbacks;
      const alias = this.aliases.get(name)?.route.allowFallbacks;
      if (alias !== undefined) allowed = alias;
      if (query.allowFallbacks !== undefined && requestMay) allowed = query.allowFallbacks;
      if (!requestMay && policy?.route.allowFallbacks !== undefined) allowed = policy.route.allowFallbacks;
      return allowed ?? true;
    });
  }

  /**
   * The dearest prices of `models` at `atMs`, at the service tier the request asks for (see
   * `requestedTier`) or the standard one, either of which may serve it, over the deployments the tenant's `policy` lets the router use: the router
   * never leaves it, so a deployment it excludes (a dearer provider, another residency) cannot be
   * what the request costs. `anyTier`: the provider project chooses the tier (`auto`, or none
   * asked for), and it is billed at the tier that served it, so the dearest of the standard price
   * and every tier the model declares.
   */
  priceAt(models: readonly string[], atMs: number, tier?: string, policy?: routerv1.TenantPolicy, anyTier = false): WorstPrice {
    let input = new Money(0);
    let output = new Money(0);
    let fee = new Money(0);
    let audioMinute = new Money(0);
    let characters = new Money(0);
    let image = new Money(0);
    for (const model of models) {
      const declared = this.catalog.get(model)?.pricing.tiers ?? {};
      // A tier asked for may be served at the standard one all the same (OpenAI's `scale` without
      // credits, a busy `priority`), and is billed at the tier that served: the dearer of the two.
      const tiers = anyTier ? [undefined, ...Object.keys(declared).filter((t) => hasTier(this.catalog.get(model), t))] : tier === undefined ? [undefined] : [undefined, tier];
      for (const deployment of this.deployments.get(model) ?? []) {
        if (!this.permits(deployment.provider, policy)) continue;
        for (const at of tiers) {
          const p = this.prices.priceAt(model, deployment.id, atMs, at);
          if (!p) continue;
          input = Money.max(input, p.input, p.cachedInput, p.cacheWrite, p.cacheWrite1h, p.imageInput);
          output = Money.max(output, p.output);
          fee = Money.max(fee, p.perRequest);
          audioMinute = Money.max(audioMinute, p.perAudioMinute);
          characters = Money.max(characters, p.perMillionCharacters);
          image = Money.max(image, p.perImage);
        }
      }
    }
    return { inputMicros: input, outputMicros: output, requestMicros: fee.times(1_000_000), audioMinuteMicros: audioMinute.times(1_000_000), characterMicros: characters, imageMicros: image.times(1_000_000) };
  }

  /**
   * Those of `models` with `capability`: the router sends an image request only to a model with
   * `images`, an embedding to one with `embeddings`, a transcription or translation to one with
   * `transcription` and so on, so no other model's prices (an alias's chat members, `auto`'s
   * catalog, a model named by no request, the OpenAI SDK's default) can be its cost.
   */
  serving(models: readonly string[], capability: Capability): string[] {
    return models.filter((id) => this.catalog.get(id)?.capabilities.includes(capability) === true);
  }

  /** Whether a tenant policy lets the router call `provider`, as the router's planner judges it (docs/access.md#routing-policies). */
  private permits(provider: string, policy: routerv1.TenantPolicy | undefined): boolean {
    if (!policy) return true;
    if (policy.providers && !policy.providers.values.includes(provider)) return false;
    if (policy.excludeProviders.includes(provider)) return false;
    if (policy.residency) {
      const label = this.residency.get(provider);
      if (label === undefined || !policy.residency.values.includes(label)) return false;
    }
    return true;
  }

  /**
   * What an image part costs at most on any of `models`: the largest of their `imageTokens.max`
   * (a model without `imageTokens`: {@link DEFAULT_IMAGE_TOKENS}); for a `detail: "low"` image the
   * largest of their `low` (a model without one: its `max`, as the provider may bill it so).
   */
  imageCost(models: readonly string[]): ImageCost {
    return imageCostOf(models, this.catalog);
  }

  /**
   * Refuses (400, naming `service_tier`) a request asking for a service tier that one of `models`
   * (every model it may be served by) has no price for: its provider would bill that tier's price
   * while budgets and usage recorded another. `auto` and `default` ask for the standard tier.
   */
  checkTier(tier: string | undefined, models: readonly string[]): void {
    if (tier === undefined) return;
    const lacking = models.filter((id) => !hasTier(this.catalog.get(id), tier));
    if (lacking.length === 0) return;
    const named = lacking.length > 3 ? `${lacking.slice(0, 3).join(', ')} and ${lacking.length - 3} more` : lacking.join(', ');
    throw new GatewayError('bad_request', `service_tier "${tier}" is not available for this request: no price is declared for that tier on ${named}, which may serve it. Ask for "auto" or "default".`, {
      param: 'service_tier',
      code: 'invalid_value',
    });
  }

  /**
   * Output tokens the request may produce: what it asks for, else the models' configured maximum,
   * else the default; a legacy completion that asks for nothing gets OpenAI's 16. A limit the
   * request may not ask for (the handler refuses it with a 400) counts as none.
   */
  maxOutputTokens(models: readonly string[], body: Record<string, unknown>): number {
    const asked = askedOutputTokens(body);
    if (asked !== undefined) return asked;
    const caps = models.map((m) => this.config.budgets.maxOutputTokens[m] ?? this.config.budgets.defaultMaxOutputTokens);
    return caps.length > 0 ? Math.max(...caps) : this.config.budgets.defaultMaxOutputTokens;
  }
}

type CatalogModel = GatewayConfig['models'][number];
type Alias = GatewayConfig['routing']['aliases'][string];

/**
 * The public models a name stands for, as the router reads it: a model of the catalog itself, an
 * alias its members; undefined for anything else (`auto`, an unknown id), which any model may serve.
 * Maps, not the configuration's records: a request naming `constructor` names no alias.
 */
export function membersOf(name: string, catalog: ReadonlyMap<string, CatalogModel>, aliases: ReadonlyMap<string, Alias>): readonly string[] | undefined {
  return catalog.has(name) ? [name] : aliases.get(name)?.models;
}

/** What an image part costs at most on any of `models` (see `WorstCasePricing.imageCost`). */
export function imageCostOf(models: readonly string[], catalog: ReadonlyMap<string, CatalogModel>): ImageCost {
  let max = 0;
  let low = 0;
  for (const id of models) {
    const declared = catalog.get(id)?.imageTokens;
    max = Math.max(max, declared?.max ?? DEFAULT_IMAGE_TOKENS);
    low = Math.max(low, declared?.low ?? declared?.max ?? DEFAULT_IMAGE_TOKENS);
  }
  return models.length > 0 ? { max, low } : { max: DEFAULT_IMAGE_TOKENS };
}

/** `service_tier` values that ask for the standard tier: OpenAI's `auto` and `default`, Anthropic's `standard_only` (a Messages request's). */
const STANDARD_TIERS = new Set(['auto', 'default', 'standard_only']);

/**
 * The service tier a request asks for other than the standard one: its `service_tier` unless
 * absent or standard (`STANDARD_TIERS`). Anything else that is not a string is left for the
 * handler to refuse (400), and counts as none here.
 */
export function requestedTier(body: Record<string, unknown>): string | undefined {
  const tier = body['service_tier'];
  return typeof tier === 'string' && !STANDARD_TIERS.has(tier) ? tier : undefined;
}

/**
 * Whether the provider project chooses the tier that serves the request: `service_tier` absent,
 * `null` or `auto` (OpenAI's default; a project set to `priority` serves such requests at it).
 * `default` and `standard_only` ask for the standard tier itself.
 */
export function tierLeftToProvider(body: Record<string, unknown>): boolean {
  const tier = body['service_tier'];
  return tier === undefined || tier === null || tier === 'auto';
}

function hasTier(model: GatewayConfig['models'][number] | undefined, tier: string): boolean {
  // Own entries only: a tier named `constructor` is no tier.
  return model !== undefined && Object.hasOwn(model.pricing.tiers, tier) && model.pricing.tiers[tier as keyof typeof model.pricing.tiers] !== undefined;
}

/**
 * Output tokens each answer of a request may have by its own asking: its `max_completion_tokens`,
 * else its `max_tokens` (a Responses request's `max_output_tokens` and a Messages request's
 * `max_tokens` arrive translated, as `max_completion_tokens`). A legacy completion has only
 * `max_tokens`, else OpenAI's 16, as its handler sends it: the legacy API has no
 * `max_completion_tokens` (the handler refuses one with a 400), so one is never read in its place.
 * Undefined when it asks for nothing, or for a limit it may not ask for (the handler refuses that
 * with a 400). Budgets and rate limits both count a request's output by it.
 */
export function askedOutputTokens(body: Record<string, unknown>): number | undefined {
  const maxTokens = countWithin(body['max_tokens'], REQUEST_BOUNDS.maxTokens);
  if (body['prompt'] !== undefined && body['messages'] === undefined) return maxTokens ?? LEGACY_DEFAULT_MAX_TOKENS;
  return countWithin(body['max_completion_tokens'], REQUEST_BOUNDS.maxTokens) ?? maxTokens;
}

/**
 * Answers a request gets output tokens for: `n` per provider call (a legacy completion makes one
 * per prompt); none for an embeddings request. An `n` or a number of prompts above `bounds` (which
 * the handler refuses with a 400) counts as one.
 */
export function outputAnswers(body: Record<string, unknown>, bounds: { n: number; prompts: number } = { n: REQUEST_BOUNDS.choices, prompts: Number.POSITIVE_INFINITY }): number {
  if (body['input'] !== undefined && body['messages'] === undefined && body['prompt'] === undefined) return 0;
  const calls = providerCalls(body);
  return (countWithin(body['n'], bounds.n) ?? 1) * (calls <= bounds.prompts ? calls : 1);
}

/** Padded prompt tokens of a request whose prompt goes out in `calls` provider calls (legacy prompts). */
export function paddedPromptTokens(tokens: number, calls = 1): number {
  return Math.ceil(tokens * PROMPT_MARGIN.ratio) + PROMPT_MARGIN.tokens * calls;
}

/** Provider calls a request makes: one per prompt of a legacy completion, else one. */
export function providerCalls(body: Record<string, unknown>): number {
  const prompt = body['prompt'];
  return Array.isArray(prompt) && prompt.length > 0 ? prompt.length : 1;
}

export function positiveInt(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isInteger(value) && value > 0 ? value : undefined;
}

/** A positive integer no larger than `max` (a bound the request's validation enforces), else undefined. */
export function countWithin(value: unknown, max: number): number | undefined {
  const n = positiveInt(value);
  return n !== undefined && n <= max ? n : undefined;
}

/** The route of OpenAI's image generation: its requests' output is images, asked for by `n`, not by a token limit. */
export const IMAGE_GENERATION_ENDPOINT = '/v1/images/generations';
/** The route of OpenAI's image edits: a multipart form of images and a prompt, answered as a generation is. */
export const IMAGE_EDIT_ENDPOINT = '/v1/images/edits';

/**
 * Whether a request came through an endpoint that makes images, a generation or an edit
 * (`endpoint`: its route pattern): each of its `n` images is made whole, whatever its body says
 * of tokens (an image request has no token limit, and its `prompt` is no legacy completion's).
 */
export function makesImages(endpoint: string | undefined): boolean {
  return endpoint === IMAGE_GENERATION_ENDPOINT || endpoint === IMAGE_EDIT_ENDPOINT;
}

/**
 * How many images an image request asks for: its `n`, a JSON number or (an edit's form) the text
 * of one; 1 when unset, or when above OpenAI's 10 or not a count (the handler refuses those with a 400).
 */
export function imagesAsked(body: Record<string, unknown>): number {
  const n = body['n'];
  // As the edit's parser reads it: decimal digits only.
  const asked = typeof n === 'string' && isFormBody(body) && /^\s*-?\d+\s*$/.test(n) ? Number(n) : n;
  return countWithin(asked, MAX_IMAGES_PER_REQUEST) ?? 1;
}

/** What an Audio API request is counted by before it is served: what it sends, since it can ask for no token limit. */
export type AudioDemand =
  | {
      kind: 'transcription';
      /** The audio's length, rounded up to the second (as OpenAI reports a transcription's duration). */
      seconds: number;
      /** The audio as a token-billed model (gpt-4o-transcribe) may count it: `budgets.audio.tokensPerSecond` a second. */
      audioTokens: number;
      /** Tokens of its `prompt`, a hint of the audio's words and spelling (never a legacy completion's prompt). */
      textTokens: number;
    }
  | {
      kind: 'speech';
      /** Characters to speak: `input`'s length in Unicode code points, as `perMillionCharacters` bills it. */
      characters: number;
      /** Tokens of `input` and `instructions`, the text a token-billed model (gpt-4o-mini-tts) reads. */
      textTokens: number;
    };

/**
 * How an Audio API request is counted (`endpoint`: its route pattern; undefined for any other).
 * A transcription or translation by its uploaded file: a WAV file at its length as its header tells
 * it, any other (MP3, M4A, OGG, WebM, FLAC: their length needs decoding) at `budgets.audio.maxSeconds`.
 * A form without a file, or with an empty one, counts none: the handler refuses it with a 400. The
 * file's bytes are never read as text.
 */
export function audioDemandOf(endpoint: string | undefined, body: Record<string, unknown>, settings: GatewayConfig['budgets']['audio']): AudioDemand | undefined {
  if (isAudioUploadEndpoint(endpoint)) {
    const file = body['file'];
    const seconds = isAudioUpload(file) && file.data.length > 0 ? uploadSeconds(file.data, settings.maxSeconds) : 0;
    return { kind: 'transcription', seconds, audioTokens: seconds * settings.tokensPerSecond, textTokens: fieldTokens(body['prompt']) };
  }
  if (isSpeechEndpoint(endpoint)) {
    const input = body['input'];
    return { kind: 'speech', characters: typeof input === 'string' ? codePoints(input) : 0, textTokens: fieldTokens(input) + fieldTokens(body['instructions']) };
  }
  return undefined;
}

/** Prompt tokens an audio request is reserved for: its audio tokens, and its text padded as a prompt is (`PROMPT_MARGIN`). */
export function audioPromptTokens(demand: AudioDemand): number {
  return (demand.kind === 'transcription' ? demand.audioTokens : 0) + paddedPromptTokens(demand.textTokens);
}

/** What an audio request costs by its own units at `price`, in micro-units: its minutes of audio, or its characters. */
export function audioUnitMicros(demand: AudioDemand, price: WorstPrice): Money {
  return demand.kind === 'transcription' ? price.audioMinuteMicros.times(demand.seconds).dividedBy(60) : price.characterMicros.times(demand.characters);
}

function uploadSeconds(data: Uint8Array, maxSeconds: number): number {
  const ms = wavDurationMs(data);
  return ms === undefined ? maxSeconds : Math.ceil(ms / 1000);
}

/** Tokens of a form field or JSON string (a field sent several times: each of its values); anything else counts none. */
function fieldTokens(value: unknown): number {
  if (typeof value === 'string') return countTextTokens(value);
  if (!Array.isArray(value)) return 0;
  let tokens = 0;
  for (const v of value) if (typeof v === 'string') tokens += countTextTokens(v);
  return tokens;
}
