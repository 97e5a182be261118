import { policyFor, type Capability, type GatewayConfig, type TaskType } from '@openrouter/config';
import type { chatv1, routerv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { partContent } from '@openrouter/openai-wire';
import { balance } from '../balancing/load-balancer';
import type { CatalogModel, Deployment, EffectivePrice, LifecycleNotice, ModelCatalog } from '../catalog/model-catalog';
import type { AbExperiments, ArmAssignment } from '../experiments/ab-experiments';
import type { GrayReleases } from '../experiments/gray-release';
import type { CircuitBreakers } from '../resilience/circuit-breaker';
import type { Random } from '../stats/clock';
import type { LiveStats } from '../stats/deployment-stats';
import { scoreCandidates } from '../strategies/strategy';
import { effectiveRoute, type EffectiveRoute, type RequestControls } from './route-settings';

/** One deployment the router may call, with what the ranking knew of it. */
export interface Candidate {
  model: CatalogModel;
  deployment: Deployment;
  /** The requested name that brought it in. */
  via: string;
  quality: number;
  price: EffectivePrice;
  latencyMs: number;
  score: number;
  /** How the score was reached; filled only when the plan is explained. */
  scoreDetail: string;
}

/** A deployment that was considered, eligible or not (for explanations). */
export interface ConsideredCandidate extends Candidate {
  filteredReason: string;
  rank: number;
}

export interface Assignment extends ArmAssignment {
  kind: 'experiment' | 'gray_release';
}

export interface RoutePlan {
  requested: string;
  taskType: TaskType | undefined;
  route: EffectiveRoute;
  assignment: Assignment | undefined;
  /** The name the first candidates come in under: the experiment arm, else the requested name (a retired model's replacement in its place). */
  primary: string;
  /** Set when the requested model is retired and its replacement (`by`) serves in its place. */
  replaced: { model: string; by: string } | undefined;
  /** The requested model's deprecation or retirement, when the request should be told of it. */
  deprecation: LifecycleNotice | undefined;
  /** Deployments in the order to try them. */
  candidates: Candidate[];
  /** Every deployment considered; filled only when the plan is built for an explanation. */
  considered: ConsideredCandidate[];
  /**
   * Why nothing can serve the request when `candidates` is empty and every deployment was left out
   * for the request's own sake (capability, context window, route constraints, permission): a
   * client error. Unset otherwise: deployments that are down or busy make it the gateway's 503.
   */
  refusal: GatewayError | undefined;
  /**
   * Whether a context-length failure may move on to models with a larger window (`largerContext`):
   * only a chat request's, and only when fallbacks are allowed. Embeddings, moderations, images and
   * audio have no context window to outgrow: another model would answer something else (an
   * embedding of another size, in another space) as a success, so the provider's 400 is the client's.
   */
  contextFallback: boolean;
  /** Candidates for a context-length failure: models with a larger window, smallest first, leaving out the deployments in `exclude` (those queued or tried already). */
  largerContext(than: CatalogModel, exclude: ReadonlySet<string>): Candidate[];
}

/** Why a deployment cannot take a request. */
interface Rejection {
  reason: string;
  /** Set when the request is the cause rather than the deployment's state (circuit, capacity). */
  fault?: { code: string; param: string };
  /** Set when the tenant's policy leaves the deployment out: which part of it. */
  policy?: PolicyDimension;
}

/** The part of a tenant policy that excludes a deployment: its provider lists, or its residency. */
type PolicyDimension = 'providers' | 'residency';

/** The code of a request refused because its tenant's policy permits none of the deployments. */
export const NO_PERMITTED_DEPLOYMENT = 'no_permitted_deployment';

interface RejectedDeployment {
  model: CatalogModel;
  rejection: Rejection;
}

/** The request field a missing capability is about. */
const NEED_PARAM: Partial<Record<Capability, string>> = { tools: 'tools', vision: 'messages', json_object: 'response_format', json_schema: 'response_format' };
/** The request field a request's prompt estimate comes from, by capability (a chat request's: `messages`). */
const PROMPT_PARAM: Partial<Record<Capability, string>> = { speech: 'input', transcription: 'file' };
/** At most this many models are named in a refusal. */
const REFUSAL_DETAILS = 5;

/** What a plan needs to know about the request. */
export interface PlanRequest {
  context: routerv1.RequestContext;
  capability: Capability;
  model: string;
  controls: RequestControls;
  taskType: TaskType | undefined;
  /** Capabilities the request needs beyond `capability` (tools, vision, JSON modes). */
  needs: Capability[];
  /** The prompt estimate without its image parts, which count per model (see `promptTokensOn`). */
  promptTokens: number;
  /** The prompt's image parts; unset: none. */
  images?: ImageParts | undefined;
  maxOutputTokens: number;
  stream: boolean;
  user: string | undefined;
  /** Audio to transcribe or translate, in milliseconds, when its length is known (priced per minute); unset: none. */
  audioMs?: number | undefined;
  /** Characters to speak (priced per million); unset: none. */
  characters?: number | undefined;
  /** Images to make (an image request's `n`, priced each at `perImage`); unset: none. */
  imagesMade?: number | undefined;
  /**
   * A call the gateway makes for the operator's own control (a guardrail's moderation), not the
   * tenant's request: planned under `routing.defaults`, not the caller's `routing.policies` entry,
   * whose route settings (providers, strategy, quality, price) are for the tenant's own requests
   * and must not turn the operator's screening off. The tenant's access policy
   * (`context.policy`, where its data may go) applies all the same. Unset: the caller's policy applies.
   */
  operatorCall?: boolean | undefined;
}

export interface PlannerDependencies {
  catalog: ModelCatalog;
  routing: GatewayConfig['routing'];
  stats: LiveStats;
  breakers: CircuitBreakers;
  experiments: AbExperiments;
  grayReleases: GrayReleases;
  random: Random;
  /** Provider id → its `residency` label (undefined: none), for tenant policies. */
  residency: ReadonlyMap<string, string | undefined>;
}

interface Group {
  name: string;
  /** The retired model this group's model replaces, when the name was that model's. */
  replaces?: string | undefined;
  models: CatalogModel[];
  alias: boolean;
  /** The arm of an experiment or gray release: the key's permission for the requested name covers it. */
  arm: boolean;
}

/** Image parts of a request's prompt, those sent with `detail: "low"` apart: what they cost depends on the model. */
export interface ImageParts {
  any: number;
  low: number;
}

/** Assumed answer length when the request sets no limit (for cost estimates and TPM). */
const DEFAULT_OUTPUT_TOKENS = 256;
const MILLION = 1_000_000;
/**
 * Prompt tokens an image part counts for on a model that declares no `imageTokens`: the ingress's
 * `DEFAULT_IMAGE_TOKENS` (services/ingress/src/access/prompt-tokens.ts), at which budgets reserve
 * an image. Repeated here because services do not import each other; keep the two equal.
 */
const DEFAULT_IMAGE_TOKENS = 1_600;

/**
 * The request's prompt tokens on `model`: the estimate of its text plus each image part at the
 * model's `imageTokens.max` (`low` for a `detail: "low"` part, when declared; no `imageTokens`:
 * DEFAULT_IMAGE_TOKENS), as the ingress counts them for budgets. Images are counted once per
 * request (`chatRequestTraits`), so this is arithmetic only. `model` unset: one that declares none.
 */
export function promptTokensOn(request: Pick<PlanRequest, 'promptTokens' | 'images'>, model?: Pick<CatalogModel, 'imageTokens'>): number {
  const images = request.images;
  if (!images || images.any === 0) return request.promptTokens;
  const max = model?.imageTokens?.max ?? DEFAULT_IMAGE_TOKENS;
  const low = model?.imageTokens?.low ?? max;
  return request.promptTokens + (images.any - images.low) * max + images.low * low;
}

/**
 * The tokens a request counts for against a deployment's `tpm`, in the rolling capacity check and
 * in what failover charges when it calls: the prompt estimate on the deployment's model (images
 * included, see `promptTokensOn`) plus `max_tokens`, or a chat answer of DEFAULT_OUTPUT_TOKENS
 * when the request sets no limit. (Whether a request is larger than a deployment's whole capacity
 * is judged without that default: see `RoutePlanner.filter`.)
 */
export function capacityTokens(request: Pick<PlanRequest, 'capability' | 'promptTokens' | 'images' | 'maxOutputTokens'>, model?: Pick<CatalogModel, 'imageTokens'>): number {
  return promptTokensOn(request, model) + (request.maxOutputTokens || (request.capability === 'chat' ? DEFAULT_OUTPUT_TOKENS : 0));
}

/**
 * Turns a request into an ordered list of deployments: resolves the name (id, alias, `auto`,
 * the `models` fallback list, experiments and gray releases), filters by capability, permission,
 * context window, quality, price, providers, circuit state and capacity, ranks the models by the
 * strategy and orders each model's deployments with the load balancer.
 */
export class RoutePlanner {
  constructor(private readonly deps: PlannerDependencies) {}

  plan(input: PlanRequest, explain = false): RoutePlan {
    const { catalog, routing } = this.deps;
    const policy = input.operatorCall ? undefined : policyFor(routing.policies, input.context);
    // Permission is the key's for the name the client asked for; the arms an experiment or gray release puts behind it inherit it.
    if (!this.mayUse(input.model, input)) {
      throw new GatewayError('not_found', `The model \`${input.model}\` does not exist or you do not have access to it.`, { param: 'model', code: 'model_not_found' });
    }
    const now = this.deps.stats.clock.now();
    let primary = input.model;
    let assignment: Assignment | undefined;
    const ab = this.deps.experiments.assign(primary, input.context, input.user);
    const release = ab ? undefined : this.deps.grayReleases.forTarget(primary);
    const arm = ab ? { ...ab, kind: 'experiment' as const } : release ? { ...release.assign(input.context, input.user), kind: 'gray_release' as const } : undefined;
    // A key allowed the name only through some of its members (not the name itself) may use the
    // arms only as far as they are among those: one that is not leaves the key out of the test.
    if (arm && this.armPermitted(arm.model, input)) {
      assignment = arm;
      primary = arm.model;
    }
    // An arm routes under its own alias's settings, else the target's.
    const routeFor = (name: string): EffectiveRoute => effectiveRoute(routing, policy, catalog.alias(name)?.route ?? catalog.alias(input.model)?.route, input.controls);
    let route = routeFor(primary);
    // An experiment arm or gray release canary that could not take the request even when healthy
    // (a capability, the context window, the route's constraints) would refuse what the target
    // serves, or hand it to the baseline under the canary's name: the caller is left out for this
    // request, served by the target's own plan and counted for no arm, so the arms are compared
    // only on requests they can take. An arm that is only down or busy keeps its caller (its
    // fallbacks or the canary's baseline, else a 503), and that request counts for the arm. A
    // release's baseline stands for the target itself and keeps its callers.
    const refusable = assignment?.kind === 'experiment' || (assignment?.kind === 'gray_release' && assignment.arm === 'canary');
    // An arm whose model retired with nothing to replace it (a release's baseline too) has no model: its callers are left out as well.
    const orphaned = assignment !== undefined && catalog.retired(assignment.model, now) && !catalog.serving(assignment.model, now);
    const leftOut = assignment && (refusable || orphaned) ? this.armRefusal(assignment, input, route, now) : undefined;
    if (leftOut) {
      assignment = undefined;
      primary = input.model;
      route = routeFor(primary);
    }

    const names = [primary];
    // A gray release's canary falls back to its baseline, which is as much an arm as the canary.
    const baseline = assignment?.kind === 'gray_release' && assignment.arm === 'canary' ? this.deps.grayReleases.byId(assignment.experiment)?.config.baseline : undefined;
    if (route.allowFallbacks) {
      for (const name of input.controls.models ?? []) if (!names.includes(name)) names.push(name);
      if (baseline && !names.includes(baseline)) names.push(baseline);
    }
    const groups: Group[] = [];
    for (const [i, name] of names.entries()) {
      const param = i === 0 ? 'model' : 'models';
      const arm = assignment !== undefined && (i === 0 || name === baseline);
      if (!catalog.retired(name, now)) {
        const models = catalog.membersOf(name, input.capability, now);
        if (!models) throw new GatewayError('not_found', `The model \`${name}\` does not exist or you do not have access to it.`, { param, code: 'model_not_found' });
        groups.push({ name, models, alias: catalog.isAlias(name), arm });
        continue;
      }
      // A retired model's requests go to its replacement, under the retired name's permission. With
      // nothing to replace it, a name the request gave is refused; the baseline (configuration) is skipped.
      const successor = catalog.serving(name, now);
      if (successor) groups.push({ name: successor.id, replaces: name, models: [successor], alias: false, arm });
      else if (name !== baseline || i === 0) throw retiredModel(name, catalog.retiresAt(name) ?? now, param);
    }
    // An arm whose model was retired is served, and judged, as its replacement.
    const head = groups[0];
    if (assignment && head?.replaces === assignment.model) assignment = { ...assignment, model: head.name };
    if (route.allowFallbacks) {
      for (const group of [...groups]) {
        if (group.alias) continue;
        for (const model of group.models)
          for (const id of model.fallbacks) {
            // A retired fallback is its replacement's place; one that nothing replaces is no fallback.
            const fallback = catalog.serving(id, now);
            if (fallback && !groups.some((g) => g.name === fallback.id)) groups.push({ name: fallback.id, replaces: fallback.id === id ? undefined : id, models: [fallback], alias: false, arm: false });
          }
      }
    }

    // An explicit model that cannot serve the request is a client error, as before routing existed.
    const first = groups[0];
    if (first && !first.alias && !assignment) {
      const model = first.models[0];
      if (model && !model.capabilities.includes(input.capability)) {
        throw new GatewayError('bad_request', `The model \`${first.name}\` does not support ${input.capability}.`, { param: 'model', code: 'model_not_supported' });
      }
    }

    const considered: ConsideredCandidate[] = explain && leftOut ? [...leftOut] : [];
    const rejected: RejectedDeployment[] = [];
    const seen = new Set<string>();
    let ordered: Candidate[] = [];
    for (const [index, group] of groups.entries()) {
      const ranked = this.rankGroup(group, input, route, now, seen, rejected, explain ? considered : undefined);
      if (index === 0 && !route.allowFallbacks) {
        // The top model that is not cooling down after a Retry-After, if there is one.
        const top = (ranked.find((c) => !this.deps.breakers.coolingUntil(c.deployment.id)) ?? ranked[0])?.model;
        ordered.push(...ranked.filter((c) => c.model === top));
        break;
      }
      ordered.push(...ranked);
    }
    // A deployment a provider asked to wait (Retry-After) goes after every other model's: tried only when nothing else is left.
    const cooling = ordered.filter((c) => this.deps.breakers.coolingUntil(c.deployment.id));
    if (cooling.length > 0) ordered = [...ordered.filter((c) => !cooling.includes(c)), ...cooling];
    ordered.forEach((c, i) => {
      const entry = considered.find((e) => e.deployment.id === c.deployment.id && !e.filteredReason);
      if (entry) entry.rank = i + 1;
    });
    if (explain) considered.sort((a, b) => (a.rank || Infinity) - (b.rank || Infinity));

    return {
      requested: input.model,
      taskType: input.taskType,
      route,
      assignment,
      primary: head?.name ?? primary,
      // The requested model itself replaced (also when an experiment's arm is that same model).
      replaced: head?.replaces === input.model ? { model: input.model, by: head.name } : undefined,
      deprecation: catalog.notice(input.model, now),
      candidates: ordered,
      considered,
      refusal: ordered.length === 0 ? this.refusal(input, rejected) : undefined,
      contextFallback: input.capability === 'chat' && route.allowFallbacks,
      largerContext: (than, exclude) => this.largerContext(than, input, route, now, exclude),
    };
  }

  /**
   * When every deployment of the experiment arm or canary is ruled out for the request's own sake (as
   * `RoutePlan.refusal` judges it), those deployments with the reason; undefined when the arm can
   * take the request or is kept from it only by its state (circuit, capacity).
   */
  private armRefusal(arm: Assignment, input: PlanRequest, route: EffectiveRoute, now: number): ConsideredCandidate[] | undefined {
    const { catalog, stats } = this.deps;
    const refused: ConsideredCandidate[] = [];
    for (const model of catalog.membersOf(arm.model, input.capability) ?? []) {
      const quality = input.taskType ? catalog.quality(model, input.taskType) : catalog.quality(model, 'chat');
      for (const deployment of model.deployments) {
        const price = catalog.price(model, deployment, now);
        const rejection = this.filter(model, deployment, { name: arm.model, arm: true }, input, route, quality, price, now);
        if (!rejection?.fault) return undefined;
        const latencyMs = stats.expectedLatency(deployment.id, input.stream, deployment.expectedLatencyMs ?? model.expectedLatencyMs);
        const filteredReason = `left out of ${arm.kind === 'experiment' ? 'experiment' : 'gray release'} ${arm.experiment} (arm ${arm.arm}): ${rejection.reason}`;
        refused.push({ model, deployment, via: arm.model, quality, price, latencyMs, score: 0, scoreDetail: '', filteredReason, rank: 0 });
      }
    }
    return refused;
  }

  /** Whether the key may name `name`: itself, or (for an alias or `auto`) one of its members. */
  private mayUse(name: string, input: PlanRequest): boolean {
    const allowed = input.context.allowedModels;
    if (allowed.length === 0 || allowed.includes(name)) return true;
    const { catalog } = this.deps;
    return catalog.isAlias(name) && (catalog.membersOf(name, input.capability) ?? []).some((m) => allowed.includes(m.id));
  }

  /**
   * Whether the key may use what an arm routes to, as `allowed` judges the arm's models: it may
   * name the target itself, the arm's own name, or one of the arm's models by id.
   */
  private armPermitted(armModel: string, input: PlanRequest): boolean {
    return input.context.allowedModels.includes(input.model) || this.mayUse(armModel, input);
  }

  /** A name the key may use that covers `model` (the model itself, or an alias or `auto` it is a member of), if any. */
  private grantingName(model: CatalogModel, input: PlanRequest): string | undefined {
    const allowed = input.context.allowedModels;
    if (allowed.length === 0 || allowed.includes(model.id)) return model.id;
    const { catalog } = this.deps;
    return allowed.find((name) => catalog.isAlias(name) && (catalog.membersOf(name, input.capability) ?? []).some((m) => m.id === model.id));
  }

  /**
   * Whether the key may use `model` brought in by `group` (an arm inherits the requested name's
   * permission, a retired model's replacement the retired model's).
   */
  private allowed(model: CatalogModel, group: Pick<Group, 'name' | 'arm' | 'replaces'>, input: PlanRequest): boolean {
    const allowed = input.context.allowedModels;
    return allowed.length === 0 || allowed.includes(model.id) || allowed.includes(group.name) || (group.arm && allowed.includes(input.model)) || (group.replaces !== undefined && allowed.includes(group.replaces));
  }

  /** Why a deployment cannot take this request, or undefined when it can. */
  private filter(model: CatalogModel, deployment: Deployment, group: Pick<Group, 'name' | 'arm' | 'replaces'>, input: PlanRequest, route: EffectiveRoute, quality: number, price: EffectivePrice, now: number, checkContext = true): Rejection | undefined {
    if (!this.allowed(model, group, input)) return { reason: 'not allowed for this key', fault: { code: 'model_not_found', param: 'model' } };
    const excluded = this.policyRejection(deployment, input.context.policy);
    if (excluded) return excluded;
    if (!model.capabilities.includes(input.capability)) return { reason: `does not support ${input.capability}`, fault: { code: 'model_not_supported', param: 'model' } };
    for (const need of input.needs) {
      // A moderation request's images are in its `input`, a chat request's in its messages.
      if (!model.capabilities.includes(need)) return { reason: `does not support ${need}`, fault: { code: 'model_not_supported', param: input.capability === 'moderation' ? 'input' : (NEED_PARAM[need] ?? 'model') } };
    }
    if (checkContext && input.capability === 'chat' && input.promptTokens + input.maxOutputTokens > model.contextWindow) {
      const param = input.promptTokens > model.contextWindow ? 'messages' : 'max_tokens';
      return { reason: `context window ${model.contextWindow} < ~${input.promptTokens + input.maxOutputTokens} tokens (prompt estimate + max_tokens)`, fault: { code: 'context_length_exceeded', param } };
    }
    if (input.taskType && quality < route.minQuality) return { reason: `quality ${quality} for ${input.taskType} < min_quality ${route.minQuality}`, fault: { code: 'min_quality_not_met', param: 'route.min_quality' } };
    const maxPrice = route.maxPrice;
    if (maxPrice !== undefined) {
      const prompt = typeof maxPrice === 'string' ? maxPrice : maxPrice.prompt;
      const completion = typeof maxPrice === 'string' ? maxPrice : maxPrice.completion;
      const fault = { code: 'max_price_exceeded', param: 'route.max_price' };
      if (prompt !== undefined && price.input.gt(prompt)) return { reason: `input price ${price.input.toString()} > max_price ${prompt}`, fault };
      if (completion !== undefined && price.output.gt(completion)) return { reason: `output price ${price.output.toString()} > max_price ${completion}`, fault };
    }
    const providers = route.providers;
    if (providers.only && !providers.only.includes(deployment.provider)) return { reason: `provider ${deployment.provider} not in providers.only`, fault: { code: 'provider_not_allowed', param: 'route.providers.only' } };
    if (providers.ignore.includes(deployment.provider)) return { reason: `provider ${deployment.provider} in providers.ignore`, fault: { code: 'provider_not_allowed', param: 'route.providers.ignore' } };
    // More than the deployment takes in a whole minute: the request's own fault, whatever the
    // deployment's state (checked before its circuit), and waiting does not help. Only what the
    // request says it needs counts here (the prompt, and `max_tokens` when it set one): the
    // default answer length is a guess, and a refusal must not name a parameter the client never sent.
    if (deployment.tpm !== undefined) {
      const prompt = promptTokensOn(input, model);
      const whole = prompt + input.maxOutputTokens;
      if (whole > deployment.tpm) {
        const param = prompt > deployment.tpm ? (PROMPT_PARAM[input.capability] ?? 'messages') : 'max_tokens';
        const what = input.maxOutputTokens ? 'prompt estimate + max_tokens' : 'prompt estimate';
        return { reason: `larger than its whole capacity (~${whole} tokens, ${what}, > ${deployment.tpm} tokens per minute)`, fault: { code: 'exceeds_deployment_capacity', param } };
      }
    }
    const breaker = this.deps.breakers.of(deployment.id);
    if (!breaker.available()) return { reason: `circuit ${breaker.current()}` };
    if (deployment.rpm !== undefined || deployment.tpm !== undefined) {
      const usage = this.deps.stats.of(deployment.id).usage(now);
      if (deployment.rpm !== undefined && usage.requests >= deployment.rpm) return { reason: `at capacity (${usage.requests}/${deployment.rpm} requests per minute)` };
      // With the default answer length (as failover charges the call); a request that fits a
      // minute only without that guess waits for an idle minute rather than never being taken.
      const needs = Math.min(capacityTokens(input, model), deployment.tpm ?? Infinity);
      if (deployment.tpm !== undefined && usage.tokens + needs > deployment.tpm) return { reason: `at capacity (${usage.tokens}/${deployment.tpm} tokens per minute)` };
    }
    return undefined;
  }

  /** Whether the tenant's policy lets a request reach the deployment. */
  permits(deployment: Deployment, policy: routerv1.TenantPolicy | undefined): boolean {
    return this.policyRejection(deployment, policy) === undefined;
  }

  /**
   * Why the tenant's policy leaves a deployment out, or undefined when it permits it. The reason
   * (shown by route explanations, to admins) names the deployment's provider and its residency.
   */
  private policyRejection(deployment: Deployment, policy: routerv1.TenantPolicy | undefined): Rejection | undefined {
    if (!policy) return undefined;
    const provider = deployment.provider;
    const fault = { code: NO_PERMITTED_DEPLOYMENT, param: 'model' };
    if (policy.providers && !policy.providers.values.includes(provider)) return { reason: `excluded by policy: provider ${provider} is not among the providers the tenant policy allows`, fault, policy: 'providers' };
    if (policy.excludeProviders.includes(provider)) return { reason: `excluded by policy: provider ${provider} is in the tenant policy's excluded providers`, fault, policy: 'providers' };
    if (policy.residency) {
      const label = this.deps.residency.get(provider);
      const allowed = policy.residency.values.join(', ') || 'none';
      if (label === undefined) return { reason: `excluded by policy: provider ${provider} has no residency label (allowed residency: ${allowed})`, fault, policy: 'residency' };
      if (!policy.residency.values.includes(label)) return { reason: `excluded by policy: provider ${provider} has residency ${label} (allowed residency: ${allowed})`, fault, policy: 'residency' };
    }
    return undefined;
  }

  /** The client error for a request no deployment took, when the request itself is why (see RoutePlan.refusal). */
  private refusal(input: PlanRequest, rejected: readonly RejectedDeployment[]): GatewayError | undefined {
    if (rejected.some((r) => !r.rejection.fault)) return undefined;
    if (rejected.length === 0) {
      // Nothing to filter: the name stands for no model with the capability (`auto` for embeddings, say).
      return new GatewayError('bad_request', `No model behind \`${input.model}\` supports ${input.capability}.`, { param: 'model', code: 'model_not_supported' });
    }
    // A model the key may not use explains nothing, nor a deployment its policy leaves out; the
    // other reasons (of the deployments the policy permits) do.
    const relevant = rejected.filter((r) => r.rejection.fault?.code !== 'model_not_found' && r.rejection.policy === undefined);
    const first = relevant[0]?.rejection.fault;
    const policies = new Set(rejected.flatMap((r) => (r.rejection.policy ? [r.rejection.policy] : [])));
    if (!first && policies.size > 0) return policyRefusal(input, policies);
    if (!first) return new GatewayError('not_found', `The model \`${input.model}\` does not exist or you do not have access to it.`, { param: 'model', code: 'model_not_found' });
    const details = [...new Set(relevant.map((r) => `${r.model.id}: ${r.rejection.reason}`))];
    const single = new Set(relevant.map((r) => r.model.id)).size === 1 && relevant[0]?.model.id === input.model;
    const message = single
      ? `The model \`${input.model}\` cannot serve this request: ${relevant[0]?.rejection.reason ?? ''}.`
      : `None of the models for \`${input.model}\` can serve this request (${details.slice(0, REFUSAL_DETAILS).join('; ')}${details.length > REFUSAL_DETAILS ? '; …' : ''}).`;
    const kind = first.code === 'context_length_exceeded' ? 'context_length_exceeded' : 'bad_request';
    return new GatewayError(kind, message, { param: first.param, code: first.code });
  }

  private rankGroup(group: Group, input: PlanRequest, route: EffectiveRoute, now: number, seen: Set<string>, rejected: RejectedDeployment[], considered: ConsideredCandidate[] | undefined): Candidate[] {
    const { catalog, stats, routing } = this.deps;
    const outputTokens = input.maxOutputTokens || DEFAULT_OUTPUT_TOKENS;
    interface Entry {
      model: CatalogModel;
      deployments: Candidate[];
      quality: number;
      cost: number;
      latencyMs: number;
    }
    const entries: Entry[] = [];
    // Each deployment's estimated cost of this request (a model's is its cheapest deployment's).
    const costs = new Map<Candidate, number>();
    for (const model of group.models) {
      const quality = input.taskType ? catalog.quality(model, input.taskType) : catalog.quality(model, 'chat');
      const deployments: Candidate[] = [];
      let cost = Infinity;
      for (const deployment of model.deployments) {
        if (seen.has(deployment.id)) continue;
        const price = catalog.price(model, deployment, now);
        const latencyMs = stats.expectedLatency(deployment.id, input.stream, deployment.expectedLatencyMs ?? model.expectedLatencyMs);
        const candidate: Candidate = { model, deployment, via: group.name, quality, price, latencyMs, score: 0, scoreDetail: '' };
        const rejection = this.filter(model, deployment, group, input, route, quality, price, now);
        // A deployment the key may not use under this name may still be allowed under a later one.
        if (rejection?.fault?.code !== 'model_not_found') seen.add(deployment.id);
        if (considered) considered.push({ ...candidate, filteredReason: rejection?.reason ?? '', rank: 0 });
        if (rejection) {
          rejected.push({ model, rejection });
          continue;
        }
        deployments.push(candidate);
        const estimate = costEstimate(input, outputTokens, price);
        if (route.strategy === 'cost') costs.set(candidate, estimate);
        cost = Math.min(cost, estimate);
      }
      if (deployments.length > 0) entries.push({ model, deployments, quality, cost, latencyMs: Math.min(...deployments.map((d) => d.latencyMs)) });
    }
    if (entries.length === 0) return [];

    const perDeployment = route.strategy === 'latency';
    const units = perDeployment
      ? entries.flatMap((e) => e.deployments.map((d) => ({ entry: e, deployments: [d], quality: e.quality, cost: e.cost, latencyMs: d.latencyMs })))
      : entries.map((e) => ({ entry: e, deployments: e.deployments, quality: e.quality, cost: e.cost, latencyMs: e.latencyMs }));
    const scores = scoreCandidates(route.strategy, units, routing.balanced, route.latencySensitive);
    const order = units.map((unit, i) => ({ unit, score: scores[i] ?? { score: 0, tieBreak: 0, detail: () => '' } }));
    order.sort((a, b) => b.score.score - a.score.score || a.score.tieBreak - b.score.tieBreak);

    const result: Candidate[] = [];
    const byCost = route.strategy === 'cost';
    for (let i = 0; i < order.length; ) {
      const head = order[i] as (typeof order)[number];
      // The latency strategy ranks deployments one by one: those of one model that tie (no
      // measurements yet, equal priors) are ordered by the load balancer, as a model's are.
      let end = i + 1;
      if (perDeployment) while (end < order.length && order[end]?.unit.entry === head.unit.entry && order[end]?.score.score === head.score.score) end++;
      const tied = end === i + 1 ? head.unit.deployments : order.slice(i, end).flatMap((o) => o.unit.deployments);
      i = end;
      const balanced = balance(
        routing.balancing,
        tied.map((d) => ({ candidate: d, id: d.deployment.id, weight: d.deployment.weight, outstanding: stats.of(d.deployment.id).outstanding, latencyMs: d.latencyMs })),
        this.deps.random,
      );
      // The cost strategy calls a model's cheapest deployment first; the balancer orders those of one price (the sort is stable).
      if (byCost && balanced.length > 1) balanced.sort((a, b) => (costs.get(a.candidate) ?? 0) - (costs.get(b.candidate) ?? 0));
      for (const b of balanced) {
        b.candidate.score = head.score.score;
        result.push(b.candidate);
        const entry = considered?.find((c) => c.deployment.id === b.id && !c.filteredReason);
        if (entry) {
          const score = order.find((o) => o.unit.deployments.includes(b.candidate))?.score ?? head.score;
          entry.score = score.score;
          entry.scoreDetail = b.candidate.scoreDetail = score.detail();
        }
      }
    }
    const preferred = route.providers.order;
    if (preferred.length > 0) {
      const rank = (c: Candidate): number => {
        const i = preferred.indexOf(c.deployment.provider);
        return i === -1 ? preferred.length : i;
      };
      result.sort((a, b) => rank(a) - rank(b));
    }
    return result;
  }

  private largerContext(than: CatalogModel, input: PlanRequest, route: EffectiveRoute, now: number, exclude: ReadonlySet<string>): Candidate[] {
    const { catalog } = this.deps;
    const out: Candidate[] = [];
    const models = catalog
      .live(now)
      .filter((m) => m.contextWindow > than.contextWindow)
      .sort((a, b) => a.contextWindow - b.contextWindow);
    for (const model of models) {
      // Only a model the key could have named: itself, or an alias (or `auto`) it belongs to.
      const grantedBy = this.grantingName(model, input);
      if (grantedBy === undefined) continue;
      const quality = input.taskType ? catalog.quality(model, input.taskType) : catalog.quality(model, 'chat');
      for (const deployment of model.deployments) {
        if (exclude.has(deployment.id)) continue;
        const price = catalog.price(model, deployment, now);
        if (this.filter(model, deployment, { name: grantedBy, arm: false }, input, route, quality, price, now, false) !== undefined) continue;
        const latencyMs = this.deps.stats.expectedLatency(deployment.id, input.stream, deployment.expectedLatencyMs ?? model.expectedLatencyMs);
        out.push({ model, deployment, via: `context fallback from ${than.id}`, quality, price, latencyMs, score: 0, scoreDetail: 'larger context window' });
      }
    }
    return out;
  }
}

/**
 * A request's estimated cost on a deployment, for ranking: its prompt estimate and answer length at
 * the token prices, its flat price, and the audio's minutes, the characters to speak and the images
 * to make at theirs.
 * Rounded to 12 significant digits: two costs equal in decimals (0.1 + 0.2 against 0.3) must tie,
 * so that quality breaks the tie, where floating point would leave 1e-17 between them, which the
 * strategies' normalising turns into the whole score.
 */
function costEstimate(input: PlanRequest, outputTokens: number, price: EffectivePrice): number {
  const { estimate } = price;
  const tokens = (input.promptTokens * estimate.input + outputTokens * estimate.output) / MILLION;
  const units = ((input.audioMs ?? 0) / 60_000) * estimate.perAudioMinute + ((input.characters ?? 0) * estimate.perMillionCharacters) / MILLION + (input.imagesMade ?? 0) * estimate.perImage;
  return Number((tokens + estimate.perRequest + units).toPrecision(12));
}

/** The refusal of a request naming a retired model that nothing replaces: an unknown model, as OpenAI answers one, saying since when. */
function retiredModel(name: string, retiredAt: number, param: string): GatewayError {
  const when = new Date(retiredAt).toISOString();
  const date = when.endsWith('T00:00:00.000Z') ? when.slice(0, 10) : when.replace('.000Z', 'Z');
  return new GatewayError('not_found', `The model \`${name}\` was retired on ${date}; name another model.`, { param, code: 'model_not_found' });
}

/**
 * The refusal of a request whose model has deployments, none of which its tenant's policy permits:
 * answered like a model outside `allowed_models` (404), with its own code and the part of the policy
 * that excluded them. Only the caller's own allowed residency is named, never the deployments or
 * providers left out.
 */
function policyRefusal(input: PlanRequest, dimensions: ReadonlySet<PolicyDimension>): GatewayError {
  const parts: string[] = [];
  if (dimensions.has('providers')) parts.push('provider policy');
  if (dimensions.has('residency')) parts.push(`data-residency policy (allowed residency: ${input.context.policy?.residency?.values.join(', ') || 'none'})`);
  return new GatewayError('not_found', `No deployment of \`${input.model}\` is permitted by the ${parts.join(' and the ')} that applies to this key's organisation, team, project or key.`, {
    param: 'model',
    code: NO_PERMITTED_DEPLOYMENT,
  });
}

/**
 * What the planner reads from a chat request besides the model name. Image parts are counted here,
 * once per request, and priced per model by `promptTokensOn`.
 */
export function chatRequestTraits(request: chatv1.ChatRequest): { needs: Capability[]; promptTokens: number; images: ImageParts; maxOutputTokens: number } {
  const needs: Capability[] = [];
  if (request.tools.length > 0) needs.push('tools');
  let chars = 0;
  const images: ImageParts = { any: 0, low: 0 };
  for (const message of request.messages) {
    if (message.text !== undefined) chars += message.text.length;
    else if (message.parts) {
      for (const part of message.parts.parts) {
        if (part.text !== undefined) chars += part.text.length;
        else if (part.imageUrl) countImage(images, part.imageUrl.detail === 'low');
        else if (part.rawJson) {
          const content = partContent(part);
          if (content.text !== undefined) chars += content.text.length;
          if (content.image) countImage(images, lowDetail(part.rawJson));
        }
      }
    }
    for (const call of message.toolCalls) chars += call.function?.arguments.length ?? 0;
  }
  if (images.any > 0) needs.push('vision');
  const format = request.responseFormat?.type;
  if (format === 'json_schema') needs.push('json_schema');
  else if (format === 'json_object') needs.push('json_object');
  return {
    needs,
    promptTokens: Math.ceil(chars / 4) + request.messages.length * 4,
    images,
    maxOutputTokens: request.maxCompletionTokens ?? request.maxTokens ?? 0,
  };
}

/**
 * What the planner reads from a transcription or translation request: the tokens of its `prompt`
 * (a quarter of its characters, as a chat prompt's text), plus the audio's at `tokensPerSecond`
 * when the gateway read its length from the file (`duration_ms`; WAV); an audio of unknown length
 * counts for its prompt alone. `audioMs` prices per-minute models in the `cost` strategy.
 */
export function transcriptionRequestTraits(request: chatv1.AudioTranscriptionRequest, tokensPerSecond: number): { promptTokens: number; audioMs: number } {
  const audioMs = request.durationMs;
  return { promptTokens: Math.ceil((request.prompt?.length ?? 0) / 4) + Math.ceil((audioMs / 1000) * tokensPerSecond), audioMs };
}

/** What the planner reads from a speech request: the tokens of its `input`, and its characters (Unicode code points), priced per million. */
export function speechRequestTraits(request: chatv1.SpeechRequest): { promptTokens: number; characters: number } {
  return { promptTokens: Math.ceil(request.input.length / 4), characters: [...request.input].length };
}

function countImage(images: ImageParts, low: boolean): void {
  images.any++;
  if (low) images.low++;
}

/**
 * Whether an image part kept as JSON (one with `cache_control`, say) asks for `detail: "low"`.
 * `partContent` does not tell, so the part is parsed again, but only when its text holds `"low"`
 * at all: most such parts are never parsed twice. (`partContent` parsed it, so it is valid JSON.)
 */
function lowDetail(rawJson: string): boolean {
  if (!rawJson.includes('"low"')) return false;
  const part = JSON.parse(rawJson) as { image_url?: { detail?: unknown } | null };
  return part.image_url?.detail === 'low';
}

