import { createHmac, randomUUID } from 'node:crypto';
import { Counter, Gauge, type Registry } from 'prom-client';
import { z } from 'zod';
import { chatv1, type routerv1 } from '@openrouter/contracts';
import type { CacheConfig, ModelConfig } from '@openrouter/config';
import { GatewayError } from '@openrouter/errors';
import type { Logger } from '@openrouter/observability';
import type { PricedUsage } from '@openrouter/usage';
import type { AccessService } from '../access/access.service';
import type { ApiKeyRecord } from '../access/key-record';
import { openText, sealText } from '../access/sealed-text';
import { CACHE_ENDPOINTS, keyMaterial, scopeIds, servingConstraints, type CacheEndpoint } from './cache-key';
import { StreamedAnswer } from './cached-answer';
import { CoalescedMisses, type Lead, type WaitOutcome } from './coalesced-misses';
import { keepClaimed, type Claimed, type FleetFlights } from './fleet-flights';
import type { ResponseCacheStore } from './response-cache.store';

/** Request header choosing what the cache does with a request. */
export const CACHE_HEADER = 'x-openrouter-cache';
/** Request header with the entry's time to live, in seconds (1..cache.maxTtlSeconds). */
export const CACHE_TTL_HEADER = 'x-openrouter-cache-ttl';

/** What a request asked of the cache: look up and store on a miss, store only, or nothing. */
export type CacheMode = 'use' | 'refresh' | 'bypass';
/** Outcomes counted by `openrouter_cache_requests_total`. */
export type CacheResult = 'hit' | 'miss' | 'refresh' | 'bypass' | 'error' | 'skipped';

/** One request's use of the cache, decided from its headers before anything is routed. */
export interface CachePlan {
  readonly mode: CacheMode;
  readonly endpoint: CacheEndpoint;
  /** The entry's id: the keyed hash of scope, endpoint and canonical request (empty for `bypass`). */
  readonly id: string;
  readonly ttlMs: number;
}

/** The route that first served a cached answer, and what that cost. */
export interface CachedOrigin {
  model: string;
  provider: string;
  deployment: string;
  upstreamModel: string;
  cost: PricedUsage;
}

/** A hit: the stored answer (an embedding for `/v1/embeddings`, else a chat completion), its origin and age. */
export interface CacheHit extends CachedOrigin {
  ageSeconds: number;
  completion?: chatv1.ChatCompletion;
  embedding?: chatv1.EmbeddingResponse;
}

const entrySchema = z.object({
  v: z.literal(1),
  endpoint: z.enum(CACHE_ENDPOINTS),
  storedAtMs: z.number().int().nonnegative(),
  model: z.string(),
  provider: z.string(),
  deployment: z.string(),
  upstreamModel: z.string(),
  cost: z.object({ amount: z.string().regex(/^\d+(\.\d+)?$/), currency: z.string(), priceVersion: z.string() }),
  /** The answer in protobuf binary form (chat.v1 ChatCompletion or EmbeddingResponse), base64. */
  answer: z.string(),
});
type Entry = z.infer<typeof entrySchema>;

/** A request leading a flight: its lead within this process, and its claim of the fleet's flight when it made one. */
interface Leading {
  local: Lead<string>;
  /** The claim's token. */
  claim?: string;
  /** Stops extending the claim (see `keepClaimed`). */
  stopRenewing?: () => void;
}

const MODES: Record<string, CacheMode> = { use: 'use', refresh: 'refresh', off: 'bypass' };
/** Outages are logged at most this often (every request would otherwise log one). */
const LOG_EVERY_MS = 60_000;

/**
 * The exact-match response cache (docs/caching.md). An entry is found under a keyed hash
 * (HMAC-SHA256, key derived from `access.keyHashSecret`) of who may share it (`cache.scope`,
 * never beyond an organisation), the endpoint and the canonical request, and is sealed with
 * AES-256-GCM under another derived key, bound to that id: the store alone reveals no prompt
 * and no answer. The cache never fails a request: a store that cannot be reached, or an entry
 * that does not open, is a miss. Nothing of a prompt or an answer is ever logged.
 *
 * Identical misses arriving together are coalesced (`cache.coalesceWaitMs`): the first leads (calls
 * the provider), the others wait for its answer to be stored and are then answered from it as hits.
 * The leader's request settles its lead by storing its answer, by not storing it (`skipped`), or by
 * ending without one (`abandon`, which its route calls whatever happened). Within this process a
 * single flight; across replicas (a store with {@link FleetFlights}, `cache.coalesceAcrossReplicas`)
 * this process's leader claims the flight in the store (and keeps the claim until its lead is
 * settled), or, finding it claimed by another replica, follows that one instead of calling the
 * provider, with its own waiters behind it.
 */
