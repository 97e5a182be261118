import type { routerv1 } from '@openrouter/contracts';
import type { CacheConfig } from '@openrouter/config';

/**
 * The endpoints whose answers are cached. The Responses and Messages APIs are keyed on their chat
 * translation under their own name: an entry is only ever replayed in its own API's format. A
 * legacy completion (`/v1/completions`) is keyed on its own body, whole, all its prompts together.
 */
export const CACHE_ENDPOINTS = ['/v1/chat/completions', '/v1/responses', '/v1/messages', '/v1/completions', '/v1/embeddings'] as const;
export type CacheEndpoint = (typeof CACHE_ENDPOINTS)[number];

/**
 * Request fields left out of the key: they change how the answer is carried, not the answer (a
 * streamed request may be answered from a whole answer's entry and the other way round). Every
 * other field counts, `user` and `metadata` included.
 */
export const KEY_IGNORED_FIELDS: readonly string[] = ['stream', 'stream_options'];

/** Headers that steer routing (so change the answer), part of the key as the body's fields are. */
export const KEY_HEADERS: readonly string[] = ['x-openrouter-route', 'x-openrouter-models'];

/**
 * JSON with every object's keys sorted, at every depth: the same request written with its fields
 * in another order is the same text. Array order is kept (it means something: messages, inputs).
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sorted(value));
}

function sorted(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sorted);
  if (value === null || typeof value !== 'object') return value;
  // No prototype: a `__proto__` key is a field like any other, never the object's prototype.
  const out = Object.create(null) as Record<string, unknown>;
  for (const key of Object.keys(value).sort()) {
    const v = (value as Record<string, unknown>)[key];
    if (v !== undefined) out[key] = sorted(v);
  }
  return out;
}

/**
 * Who shares entries, as ids: never across organisations. `project` falls back to the key for a
 * key that belongs to no project (two project-less keys of an organisation share nothing).
 */
export function scopeIds(scope: CacheConfig['scope'], context: Pick<routerv1.RequestContext, 'orgId' | 'projectId' | 'keyId'>): string[] {
  if (scope === 'org') return ['org', context.orgId];
  if (scope === 'project' && context.projectId) return ['project', context.orgId, context.projectId];
  return ['key', context.orgId, context.keyId];
}

/** Fields of a request's context that say who asked (`cache.scope` decides who shares), not what may serve it. */
const IDENTITY_FIELDS: ReadonlySet<string> = new Set(['requestId', 'orgId', 'projectId', 'teamId', 'appId', 'costCenter', 'keyId', 'endUser']);

/**
 * Everything else in a request's context: what limits where it may be served (the key's allowed
 * models, the tenant's routing policy, tags) and how its text is screened (the policy's guardrail
 * rule ids, `guardrails.default` included, and the digest of those rules' definitions). A hit
 * skips the router, which enforces them, so two callers share an entry only when these are the
 * same: a key may never be answered by a model or provider it could not have reached itself, nor
 * with an answer stored under other guardrails (a request a rule now blocks, or one whose text a
 * rule now redacts, is never answered from an entry stored before the rule).
 */
export function servingConstraints(context: routerv1.RequestContext): Record<string, unknown> {
  return Object.fromEntries(Object.entries(context).filter(([field]) => !IDENTITY_FIELDS.has(field)));
}

/**
 * The text the key is the keyed hash of: scope, endpoint, the context's serving constraints,
 * routing headers and the request's canonical body minus {@link KEY_IGNORED_FIELDS}.
 */
export function keyMaterial(
  scope: readonly string[],
  endpoint: CacheEndpoint,
  body: unknown,
  headers: Readonly<Record<string, string | string[] | undefined>>,
  constraints: Record<string, unknown> = {},
): string {
  const request = body !== null && typeof body === 'object' && !Array.isArray(body) ? { ...(body as Record<string, unknown>) } : body;
  if (request !== null && typeof request === 'object' && !Array.isArray(request)) for (const field of KEY_IGNORED_FIELDS) delete (request as Record<string, unknown>)[field];
  const route: Record<string, string> = {};
  for (const name of KEY_HEADERS) {
    const value = headers[name];
    if (typeof value === 'string') route[name] = value;
  }
  return canonicalJson({ v: 1, scope, endpoint, constraints, route, request });
}
