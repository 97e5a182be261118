import { z } from 'zod';
import { overridable, ROUTE_STRATEGIES, type GatewayConfig, type PolicyConfig, type RouteSettings, type RouteStrategy } from '@openrouter/config';
import { GatewayError } from '@openrouter/errors';
import { validate } from '@openrouter/openai-wire';

const decimalText = z.union([z.string(), z.number().nonnegative()]).transform((v, ctx) => {
  const text = String(v);
  if (!/^\d+(\.\d+)?$/.test(text)) {
    ctx.addIssue({ code: 'custom', message: 'must be a non-negative decimal number, e.g. "0.50"' });
    return z.NEVER;
  }
  return text;
});

const providerList = z.array(z.string().min(1)).max(64);

/** The OpenAI-compatible extensions a request may carry: `models` and `route`. */
export const requestControlsSchema = z.object({
  models: z.array(z.string().min(1).max(256)).min(1).max(16).optional(),
  route: z
    .strictObject({
      strategy: z.enum(ROUTE_STRATEGIES).optional(),
      min_quality: z.number().min(0).max(1).optional(),
      max_price: z.union([decimalText, z.strictObject({ prompt: decimalText.optional(), completion: decimalText.optional() })]).optional(),
      latency_sensitive: z.boolean().optional(),
      allow_fallbacks: z.boolean().optional(),
      providers: z.strictObject({ order: providerList.optional(), only: providerList.optional(), ignore: providerList.optional() }).optional(),
    })
    .optional(),
});

export interface RequestControls {
  models?: string[] | undefined;
  route: RouteSettings;
}

/** Reads `models` and `route` from a request's extra JSON and returns the JSON without them (for the adapter). */
export function takeRequestControls(extraJson: string): { controls: RequestControls; extraJson: string } {
  if (!extraJson) return { controls: { route: {} }, extraJson };
  let extra: unknown;
  try {
    extra = JSON.parse(extraJson);
  } catch {
    return { controls: { route: {} }, extraJson };
  }
  if (typeof extra !== 'object' || extra === null || Array.isArray(extra)) return { controls: { route: {} }, extraJson };
  const { models, route, ...rest } = extra as Record<string, unknown>;
  if (models === undefined && route === undefined) return { controls: { route: {} }, extraJson };
  // Named the way the request's own fields are (`models[0]`, `route.strategy`).
  const parsed = validate(requestControlsSchema, { models: models ?? undefined, route: route ?? undefined });
  const r = parsed.route ?? {};
  const settings: RouteSettings = {};
  if (r.strategy !== undefined) settings.strategy = r.strategy;
  if (r.min_quality !== undefined) settings.minQuality = r.min_quality;
  if (r.max_price !== undefined) settings.maxPrice = r.max_price;
  if (r.latency_sensitive !== undefined) settings.latencySensitive = r.latency_sensitive;
  if (r.allow_fallbacks !== undefined) settings.allowFallbacks = r.allow_fallbacks;
  if (r.providers !== undefined) settings.providers = r.providers;
  return {
    controls: { models: parsed.models, route: settings },
    extraJson: Object.keys(rest).length > 0 ? JSON.stringify(rest) : '',
  };
}

/** Route settings after defaults, policy, alias and request, every field decided. */
export interface EffectiveRoute {
  strategy: RouteStrategy;
  minQuality: number;
  maxPrice: RouteSettings['maxPrice'];
  latencySensitive: boolean;
  allowFallbacks: boolean;
  providers: { order: string[]; only: string[] | undefined; ignore: string[] };
  policy: string | undefined;
}

const SETTING_FIELDS = ['strategy', 'minQuality', 'maxPrice', 'latencySensitive', 'allowFallbacks', 'providers'] as const;

/**
 * Layers route settings: config defaults, then the caller's policy, then the alias the request
 * names, then the request itself. A field the policy does not let requests override rejects the
 * request, and keeps the policy's value over the alias's too.
 */
export function effectiveRoute(
  routing: GatewayConfig['routing'],
  policy: PolicyConfig | undefined,
  alias: RouteSettings | undefined,
  request: RequestControls,
): EffectiveRoute {
  if (request.models && !overridable(policy, 'models')) forbidden('models', policy);
  for (const field of SETTING_FIELDS) if (request.route[field] !== undefined && !overridable(policy, field)) forbidden(`route.${snake(field)}`, policy);
  const merged: RouteSettings = { ...routing.defaults };
  for (const layer of [policy?.route, alias, request.route]) {
    for (const field of SETTING_FIELDS) if (layer?.[field] !== undefined) Object.assign(merged, { [field]: layer[field] });
  }
  if (policy) for (const field of SETTING_FIELDS) if (!overridable(policy, field) && policy.route[field] !== undefined) Object.assign(merged, { [field]: policy.route[field] });
  return {
    strategy: merged.strategy ?? 'balanced',
    minQuality: merged.minQuality ?? 0,
    maxPrice: merged.maxPrice,
    latencySensitive: merged.latencySensitive ?? false,
    allowFallbacks: merged.allowFallbacks ?? true,
    providers: { order: merged.providers?.order ?? [], only: merged.providers?.only, ignore: merged.providers?.ignore ?? [] },
    policy: policy?.id,
  };
}

function forbidden(param: string, policy: PolicyConfig | undefined): never {
  throw new GatewayError('permission_denied', `The routing policy "${policy?.id ?? ''}" does not allow requests to set '${param}'.`, { param, code: 'route_override_forbidden' });
}

function snake(field: string): string {
  return field.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}