export class ResponseCache {
  private readonly keyKey: Buffer;
  private readonly sealKey: Buffer;
  private readonly requests: Counter<'result'>;
  /** Single flight of misses (undefined when `cache.coalesceWaitMs` is 0): what a waiter is given is the sealed entry its leader stored. */
  private readonly misses: CoalescedMisses<string> | undefined;
  /** Flights shared with the other replicas (undefined: each replica coalesces its own requests only). */
  private readonly fleet: FleetFlights | undefined;
  /** The lead of each request that leads a flight, by its plan (one object per request), and, when it claimed the fleet's flight, its claim's token and what stops its renewal. */
  private readonly leads = new WeakMap<CachePlan, Leading>();
  private lastLoggedMs = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly config: CacheConfig,
    secret: string,
    private readonly store: ResponseCacheStore,
    private readonly logger: Logger,
    registry: Registry,
    private readonly now: () => number = Date.now,
    /** From when each model with a lifecycle is left to the router (see `lifecycleStarts`). */
    private readonly lifecycles: ReadonlyMap<string, number> = new Map(),
    /** Which keys' tenants keep nothing of their responses (see `planFor`). */
    private readonly access?: Pick<AccessService, 'responsesUnstoredBy'>,
  ) {
    // Labels with a NUL byte, which no API key can hold (a header cannot carry one): an API key's
    // hash, HMAC of the same secret and kept in the configuration and the access store, is never one of these keys.
    this.keyKey = createHmac('sha256', secret).update('response-cache\0key').digest();
    this.sealKey = createHmac('sha256', secret).update('response-cache\0seal').digest();
    this.requests = new Counter({
      name: 'openrouter_cache_requests_total',
      help: 'Requests seen by the response cache, by result: hit, miss, refresh, bypass, error (store unreachable: served uncached; or an answer that could not be stored), skipped (an answer not stored: incomplete, filtered, cut or too large).',
      labelNames: ['result'],
      registers: [registry],
    });
    for (const result of ['hit', 'miss', 'refresh', 'bypass', 'error', 'skipped'] as const) this.requests.inc({ result }, 0);
    const misses = config.coalesceWaitMs > 0 ? new CoalescedMisses<string>(config.coalesceWaitMs) : undefined;
    this.misses = misses;
    this.fleet = misses && config.coalesceAcrossReplicas ? store.flights : undefined;
    new Gauge({
      name: 'openrouter_cache_waiting',
      help: 'Requests waiting for an identical request (of this ingress, or of another replica) to have its answer stored (coalesced misses), instead of calling a provider themselves.',
      registers: [registry],
      collect() {
        this.set(misses?.waiting ?? 0);
      },
    });
  }

  /**
   * What the request asks of the cache (`x-openrouter-cache`, else `cache.mode`), and its entry's
   * id and time to live. An unknown mode or a bad TTL is the client's error (400 naming the header).
   * A route plans through `planFor`, which also heeds the key's tenants' retention policy.
   */
  plan(endpoint: CacheEndpoint, context: routerv1.RequestContext, body: unknown, headers: Readonly<Record<string, string | string[] | undefined>>): CachePlan {
    const asked = headers[CACHE_HEADER];
    let mode: CacheMode = this.config.mode === 'always' ? 'use' : 'bypass';
    if (asked !== undefined) {
      const found = typeof asked === 'string' ? MODES[asked.trim().toLowerCase()] : undefined;
      if (!found) throw new GatewayError('bad_request', `The ${CACHE_HEADER} header must be one of use, refresh or off.`, { param: CACHE_HEADER, code: 'invalid_value' });
      mode = found;
    }
    const ttlMs = this.ttlMs(headers[CACHE_TTL_HEADER]);
    if (mode !== 'bypass' && this.leftToRouter(body)) mode = 'bypass';
    if (mode === 'bypass') return { mode, endpoint, id: '', ttlMs };
    const material = keyMaterial(scopeIds(this.config.scope, context), endpoint, body, headers, servingConstraints(context));
    return { mode, endpoint, id: createHmac('sha256', this.keyKey).update(material).digest('hex'), ttlMs };
  }

  /**
   * `plan` for a request of `key`, as a route makes it: a key whose own or tenants' policy keeps
   * nothing of its responses (`storeResponses: false`, zero retention; docs/access.md) bypasses the
   * cache whatever it or `cache.mode` asks. Its answer is then neither stored (another key of its
   * project would be answered from it) nor served from an entry, and it neither leads nor waits.
   */
  async planFor(endpoint: CacheEndpoint, context: routerv1.RequestContext, body: unknown, headers: Readonly<Record<string, string | string[] | undefined>>, key: ApiKeyRecord | undefined): Promise<CachePlan> {
    const plan = this.plan(endpoint, context, body, headers);
    if (plan.mode === 'bypass' || !key || !this.access) return plan;
    // A policy that cannot be read now (its tenant not loaded) keeps nothing either: the cache never
    // fails a request, and never keeps what it does not know it may.
    const keepsNothing = await this.access.responsesUnstoredBy(key).then(
      (level) => level !== undefined,
      () => true,
    );
    return keepsNothing ? { mode: 'bypass', endpoint, id: '', ttlMs: plan.ttlMs } : plan;
  }

  /**
   * A request naming a model that is deprecated or retired now is not cached: its answer carries
   * the lifecycle headers only the router sets, and a retirement sends it to the replacement, which
   * an entry stored before would not.
   */
  private leftToRouter(body: unknown): boolean {
    if (this.lifecycles.size === 0 || body === null || typeof body !== 'object') return false;
    const model = (body as { model?: unknown }).model;
    const from = typeof model === 'string' ? this.lifecycles.get(model) : undefined;
    return from !== undefined && this.now() >= from;
  }

  private ttlMs(header: string | string[] | undefined): number {
    if (header === undefined) return this.config.defaultTtlSeconds * 1000;
    const max = this.config.maxTtlSeconds;
    const seconds = typeof header === 'string' && /^\s*\d{1,10}\s*$/.test(header) ? Number(header) : Number.NaN;
    if (!(seconds >= 1 && seconds <= max)) {
      throw new GatewayError('bad_request', `The ${CACHE_TTL_HEADER} header must be a whole number of seconds from 1 to ${max}.`, { param: CACHE_TTL_HEADER, code: 'invalid_value' });
    }
    return seconds * 1000;
  }

  /**
   * The stored answer for a `use` plan; undefined on a miss, an unreadable entry or a store that
   * cannot be reached. Counts the result. On a miss while an identical request of this process (or,
   * with flights shared through the store, of another replica) is being answered, waits for that
   * answer (at most `cache.coalesceWaitMs`) and returns it as a hit once stored; undefined when it
   * was not (the request then calls the provider itself). A miss with no such request makes this
   * one their leader: its route must end with `storeCompletion`,
   * `storeEmbedding`, `skipped` or `abandon`. `clientGone` aborts the wait: the request is then
   * `cancelled` (its client has left), or ended with the abort's reason when that is a `GatewayError`.
   */
  async lookup(plan: CachePlan, requestId: string, clientGone?: AbortSignal): Promise<CacheHit | undefined> {
    if (plan.mode !== 'use') {
      this.count(plan.mode);
      return undefined;
    }
    let sealed: string | undefined;
    try {
      sealed = await this.store.get(plan.id);
    } catch (error) {
      this.failed(error, requestId, 'response cache unreachable: request served uncached');
      return undefined;
    }
    const hit = sealed === undefined ? undefined : this.open(plan, sealed, requestId);
    if (hit) {
      this.count('hit');
      return hit;
    }
    return this.coalesced(plan, requestId, clientGone);
  }

  /** A miss: led here, or answered by the identical request already leading, here or on another replica (see `lookup`). */
  private async coalesced(plan: CachePlan, requestId: string, clientGone: AbortSignal | undefined): Promise<CacheHit | undefined> {
    const joined = this.misses?.join(plan.id, clientGone);
    if (joined?.wait) return this.waited(plan, await joined.wait, requestId, clientGone);
    if (!joined) {
      this.count('miss');
      return undefined;
    }
    const lead = joined.lead;
    // Only this process's leader touches the fleet's flight; its own waiters wait for it here.
    const claim = this.fleet ? randomUUID() : undefined;
    const claimed = claim === undefined ? undefined : await this.claim(plan, claim, requestId);
    if (claimed?.kind === 'stored') {
      // Stored by another replica since the lookup: a hit, and so for the requests waiting here.
      const hit = this.open(plan, claimed.sealed, requestId);
      if (hit) {
        lead.stored(claimed.sealed);
        this.count('hit');
        return hit;
      }
    }
    if (claimed?.kind === 'held' && this.fleet) {
      // Another replica leads: this process's flight follows it for as long as its claim lasts, and
      // this request waits as its own waiters do. No request's wait bounds the flight: each one here,
      // this one included, goes on by itself at the end of its own wait, and one arriving later still
      // has the whole of its own.
      this.fleet.follow(plan.id, claimed.holder).then((followed) => (followed.outcome === 'stored' ? lead.stored(followed.sealed) : lead.abandon()));
      return this.waited(plan, await lead.follow(clientGone), requestId, clientGone);
    }
    const leading: Leading = { local: lead };
    if (claimed?.kind === 'claimed' && claim !== undefined && this.fleet) {
      // Held for as long as this request's provider call runs, however much longer than the claim's
      // time to live that is: a request arriving at another replica meanwhile follows it rather than
      // calling the provider again. A leader that crashes stops renewing, and its claim expires.
      leading.claim = claim;
      leading.stopRenewing = keepClaimed(this.fleet, plan.id, claim, this.config.coalesceWaitMs, (error) =>
        this.logOutage(error, requestId, 'response cache flight could not be renewed: it expires unless a later renewal succeeds'),
      );
    }
    this.leads.set(plan, leading);
    this.count('miss');
    return undefined;
  }

  /** Claims the fleet's flight of `plan`; undefined when the store cannot be reached (coalesced within this process only, then). */
  private async claim(plan: CachePlan, claim: string, requestId: string): Promise<Claimed | undefined> {
    try {
      return await this.fleet?.claim(plan.id, claim, this.config.coalesceWaitMs);
    } catch (error) {
      this.failed(error, requestId, 'response cache flight could not be claimed: identical requests of other replicas are not coalesced with this one');
      return undefined;
    }
  }

  /** A request that waited: a hit when what it waited for was stored (and opens), else a miss; its client left: cancelled. */
  private waited(plan: CachePlan, waited: WaitOutcome<string>, requestId: string, clientGone: AbortSignal | undefined): CacheHit | undefined {
    const hit = waited.outcome === 'stored' ? this.open(plan, waited.value, requestId) : undefined;
    this.count(hit ? 'hit' : 'miss');
    if (waited.outcome === 'cancelled') throw clientGone?.reason instanceof GatewayError ? clientGone.reason : new GatewayError('cancelled', 'The client went away.');
    return hit;
  }

  /** Ends the fleet's flight this request claimed, and its renewal; a release that fails leaves the claim to expire (at most `cache.coalesceWaitMs`). */
  private release(plan: CachePlan, leading: Leading | undefined, outcome: 'stored' | 'abandoned', requestId?: string): void {
    leading?.stopRenewing?.();
    const claim = leading?.claim;
    if (claim === undefined || !this.fleet) return;
    this.fleet.release(plan.id, claim, outcome).catch((error: unknown) => this.logOutage(error, requestId, 'response cache flight could not be released: it expires by itself'));
  }

  /** Lets go of the store's subscription, at shutdown. */
  close(): void {
    this.store.close?.();
  }

  /** Stores a whole chat answer (or a stream gathered whole) that `completionStorable` admitted. */
  storeCompletion(plan: CachePlan, origin: CachedOrigin, completion: chatv1.ChatCompletion, requestId: string): void {
    this.write(plan, origin, Buffer.from(chatv1.ChatCompletion.encode(completion).finish()), requestId);
  }

  storeEmbedding(plan: CachePlan, origin: CachedOrigin, response: chatv1.EmbeddingResponse, requestId: string): void {
    this.write(plan, origin, Buffer.from(chatv1.EmbeddingResponse.encode(response).finish()), requestId);
  }

  /** What gathers a stream for {@link storeCompletion}: it gives up once the answer outgrows `cache.maxEntryBytes`. */
  gathering(): StreamedAnswer {
    return new StreamedAnswer(this.config.maxEntryBytes);
  }

  /** An answer of a `use` or `refresh` request that is not stored (incomplete, filtered, cut). */
  skipped(plan: CachePlan): void {
    this.abandon(plan);
    if (plan.mode !== 'bypass') this.count('skipped');
  }

  /**
   * The request of `plan` will store nothing (it failed, was cancelled, or its answer may not be
   * stored): the requests waiting for it go on to the provider themselves. Nothing once its answer
   * is being stored, or when it leads nothing; so a route calls this whatever happened, once it is done.
   */
  abandon(plan: CachePlan): void {
    const leading = this.leads.get(plan);
    this.leads.delete(plan);
    leading?.local.abandon();
    if (leading) this.release(plan, leading, 'abandoned');
  }

  private write(plan: CachePlan, origin: CachedOrigin, answer: Buffer, requestId: string): void {
    if (plan.mode === 'bypass') return;
    const leading = this.leads.get(plan);
    this.leads.delete(plan);
    const entry: Entry = { v: 1, endpoint: plan.endpoint, storedAtMs: this.now(), ...origin, answer: answer.toString('base64') };
    const sealed = sealText(this.sealKey, JSON.stringify(entry), plan.id);
    if (Buffer.byteLength(sealed) > this.config.maxEntryBytes) {
      this.count('skipped');
      leading?.local.abandon();
      this.release(plan, leading, 'abandoned', requestId);
      return;
    }
    // In the background: the client has its answer, and a store that fails changes nothing for it.
    // The requests waiting for it are answered once it is stored, as any later hit would be.
    this.store.set(plan.id, sealed, plan.ttlMs).then(
      () => {
        leading?.local.stored(sealed);
        this.release(plan, leading, 'stored', requestId);
      },
      (error: unknown) => {
        leading?.local.abandon();
        this.release(plan, leading, 'abandoned', requestId);
        this.failed(error, requestId, 'response cache unreachable: answer not stored');
      },
    );
  }

  private open(plan: CachePlan, sealed: string, requestId: string): CacheHit | undefined {
    try {
      const entry = entrySchema.parse(JSON.parse(openText(this.sealKey, sealed, plan.id)));
      if (entry.endpoint !== plan.endpoint) return undefined;
      const bytes = Buffer.from(entry.answer, 'base64');
      const { answer: _answer, v: _v, endpoint: _endpoint, storedAtMs, ...origin } = entry;
      const ageSeconds = Math.max(0, Math.floor((this.now() - storedAtMs) / 1000));
      return plan.endpoint === '/v1/embeddings'
        ? { ...origin, ageSeconds, embedding: chatv1.EmbeddingResponse.decode(bytes) }
        : { ...origin, ageSeconds, completion: chatv1.ChatCompletion.decode(bytes) };
    } catch {
      // Sealed under another access.keyHashSecret (rotated since), or damaged: a miss, and the fresh answer replaces it.
      this.logger.warn({ requestId }, 'response cache entry could not be read: treated as a miss');
      return undefined;
    }
  }

  private failed(error: unknown, requestId: string, message: string): void {
    this.count('error');
    this.logOutage(error, requestId, message);
  }

  private logOutage(error: unknown, requestId: string | undefined, message: string): void {
    const now = this.now();
    if (now - this.lastLoggedMs < LOG_EVERY_MS) return;
    this.lastLoggedMs = now;
    // The message only: a client error may carry the command's arguments (a sealed entry).
    this.logger.warn({ error: error instanceof Error ? error.message : String(error), requestId }, message);
  }

  private count(result: CacheResult): void {
    this.requests.inc({ result });
  }
}

/**
 * From when requests naming each model with a lifecycle are left to the router, uncached: its
 * `deprecatedAt`, else its `retiresAt` (docs/routing.md "Model lifecycle"). A date is midnight UTC,
 * as the router reads it.
 */
export function lifecycleStarts(models: readonly Pick<ModelConfig, 'id' | 'lifecycle'>[]): Map<string, number> {
  const starts = new Map<string, number>();
  for (const model of models) {
    const from = model.lifecycle?.deprecatedAt ?? model.lifecycle?.retiresAt;
    const at = from === undefined ? Number.NaN : Date.parse(from);
    if (Number.isFinite(at)) starts.set(model.id, at);
  }
  return starts;
}
