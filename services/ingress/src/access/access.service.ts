import { InternalCallCredential } from './internal-call';
import { createHmac } from 'node:crypto';
import { AUTO_MODEL, DEV_KEY_ID, policyProvidersOf, tenantPolicyIssues, type GatewayConfig, type Limits, type OrgConfig, type PolicyProviders, type ProjectConfig, type TeamConfig, type TenantPolicyConfig } from '@openrouter/config';
import type { routerv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import type { Logger } from '@openrouter/observability';
import { Coalesced, Reannouncer } from '@openrouter/service-runtime';
import { askedOutputTokens, audioDemandOf, imageCostOf, imagesAsked, makesImages, membersOf, outputAnswers } from '../budgets/worst-case-cost';
import type { AccessEvent, AccessRepository, AuditAction, AuditEntry, NumberedAuditEntry } from './access.repository';
import { inScope, isScoped, requireFilterInScope, requireInScope, scopeTooNarrow, type AdminScope } from './admin-scope';
import { displayPrefix, generateApiKey, hashApiKey } from './api-key';
import { countPromptTokens, type ImageCost } from './prompt-tokens';
import { KeyDirectory } from './key-directory';
import { matchesFilter, type KeyListFilter } from './key-index';
import { hashesOf, publicView, type ApiKeyRecord, type PublicApiKey } from './key-record';
import { KeyUses } from './key-uses';
import { AddressRanges, ClientAddresses, refusingLevel, unmapped, type NetworkLevel } from './network';
import type { CounterStore } from './counter.store';
import { MemoryIdempotencyStore, type IdempotencyStore } from './idempotency.store';
import { IdempotentResponses } from './idempotent-responses';
import { NO_TOKENS, RateLimiter, type Admission, type ApplicableLimit, type TokenDemand } from './rate-limiter';
import { effectiveLimits, TenantDirectory, type TenantPlacement } from './tenant-directory';
import { effectivePolicy } from './tenant-policy';

/** Who calls an admin operation: named in the audit log, and confined to its scope (org, project) if it has one. */
export interface Actor extends AdminScope {
  id: string;
  role: string;
  /** The client address the call came from (past the trusted proxies), when it could be told: recorded as the audit entry's `source_ip`. */
  address?: string | undefined;
}

export interface IssueKeyInput {
  name: string;
  org: string;
  team?: string | undefined;
  project?: string | undefined;
  app?: string | undefined;
  allowedModels: string[];
  /** Which deployments the key's requests may reach, within its tenants' policies. */
  policy?: TenantPolicyConfig | undefined;
  limits: Limits;
  expiresAt?: string | undefined;
  metadata: Record<string, string>;
  tags: Record<string, string>;
}

/** A change of an issued key: each field given replaces the stored one; `expiresAt: null` clears the expiry. */
export interface UpdateKeyInput {
  name?: string | undefined;
  allowedModels?: string[] | undefined;
  /** Replaces the key's policy whole; `null` removes it. */
  policy?: TenantPolicyConfig | null | undefined;
  limits?: Limits | undefined;
  expiresAt?: string | null | undefined;
  metadata?: Record<string, string> | undefined;
  tags?: Record<string, string> | undefined;
}

/** Traffic attributes a caller may add per request (apps and end-users are attributes of traffic). */
export interface TrafficAttributes {
  app?: string | undefined;
  endUser?: string | undefined;
  tags?: Record<string, string> | undefined;
}

/** A key changed (`hash`), or `resync`: notices may have been missed, so any key may have changed. */
export type KeyChange = Extract<AccessEvent, { kind: 'key' | 'resync' }>;

/** After a tenant change could not be announced, when to announce it again (ms after each failure). */
export const TENANT_REANNOUNCE_DELAYS_MS: readonly number[] = [1_000, 5_000, 15_000];
/** How often a replica compares the store's tenant version with the one it loaded, by default. */
export const TENANT_CHECK_INTERVAL_MS = 30_000;

export interface AccessServiceOptions {
  /** When to announce again a tenant change whose announcement failed (tests shorten them). */
  reannounceDelaysMs?: readonly number[];
  /**
   * How often the store's tenant version is compared with the one loaded, and the tenants
   * reloaded when it moved: the bound on how long a lost announcement leaves a replica behind.
   */
  checkEveryMs?: number;
  /**
   * Where answers to admin writes sent with an `Idempotency-Key` are kept: Redis beside the keys
   * and tenants when the replicas share one, else this process's memory.
   */
  idempotencyStore?: IdempotencyStore;
  /** Counts requests refused for the address they come from (`openrouter_address_refused_requests_total`). */
  onAddressRefused?: (api: 'v1' | 'admin') => void;
}

/** The first answer to an admin write, as replayed to a retry with the same `Idempotency-Key`. */
export interface RecordedAnswer {
  status: number;
  body: unknown;
}

/**
 * The access layer: who a key is, where it sits in the organisation, what it may use and how
 * fast; and the admin operations that change it, each written to the audit log.
 */
export class AccessService {
  readonly keys: KeyDirectory;
  readonly tenants: TenantDirectory;
  /** Answers of admin writes sent with an `Idempotency-Key`, replayed to their retries. */
  readonly idempotency: IdempotentResponses<RecordedAnswer>;
  private readonly limiter: RateLimiter;
  private readonly defaults: GatewayConfig['access']['rateLimits'];
  /** Per public model id, the most output tokens it produces (`budgets.maxOutputTokens`). */
  private readonly modelMaxOutput: Readonly<Record<string, number>>;
  /** How uploaded audio counts (`budgets.audio`): its length when unreadable, its tokens a second. */
  private readonly audio: GatewayConfig['budgets']['audio'];
  /** The largest `max_tokens` the operator accepts (`access.requests.maxTokens`). */
  private readonly maxAskedTokens: number;
  /** The largest `n` and number of legacy prompts the operator accepts (`access.requests.maxN`, `.maxMessages`). */
  private readonly answerBounds: { n: number; prompts: number };
  /** The catalog's models and aliases by name: an image part counts for what the models a request names bill for it. */
  private readonly catalog: ReadonlyMap<string, GatewayConfig['models'][number]>;
  private readonly aliases: ReadonlyMap<string, GatewayConfig['routing']['aliases'][string]>;
  /** The configured providers and their residency labels, which policies are checked against. */
  private readonly policyProviders: PolicyProviders;
  private readonly guardrails: GatewayConfig['guardrails'];
  /** The address each request comes from, past the trusted proxies (`ingress.trustedProxies`). */
  readonly clients: ClientAddresses;
  /** Who may reach the admin API (`access.admin.allowedIps`); undefined: any address. */
  private readonly adminRanges: AddressRanges | undefined;
  /** When each key was last used (`last_used_at` in the admin API). */
  private readonly uses: KeyUses;
  /** Requests this process makes to its own API on a key's behalf (a batch's lines). */
  readonly internalCalls = new InternalCallCredential();
  /** The key of the end users' digests in their rate-limit counters' names (derived from `access.keyHashSecret`). */
  private readonly endUserCounterKey: Buffer;

  constructor(
    config: GatewayConfig,
    private readonly repository: AccessRepository,
    counters: CounterStore,
    private readonly logger: Logger,
    devKey: string | undefined,
    /** Counts rate-limit store failures (the `openrouter_rate_limit_store_failures_total` metric). */
    onStoreFailure: () => void = () => undefined,
    private readonly options: AccessServiceOptions = {},
  ) {
    this.reannouncer = new Reannouncer(() => repository.publish({ kind: 'tenants' }), 'tenant', options.reannounceDelaysMs ?? TENANT_REANNOUNCE_DELAYS_MS, logger);
    this.keyReannouncer = new Reannouncer(() => this.publishKeyNotices(), 'key', options.reannounceDelaysMs ?? TENANT_REANNOUNCE_DELAYS_MS, logger);
    const access = config.access;
    this.tenants = new TenantDirectory(access.orgs);
    this.idempotency = new IdempotentResponses<RecordedAnswer>(options.idempotencyStore ?? new MemoryIdempotencyStore(), access.keyHashSecret, {
      previousSecrets: access.previousKeyHashSecrets,
      // Never the answer itself: it may hold an issued key.
      onStoreFailure: (error) => this.logger.warn({ err: error }, 'idempotency store: an answer could not be stored or a key released; a retry with that key is answered 409 idempotency_key_in_use until its claim expires, then runs again'),
    });
    const extra: ApiKeyRecord[] = devKey ? [devRecord(hashApiKey(access.keyHashSecret, devKey), displayPrefix(devKey))] : [];
    this.keys = new KeyDirectory({ current: access.keyHashSecret, previous: access.previousKeyHashSecrets }, access.keys, extra, repository, access.keyCacheMs, undefined, (error) =>
      this.logger.warn({ err: error }, 'a key found under a previous access.keyHashSecret could not be re-indexed under the current one; it was accepted, and its next use tries again'),
    );
    this.defaults = access.rateLimits;
    this.endUserCounterKey = createHmac('sha256', access.keyHashSecret).update('end-user-limits').digest();
    this.modelMaxOutput = config.budgets.maxOutputTokens;
    this.audio = config.budgets.audio;
    this.maxAskedTokens = access.requests.maxTokens;
    this.answerBounds = { n: access.requests.maxN, prompts: access.requests.maxMessages };
    this.catalog = new Map(config.models.map((m) => [m.id, m]));
    this.aliases = new Map(Object.entries(config.routing.aliases));
    this.policyProviders = policyProvidersOf(config.providers, config.guardrails);
    this.guardrails = config.guardrails;
    this.clients = new ClientAddresses(config.ingress.trustedProxies);
    this.adminRanges = access.admin.allowedIps && new AddressRanges(access.admin.allowedIps);
    this.uses = new KeyUses(repository, logger, access.keyUseFlushMs);
    let lastWarning = 0;
    this.limiter = new RateLimiter(counters, access.rateLimits.failMode, (error) => {
      onStoreFailure();
      // One line per 10 s at most: an outage must not flood the log.
      if (Date.now() - lastWarning < 10_000) return;
      lastWarning = Date.now();
      this.logger.warn({ err: error, failMode: access.rateLimits.failMode }, 'rate-limit store unreachable');
    });
    repository.onChange((event) => {
      if (event.kind === 'tenants' || event.kind === 'resync') void this.reloadTenants();
    });
  }

  /**
   * Calls `listener` with a key changed anywhere (revoked, deleted, updated), or with `resync` when
   * this replica may have missed such notices (its pub/sub connection came back), after it forgot
   * the cached copies: `authenticate` then sees the change.
   */
  onKeyChange(listener: (change: KeyChange) => void): void {
    this.repository.onChange((event) => {
      if (event.kind === 'key' || event.kind === 'resync') listener(event);
    });
  }

  async start(): Promise<void> {
    await this.reloadTenants();
    this.watchTenants();
    this.uses.start();
  }

  /**
   * Reloads the tenants added at run time (true when it loaded). A call while a load is in flight
   * gets the next one: the load in flight may have read Redis before the change the caller heard of.
   */
  private readonly tenantLoads = new Coalesced(() => this.loadTenants());

  /** Reloads the tenants now (true when it loaded): for a caller that must not read a directory a moment behind another replica's write. */
  reloadTenants(): Promise<boolean> {
    return this.tenantLoads.run();
  }

  /** The store's tenant version read just before the tenants in force were (undefined: never loaded). */
  private loadedVersion: string | undefined;
  private checker: NodeJS.Timeout | undefined;
  private checking = false;
  /** A background announcement is pending (one at a time: an announcement says only "reload"). */
  /** Sends a tenant change's announcement again after it failed. */
  private readonly reannouncer: Reannouncer;
  /** Sends the key notices that could not be sent with their change again, in the background. */
  private readonly keyReannouncer: Reannouncer;
  /** Hashes of changed keys the other replicas have not been told of yet. */
  private readonly unannouncedKeys = new Set<string>();
  private closed = false;

  private async loadTenants(): Promise<boolean> {
    try {
      // The version first: a change written after it is read moves it, and the next check reloads.
      const version = await this.repository.tenantsVersion();
      this.tenants.replaceRuntime(await this.repository.listOrgs());
      this.loadedVersion = version;
      return true;
    } catch (error) {
      this.logger.warn({ err: error }, 'could not load tenants added at run time');
      return false;
    }
  }

  /**
   * Compares the store's tenant version every `checkEveryMs`: an announcement lost (a publish that
   * failed every time, a subscriber whose connection is half-open) delays a change here by that
   * much at most. A timer that never keeps the process alive.
   */
  private watchTenants(): void {
    if (this.checker || this.closed) return;
    this.checker = setInterval(() => void this.checkTenants(), this.options.checkEveryMs ?? TENANT_CHECK_INTERVAL_MS);
    this.checker.unref();
  }

  /** Reloads when the store's tenant version moved since the tenants in force were read, or nothing loaded yet. */
  private async checkTenants(): Promise<void> {
    if (this.checking) return;
    this.checking = true;
    try {
      const version = this.loadedVersion === undefined ? undefined : await this.repository.tenantsVersion();
      if (version === undefined || version !== this.loadedVersion) {
        if ((await this.reloadTenants()) && version !== undefined) this.logger.info({ version }, 'tenants changed without this replica hearing of it: reloaded');
      }
    } catch {
      // The store is away: its next reconnection reloads, or the next check.
    } finally {
      this.checking = false;
    }
  }

  /**
   * Where a key sits. A key can name an org, team or project this replica has not loaded yet (added
   * on another replica a moment ago, or while this one could not hear of it): reload once before
   * answering, and if it is still unknown, that is the gateway's state, not the caller's fault
   * (503). An issued key's org existed when it was issued, so an unknown one is such a gap, never
   * a bare tenant: placed without it, the key would be routed without the org's policy and limits.
   * A configured key may name an org declared nowhere (a bare tenant), placed as it is at no cost.
   */
  private async placeKey(record: ApiKeyRecord): Promise<TenantPlacement> {
    const place = (): TenantPlacement => {
      if (record.source === 'issued' && !this.tenants.org(record.orgId)) throw orgNotFound(record.orgId);
      return this.tenants.place(record.orgId, record.teamId || undefined, record.projectId || undefined);
    };
    try {
      return place();
    } catch {
      await this.reloadTenants();
      try {
        return place();
      } catch (error) {
        this.logger.warn({ keyId: record.id, org: record.orgId, team: record.teamId, project: record.projectId }, 'a key names an organisation, team or project this replica does not know');
        throw new GatewayError('unavailable', "The key's organisation, team or project cannot be resolved right now. Please retry.", { code: 'tenant_unavailable', cause: error });
      }
    }
  }

  /**
   * The request context of a presented key, or undefined when the key is unknown, revoked or
   * expired. A key its allow lists refuse from `address` is a 403 (`requireAllowedAddress`).
   */
  async authenticate(presented: string, requestId: string, traffic: TrafficAttributes, address: string | undefined): Promise<{ record: ApiKeyRecord; context: routerv1.RequestContext } | undefined> {
    const record = await this.keyOf(presented);
    if (!record) return undefined;
    await this.requireAllowedAddress(record, address);
    this.noteUse(record);
    return { record, context: await this.contextOf(record, requestId, traffic) };
  }

  /**
   * The allow lists a key's requests must pass, each level's that has one: its organisation's,
   * team's, project's and its own `policy.allowedIps`.
   */
  async networkOf(record: ApiKeyRecord): Promise<NetworkLevel[]> {
    const [org, team, project] = (await this.placeKey(record)).policies;
    const levels: Array<[NetworkLevel['level'], TenantPolicyConfig | undefined]> = [['org', org], ['team', team], ['project', project], ['key', record.policy]];
    return levels.flatMap(([level, policy]) => (policy?.allowedIps ? [{ level, ranges: this.rangesOf(policy.allowedIps) }] : []));
  }

  /**
   * The first level of a key (its organisation, team, project, then itself) whose policy says
   * `storeResponses: false`: the Responses API keeps nothing of its requests. Undefined: storing is
   * as each request asks.
   */
  async responsesUnstoredBy(record: ApiKeyRecord): Promise<NetworkLevel['level'] | undefined> {
    const [org, team, project] = (await this.placeKey(record)).policies;
    const levels: Array<[NetworkLevel['level'], TenantPolicyConfig | undefined]> = [['org', org], ['team', team], ['project', project], ['key', record.policy]];
    return levels.find(([, policy]) => policy?.storeResponses === false)?.[0];
  }

  /** A policy's list, compiled once: tenants and cached keys keep their policy objects between requests. */
  private readonly compiledRanges = new WeakMap<readonly string[], AddressRanges>();
  private rangesOf(list: readonly string[]): AddressRanges {
    let ranges = this.compiledRanges.get(list);
    if (!ranges) this.compiledRanges.set(list, (ranges = new AddressRanges(list)));
    return ranges;
  }

  /**
   * Refuses (403 `ip_not_allowed`) a key used from an address one of its allow lists does not
   * hold, or from an address that cannot be told when it has any. Checked before the request is
   * charged to any limit: a leaked key tried from elsewhere does not use up its owner's.
   */
  async requireAllowedAddress(record: ApiKeyRecord, address: string | undefined): Promise<void> {
    const refusing = refusingLevel(await this.networkOf(record), address);
    if (!refusing) return;
    this.options.onAddressRefused?.('v1');
    const where = { org: "its organisation's", team: "its team's", project: "its project's", key: 'its own' }[refusing.level];
    throw new GatewayError('permission_denied', `This API key may not be used from ${address === undefined ? 'an address that cannot be determined' : `the address ${address}`}: it is not in ${where} allowed_ips.`, { code: 'ip_not_allowed' });
  }

  /** A request authenticated with this key (valid, and from an address it may be used from): its `last_used_at`. */
  noteUse(record: ApiKeyRecord): void {
    this.uses.note(record.id);
  }

  /** When each of these keys was last used (ms since the epoch), as far as recorded; throws when the store cannot be read. */
  keysLastUsed(ids: readonly string[]): Promise<Map<string, number>> {
    return this.uses.lastUsed(ids);
  }

  /** Refuses (403 `ip_not_allowed`) an admin call from an address `access.admin.allowedIps` does not hold. */
  requireAdminAddress(address: string | undefined): void {
    if (!this.adminRanges || (address !== undefined && this.adminRanges.has(address))) return;
    this.options.onAddressRefused?.('admin');
    throw new GatewayError('permission_denied', `The admin API may not be called from ${address === undefined ? 'an address that cannot be determined' : `the address ${address}`}: it is not in access.admin.allowedIps.`, { code: 'ip_not_allowed' });
  }

  /** The record of a presented key, or undefined when the key is unknown, revoked or expired. */
  async keyOf(presented: string): Promise<ApiKeyRecord | undefined> {
    try {
      return await this.keys.authenticate(presented);
    } catch (error) {
      this.logger.warn({ err: error }, 'key store unreachable');
      throw new GatewayError('unavailable', 'API keys cannot be checked right now. Please retry.', { code: 'key_store_unavailable' });
    }
  }

  /**
   * The key an internal call (`internalCalls`) is made for, when the header is this process's and
   * the key is still active (not revoked or expired since); undefined otherwise.
   */
  async keyOfInternalCall(header: string): Promise<ApiKeyRecord | undefined> {
    const id = this.internalCalls.keyIdOf(header);
    if (id === undefined) return undefined;
    try {
      return await this.keys.byId(id);
    } catch (error) {
      this.logger.warn({ err: error }, 'key store unreachable');
      throw new GatewayError('unavailable', 'API keys cannot be checked right now. Please retry.', { code: 'key_store_unavailable' });
    }
  }

  /** A known key's request context: its tenant, with the request's traffic attributes. */
  async contextOf(record: ApiKeyRecord, requestId: string, traffic: TrafficAttributes): Promise<routerv1.RequestContext> {
    const placement = await this.placeKey(record);
    return {
      requestId,
      orgId: record.orgId,
      projectId: placement.projectId,
      teamId: placement.teamId,
      appId: record.appId || traffic.app || '',
      costCenter: placement.costCenter,
      keyId: record.id,
      endUser: traffic.endUser ?? '',
      tags: { ...(traffic.tags ?? {}), ...record.tags },
      allowedModels: record.allowedModels,
      policy: effectivePolicy([...placement.policies, record.policy], this.guardrails),
    };
  }

  /**
   * The context a route explanation is computed under, within the actor's scope: an issued key's
   * (`key`: its allowed models, its tenants' and its own policies), else a tenant's (`org`, `team`,
   * `project`: their policies; by default the actor's own scope). Another scope's key or tenant is 404.
   */
  async explainContext(actor: Actor, requestId: string, query: { key?: string | undefined; org?: string | undefined; team?: string | undefined; project?: string | undefined }): Promise<routerv1.RequestContext> {
    if (query.key !== undefined) return this.contextOf(await this.visibleKey(actor, query.key), requestId, {});
    requireFilterInScope(actor, query);
    const org = query.org ?? actor.org ?? 'default';
    const project = query.project ?? actor.project;
    const placement = await this.withTenantsOf(() => this.tenants.place(org, query.team, project));
    return {
      requestId,
      orgId: org,
      projectId: placement.projectId,
      teamId: placement.teamId,
      appId: '',
      costCenter: placement.costCenter,
      keyId: actor.id,
      endUser: '',
      tags: {},
      allowedModels: [],
      policy: effectivePolicy(placement.policies, this.guardrails),
    };
  }

  /**
   * Charges the request to every rate limit that applies, its token limits with its prompt and the
   * most output it may get (settled to the real count when it ends); throws a 429 when one is exhausted.
   */
  async admit(record: ApiKeyRecord, context: routerv1.RequestContext, model: string, body: unknown, endpoint?: string): Promise<Admission> {
    const limits = this.applicableLimits(record, context, model);
    return this.limiter.admit(limits, limits.some((l) => l.kind === 'tokens') ? this.tokenDemand(model, body, endpoint) : NO_TOKENS);
  }

  /**
   * The tokens a request may spend: its prompt (its image parts at `imageCost`), and for each of
   * its answers what it asks for at most (`askedOutputTokens`), else its model's
   * `budgets.maxOutputTokens` (by the name it asks for), else
   * `access.rateLimits.defaultMaxOutputTokens` — the budget reservation's notion of a request's
   * output, with the rate limits' own default. An Audio API request asks for no token limit: its
   * output is its model's maximum, its prompt a transcription's audio at `budgets.audio.tokensPerSecond`
   * (a file whose length is not read: `budgets.audio.maxSeconds`) and its `prompt` hint, or the
   * text a speech speaks. Nor does an image generation or edit: each of its `n` images is its
   * model's maximum, and an edit's uploaded images count in its prompt as a chat's image parts do.
   */
  tokenDemand(model: string, body: unknown, endpoint?: string): TokenDemand {
    const request = typeof body === 'object' && body !== null && !Array.isArray(body) ? (body as Record<string, unknown>) : undefined;
    // Own entries only: a request naming `constructor` names no model.
    const modelMax = (Object.hasOwn(this.modelMaxOutput, model) ? this.modelMaxOutput[model] : undefined) ?? this.defaults.defaultMaxOutputTokens;
    // Counted by what it sends: its uploaded file is never read as text, its `prompt` is no legacy completion's.
    const audio = request && audioDemandOf(endpoint, request, this.audio);
    if (audio) return { prompt: audio.kind === 'transcription' ? audio.audioTokens + audio.textTokens : audio.textTokens, output: modelMax, outputAsked: false };
    const prompt = countPromptTokens(body, () => this.imageCost(model));
    // Not a JSON object: refused with a 400 once admitted, and given back.
    if (!request) return { prompt, output: 0, outputAsked: true };
    if (makesImages(endpoint)) {
      // Each image at its model's maximum: an image generation or edit asks for no token limit.
      return { prompt, output: modelMax * imagesAsked(request), outputAsked: false };
    }
    // A maximum above the operator's bound is refused with a 400 once admitted (and given back):
    // until then it counts as none, so the request is not refused as too large in its place.
    const stated = askedOutputTokens(request);
    const asked = stated !== undefined && stated <= this.maxAskedTokens ? stated : undefined;
    const perAnswer = asked ?? modelMax;
    // Likewise an `n` or a number of prompts above the operator's bounds counts as one.
    return { prompt, output: perAnswer * outputAnswers(request, this.answerBounds), outputAsked: asked !== undefined };
  }

  /**
   * What an image part counts for on a request naming `model`, as its budget reservation counts it:
   * the largest `imageTokens` of the models the name stands for (an alias: its members; `auto` or
   * an unknown id: every model). Counted at a flat default, an image could pass a token limit with
   * a fraction of what its provider bills for it.
   */
  private imageCost(model: string): ImageCost {
    return imageCostOf(membersOf(model, this.catalog, this.aliases) ?? [...this.catalog.keys()], this.catalog);
  }

  /** Charges a request that reaches no provider (a token count) to its request limits only. */
  async admitRequest(record: ApiKeyRecord, context: routerv1.RequestContext, model: string): Promise<Admission> {
    return this.limiter.admit(
      this.applicableLimits(record, context, model).filter((l) => l.kind === 'requests'),
      NO_TOKENS,
    );
  }

  /** Each end user's limits in a key's traffic: its project's, team's or organisation's `endUserLimits`, else `access.rateLimits.endUser` (both unset: none). */
  endUserLimits(record: ApiKeyRecord): Limits {
    return this.endUserLimitsAt(this.tenants.place(record.orgId, record.teamId || undefined, record.projectId || undefined));
  }

  private endUserLimitsAt(placement: TenantPlacement): Limits {
    return effectiveLimits(placement.endUserLimits ?? {}, this.defaults.endUser);
  }

  applicableLimits(record: ApiKeyRecord, context: routerv1.RequestContext, model: string): ApplicableLimit[] {
    const placement = this.tenants.place(record.orgId, record.teamId || undefined, record.projectId || undefined);
    const scopes: Array<[ApplicableLimit['scope'], string, Limits]> = [['key', record.id, effectiveLimits(record.limits, this.defaults.key)]];
    if (context.projectId) scopes.push(['project', `${context.orgId}/${context.projectId}`, effectiveLimits(placement.projectLimits, this.defaults.project)]);
    if (context.teamId) scopes.push(['team', `${context.orgId}/${context.teamId}`, effectiveLimits(placement.teamLimits, this.defaults.team)]);
    // The organisation's limit holds whatever its keys, teams and projects have of their own.
    scopes.push(['org', context.orgId, effectiveLimits(placement.orgLimits, this.defaults.org)]);
    // Own entries only: a request naming `constructor` names no model with limits.
    const modelLimits = Object.hasOwn(this.defaults.models, model) ? this.defaults.models[model] : undefined;
    if (modelLimits) scopes.push(['model', model, modelLimits]);
    const limits: ApplicableLimit[] = [];
    for (const [scope, id, l] of scopes) {
      if (l.rpm) limits.push({ scope, id, kind: 'requests', perMinute: l.rpm });
      if (l.tpm) limits.push({ scope, id, kind: 'tokens', perMinute: l.tpm });
    }
    // Each end user within the project's traffic (the team's, for a key of no project; the
    // organisation's, for a key of neither): one user of an application cannot use up what the
    // application has for all of them, and each level's limits count its own traffic.
    const endUser = this.endUserLimitsAt(placement);
    if (context.endUser && (endUser.rpm || endUser.tpm)) {
      const { orgId, teamId, projectId } = context;
      const within = projectId ? `project ${orgId}/${projectId}` : teamId ? `team ${orgId}/${teamId}` : `organisation ${orgId}`;
      // No identifier holds a colon: a team's counters are never a project's.
      const scope = projectId ? `${orgId}/${projectId}` : teamId ? `${orgId}/team:${teamId}` : `${orgId}/`;
      // A keyed digest: the id a client sends is free text of up to 256 characters, often an e-mail
      // address, and a plain hash in a counter's name would let anyone reading Redis test guesses.
      const id = `${scope}/${createHmac('sha256', this.endUserCounterKey).update(context.endUser).digest('hex').slice(0, 32)}`;
      const shown = `the end user (x-openrouter-user or user) in ${within}`;
      if (endUser.rpm) limits.push({ scope: 'end_user', id, kind: 'requests', perMinute: endUser.rpm, shown });
      if (endUser.tpm) limits.push({ scope: 'end_user', id, kind: 'tokens', perMinute: endUser.tpm, shown });
    }
    return limits;
  }

  // ── admin operations ──────────────────────────────────────────────────────────

  async issueKey(actor: Actor, input: IssueKeyInput): Promise<{ key: string; record: PublicApiKey }> {
    // A project-scoped key issues keys for its own project; naming none means that project.
    if (actor.project !== undefined) input = { ...input, project: input.project ?? actor.project };
    requireInScope(actor, input.org, input.project);
    this.requireNameable(input.allowedModels);
    this.requirePolicy(input.policy);
    const placement = await this.withTenantsOf(() => {
      const placed = this.tenants.place(input.org, input.team, input.project);
      this.orgOrNotFound(input.org);
      return placed;
    });
    if (input.expiresAt !== undefined && Date.parse(input.expiresAt) <= Date.now()) {
      throw new GatewayError('bad_request', 'expires_at must be in the future.', { param: 'expires_at' });
    }
    const key = generateApiKey();
    const hash = this.keys.hash(key);
    const record: ApiKeyRecord = {
      id: `key_${hash.slice(0, 16)}`,
      hash,
      prefix: displayPrefix(key),
      name: input.name,
      orgId: placement.orgId,
      teamId: placement.teamId,
      projectId: placement.projectId,
      appId: input.app ?? '',
      allowedModels: input.allowedModels,
      ...(input.policy && { policy: input.policy }),
      limits: input.limits,
      metadata: input.metadata,
      tags: input.tags,
      createdAt: new Date().toISOString(),
      ...(input.expiresAt ? { expiresAt: new Date(input.expiresAt).toISOString() } : {}),
      ...this.keys.formerHashes(key),
      source: 'issued',
    };
    // The key and its audit entry are written together: no issued key goes unaudited.
    const entry = this.auditEntry(actor, 'key.issue', record.id, { org: record.orgId, team: record.teamId, project: record.projectId, prefix: record.prefix });
    await this.repository.saveKey(record, entry);
    this.logAudit(entry);
    return { key, record: publicView(record) };
  }

  /**
   * Refuses an `allowed_models` entry no request can match. The router compares the entries with
   * the name a request asks for (a model id, an alias or `auto`, else the request is refused) and
   * with the ids of the models that name stands for: any other entry allows nothing, and a typo
   * would leave the key unable to use the model meant.
   */
  private requireNameable(allowedModels: readonly string[]): void {
    allowedModels.forEach((name, i) => {
      if (this.catalog.has(name) || this.aliases.has(name) || name === AUTO_MODEL) return;
      const known = [...new Set([...this.catalog.keys(), ...this.aliases.keys(), AUTO_MODEL])];
      throw new GatewayError('bad_request', `Invalid allowed_models[${i}]: "${name}" is not a configured model id, alias or "${AUTO_MODEL}"; known names include ${nearest(name, known)}.`, {
        param: `allowed_models[${i}]`,
        code: 'invalid_value',
      });
    });
  }

  /**
   * Refuses a policy that cannot mean what it says: a provider id that is not configured, or a
   * residency label no provider has (a typo would leave the tenant with no deployment at all), as
   * the configuration's policies are refused at start-up. Named by its admin API path.
   */
  private requirePolicy(policy: TenantPolicyConfig | null | undefined): void {
    const [issue] = tenantPolicyIssues(policy ?? undefined, this.policyProviders, ['policy']);
    if (!issue) return;
    const param = issue.path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i === 0 ? '' : '.'}${p === 'excludeProviders' ? 'exclude_providers' : p}`)).join('');
    throw new GatewayError('bad_request', `Invalid ${param}: ${issue.message}.`, { param, code: 'invalid_value' });
  }

  /**
   * Revokes a key. Revoked and audited in one atomic write, only if it was not revoked yet: of
   * concurrent revocations (on any replicas) one writes, the others answer the key as it wrote
   * it; and a retry after a failure further on (the notice) finds the revocation recorded. Every
   * replica is told each time, in case it missed an earlier notice. Written by the key's id, not
   * the hash read here: a rotation in between (on any replica) moves the key to another hash, and
   * the revocation is of the key, whatever its secret has become.
   */
  async revokeKey(actor: Actor, id: string): Promise<PublicApiKey> {
    const found = await this.visibleKey(actor, id);
    const entry = this.auditEntry(actor, 'key.revoke', id, { org: found.orgId, team: found.teamId, project: found.projectId });
    const outcome = found.revokedAt ? { record: found, revoked: false } : await this.repository.revokeKey(id, new Date().toISOString(), entry);
    if (!outcome) throw keyNotFound(id);
    if (outcome.revoked) this.logAudit(entry);
    // As read and as revoked: it may have been rotated, or re-indexed under the current hash secret, in between.
    await this.announceKey(found, outcome.record);
    return publicView(outcome.record);
  }

  /**
   * Changes an issued key in place (same id, same secret): the fields given, validated as at issue.
   * Changed and audited (`key.update`, naming the fields) in one atomic write; a revoked key is
   * refused (409 `key_revoked`). Every replica forgets its cached copy at once.
   */
  async updateKey(actor: Actor, id: string, input: UpdateKeyInput): Promise<PublicApiKey> {
    const found = await this.visibleKey(actor, id);
    if (found.revokedAt !== undefined) throw keyRevoked(id, 'changed');
    if (input.allowedModels !== undefined) this.requireNameable(input.allowedModels);
    this.requirePolicy(input.policy);
    if (input.expiresAt !== undefined && input.expiresAt !== null && Date.parse(input.expiresAt) <= Date.now()) {
      throw new GatewayError('bad_request', 'expires_at must be in the future (or null to remove the expiry).', { param: 'expires_at', code: 'invalid_value' });
    }
    const fields = KEY_FIELDS.filter(([field]) => input[field] !== undefined).map(([, name]) => name);
    if (fields.length === 0) {
      throw new GatewayError('bad_request', `Nothing to change: give at least one of ${KEY_FIELDS.map(([, name]) => name).join(', ')}.`, { code: 'invalid_value' });
    }
    // Which fields changed, never their values: metadata or a name may be sensitive, and the key's own view shows them.
    const entry = this.auditEntry(actor, 'key.update', id, { org: found.orgId, team: found.teamId, project: found.projectId, fields });
    const written = await this.repository.updateKey(
      id,
      (stored) => {
        if (stored.revokedAt !== undefined) throw keyRevoked(id, 'changed');
        return withKeyChanges(stored, input);
      },
      entry,
    );
    if (!written) throw keyNotFound(id);
    this.logAudit(entry);
    await this.announceKey(found, written);
    return publicView(written);
  }

  /**
   * Gives an issued key a new secret under the same id (its usage, key budgets, rate limits and
   * audit trail go on); the earlier secret keeps working for `graceSeconds` (0: refused at once).
   * A secret an earlier rotation's grace still accepted is refused from now on: two at most.
   * Rotated and audited (`key.rotate`) in one atomic write; every replica forgets the key at once.
   * Only while the key still has the secret read here: a rotation that another one (on any
   * replica) overtook is refused (409 `key_changed`), as rotating again on top of the winner would
   * end the grace of the secret its clients hold and audit it as replacing that one.
   */
  async rotateKey(actor: Actor, id: string, graceSeconds: number): Promise<{ key: string; record: PublicApiKey }> {
    const found = await this.visibleKey(actor, id);
    if (found.revokedAt !== undefined) throw keyRevoked(id, 'rotated');
    // Its new secret would never be accepted: the key stays expired. Extending it comes first.
    if (found.expiresAt !== undefined && Date.parse(found.expiresAt) <= Date.now()) throw keyExpired(id, found.expiresAt);
    const key = generateApiKey();
    const hash = this.keys.hash(key);
    const graceMs = graceSeconds * 1000;
    // `previous_prefix` is the stored secret's: the write below goes ahead only while it is the one read.
    const entry = this.auditEntry(actor, 'key.rotate', id, { org: found.orgId, team: found.teamId, project: found.projectId, prefix: displayPrefix(key), previous_prefix: found.prefix, grace_seconds: graceSeconds });
    let replaced: ApiKeyRecord = found;
    const written = await this.repository.rotateKey(
      id,
      (stored) => {
        if (stored.revokedAt !== undefined) throw keyRevoked(id, 'rotated');
        if (!sameSecret(stored, found)) throw keyChanged(id);
        replaced = stored;
        const { previousHash: _hash, previousExpiresAt: _until, formerHashes: former, previousFormerHashes: _former, ...rest } = stored;
        // The replaced secret stays accepted for the grace under every hash secret it was known by (a hash secret being rotated too).
        const grace = graceMs > 0 ? { previousHash: stored.hash, previousExpiresAt: new Date(Date.now() + graceMs).toISOString(), ...(former?.length ? { previousFormerHashes: former } : {}) } : {};
        return { ...rest, hash, prefix: displayPrefix(key), ...grace, ...this.keys.formerHashes(key) };
      },
      graceMs,
      entry,
    );
    if (!written) throw keyNotFound(id);
    this.logAudit(entry);
    // The secret replaced (cached as the record before the rotation) and the one an earlier grace accepted.
    await this.announceKey(found, replaced);
    return { key, record: publicView(written) };
  }

  /**
   * Drops a changed key's cached copies here, then tells every replica: under each of its hashes
   * (a rotation's earlier one, those under earlier hash secrets), of each version of it given.
   */
  private async announceKey(...records: ApiKeyRecord[]): Promise<void> {
    const hashes = [...new Set(records.flatMap(hashesOf))];
    for (const hash of hashes) this.keys.forget(hash);
    for (const hash of hashes) this.unannouncedKeys.add(hash);
    // The change is stored: its answer is that it was made, whatever the notice does. A 503 here
    // would have a retry change the key again (a second rotation ends the first one's grace).
    // Replicas not told drop their cached copy within `keyCacheMs` in any case.
    try {
      await this.publishKeyNotices();
    } catch (error) {
      this.logger.warn({ err: error }, 'a key change was stored but could not be announced to the other replicas: announcing it again in the background');
      this.keyReannouncer.start();
    }
  }

  private async publishKeyNotices(): Promise<void> {
    for (const hash of [...this.unannouncedKeys]) {
      await this.repository.publish({ kind: 'key', hash });
      this.unannouncedKeys.delete(hash);
    }
  }

  /**
   * One page of issued keys, oldest first: `limit` keys after the key `after` (an id from an
   * earlier page). The actor's scope narrows the filter; the store reads that page only.
   */
  async listKeys(actor: Actor, query: KeyListFilter & { limit: number; after?: string | undefined }): Promise<{ data: PublicApiKey[]; hasMore: boolean }> {
    requireFilterInScope(actor, query);
    const filter = { org: query.org ?? actor.org, project: query.project ?? actor.project };
    const after = query.after === undefined ? undefined : await this.listCursor(actor, filter, query.after);
    const page = await this.repository.listKeys({ ...filter, limit: query.limit, after });
    return { data: page.records.filter((k) => inScope(actor, k.orgId, k.projectId)).map(publicView), hasMore: page.hasMore };
  }

  /** The key a page starts after: one of the same list, else the cursor is not one this list gave. */
  private async listCursor(actor: Actor, filter: KeyListFilter, id: string): Promise<ApiKeyRecord> {
    const record = await this.repository.keyById(id);
    if (record && inScope(actor, record.orgId, record.projectId) && matchesFilter(record, filter)) return record;
    throw new GatewayError('bad_request', `"after" must be the id of a key in this list; "${id}" is not.`, { param: 'after', code: 'invalid_value' });
  }

  async getKey(actor: Actor, id: string): Promise<PublicApiKey> {
    return publicView(await this.visibleKey(actor, id));
  }

  /**
   * Whether the key's requests would be admitted from `address`, by its allow lists and its
   * tenants' as they stand: the level whose list refuses it (undefined: none), and every list.
   */
  async networkCheck(actor: Actor, id: string, address: string): Promise<{ refusing: NetworkLevel | undefined; levels: NetworkLevel[] }> {
    const levels = await this.networkOf(await this.visibleKey(actor, id));
    return { refusing: refusingLevel(levels, unmapped(address)), levels };
  }

  /** An issued key the actor may see; another scope's key is answered like a missing one. */
  private async visibleKey(actor: Actor, id: string): Promise<ApiKeyRecord> {
    const record = await this.repository.keyById(id);
    if (!record || !inScope(actor, record.orgId, record.projectId)) throw keyNotFound(id);
    return record;
  }

  async addOrg(actor: Actor, entry: TenantEntry): Promise<OrgConfig> {
    if (isScoped(actor)) throw scopeTooNarrow(actor, 'create organisations');
    if (this.tenants.org(entry.id)) throw alreadyExists('organisation', entry.id);
    this.requirePolicy(entry.policy);
    return this.changeOrg(actor, 'org.create', entry.id, { org: entry.id }, (stored) => {
      if (stored) throw alreadyExists('organisation', entry.id);
      return { id: entry.id, ...named(entry), limits: entry.limits ?? {}, teams: [] };
    });
  }

  /** Returns the new team as the write stored it. */
  async addTeam(actor: Actor, orgId: string, entry: TenantEntry): Promise<TeamConfig> {
    this.requireTenantWriter(actor, orgId, 'add teams');
    this.requirePolicy(entry.policy);
    const org = await this.withTenantsOf(() => this.orgOrNotFound(orgId));
    if (org.teams.some((t) => t.id === entry.id)) throw alreadyExists('team', entry.id);
    const team: TeamConfig = { id: entry.id, ...named(entry), limits: entry.limits ?? {}, projects: [] };
    const saved = await this.changeOrg(actor, 'team.create', entry.id, { org: orgId, team: entry.id }, (stored = { id: orgId, limits: {}, teams: [] }) => {
      if (stored.teams.some((t) => t.id === entry.id)) throw alreadyExists('team', entry.id);
      return { ...stored, teams: [...stored.teams, team] };
    });
    return saved.teams.find((t) => t.id === entry.id) ?? team;
  }

  /** Returns the new project as the write stored it. */
  async addProject(actor: Actor, orgId: string, teamId: string, entry: TenantEntry): Promise<ProjectConfig> {
    this.requireTenantWriter(actor, orgId, 'add projects');
    this.requirePolicy(entry.policy);
    const { org, team } = await this.withTenantsOf(() => {
      const known = this.orgOrNotFound(orgId);
      const found = known.teams.find((t) => t.id === teamId);
      if (!found) throw new GatewayError('not_found', `The team "${teamId}" does not exist in "${orgId}".`, { param: 'team', code: 'not_found' });
      return { org: known, team: found };
    });
    if (org.teams.some((t) => t.projects.some((p) => p.id === entry.id))) throw alreadyExists('project', entry.id);
    const project: ProjectConfig = { id: entry.id, ...named(entry), limits: entry.limits ?? {} };
    const saved = await this.changeOrg(actor, 'project.create', entry.id, { org: orgId, team: teamId, project: entry.id }, (stored = { id: orgId, limits: {}, teams: [] }) => {
      if (stored.teams.some((t) => t.projects.some((p) => p.id === entry.id))) throw alreadyExists('project', entry.id);
      // A team from the configuration gets its run-time part on its first project.
      const teams = stored.teams.some((t) => t.id === teamId) ? stored.teams : [...stored.teams, { ...team, projects: [] }];
      return { ...stored, teams: teams.map((t) => (t.id === teamId ? { ...t, projects: [...t.projects, project] } : t)) };
    });
    return saved.teams.find((t) => t.id === teamId)?.projects.find((p) => p.id === entry.id) ?? project;
  }

  /**
   * Changes an organisation added through the API (its name, cost centre, limits); an org-scoped
   * key may change its own. Answers it as the write stored it.
   */
  async updateOrg(actor: Actor, orgId: string, update: TenantUpdate): Promise<OrgConfig> {
    this.requireTenantWriter(actor, orgId, 'change organisations');
    this.requirePolicy(update.policy);
    await this.withTenantsOf(() => this.orgOrNotFound(orgId));
    if (this.tenants.declares(orgId)) throw declaredInConfiguration('organisation', orgId);
    const changes: TenantChanges = {};
    return this.changeOrg(actor, 'org.update', orgId, { org: orgId, changes }, (stored) => {
      if (!stored) throw orgNotFound(orgId);
      return updated(stored, update, changes);
    });
  }

  /** Changes a team added through the API; answers it as the write stored it. */
  async updateTeam(actor: Actor, orgId: string, teamId: string, update: TenantUpdate): Promise<TeamConfig> {
    this.requireTenantWriter(actor, orgId, 'change teams');
    this.requirePolicy(update.policy);
    await this.withTenantsOf(() => this.teamOrNotFound(orgId, teamId));
    if (this.tenants.declares(orgId, teamId)) throw declaredInConfiguration('team', teamId);
    const changes: TenantChanges = {};
    const saved = await this.changeOrg(actor, 'team.update', teamId, { org: orgId, team: teamId, changes }, (stored) => {
      const team = stored?.teams.find((t) => t.id === teamId);
      if (!stored || !team) throw teamNotFound(orgId, teamId);
      return { ...stored, teams: stored.teams.map((t) => (t === team ? updated(t, update, changes) : t)) };
    });
    const team = saved.teams.find((t) => t.id === teamId);
    if (!team) throw teamNotFound(orgId, teamId);
    return team;
  }

  /** Changes a project added through the API (also one in a configured team); answers it as the write stored it. */
  async updateProject(actor: Actor, orgId: string, teamId: string, projectId: string, update: TenantUpdate): Promise<ProjectConfig> {
    this.requireTenantWriter(actor, orgId, 'change projects');
    this.requirePolicy(update.policy);
    await this.withTenantsOf(() => {
      if (!this.teamOrNotFound(orgId, teamId).projects.some((p) => p.id === projectId)) throw projectNotFound(orgId, teamId, projectId);
    });
    if (this.tenants.declares(orgId, teamId, projectId)) throw declaredInConfiguration('project', projectId);
    const changes: TenantChanges = {};
    const saved = await this.changeOrg(actor, 'project.update', projectId, { org: orgId, team: teamId, project: projectId, changes }, (stored) => {
      const project = stored?.teams.find((t) => t.id === teamId)?.projects.find((p) => p.id === projectId);
      if (!stored || !project) throw projectNotFound(orgId, teamId, projectId);
      const teams = stored.teams.map((t) => (t.id === teamId ? { ...t, projects: t.projects.map((p) => (p === project ? updated(p, update, changes) : p)) } : t));
      return { ...stored, teams };
    });
    const project = saved.teams.find((t) => t.id === teamId)?.projects.find((p) => p.id === projectId);
    if (!project) throw projectNotFound(orgId, teamId, projectId);
    return project;
  }

  private teamOrNotFound(orgId: string, teamId: string): TeamConfig {
    const team = this.orgOrNotFound(orgId).teams.find((t) => t.id === teamId);
    if (!team) throw teamNotFound(orgId, teamId);
    return team;
  }

  /** Teams and projects are added by unscoped keys, or by an org-scoped key inside its own org. */
  private requireTenantWriter(actor: Actor, orgId: string, what: string): void {
    if (actor.project !== undefined) throw scopeTooNarrow(actor, what);
    requireInScope(actor, orgId);
  }

  private orgOrNotFound(orgId: string): OrgConfig {
    const org = this.tenants.org(orgId);
    if (!org) throw new GatewayError('not_found', `The organisation "${orgId}" does not exist.`, { param: 'org', code: 'not_found' });
    return org;
  }

  /**
   * Runs a look-up in the tenant directory; if it answers 404, reloads the tenants once and runs it
   * again. A tenant added a moment ago on another replica may not be announced here yet (pub/sub
   * is not instant): without this, an admin write that follows its creation on another replica
   * could 404.
   */
  private async withTenantsOf<T>(lookUp: () => T): Promise<T> {
    try {
      return lookUp();
    } catch (error) {
      if (!(error instanceof GatewayError) || error.kind !== 'not_found') throw error;
      await this.reloadTenants();
      return lookUp();
    }
  }

  /**
   * Changes the run-time part of an org (configuration keeps the rest), then tells every replica.
   * Resolves to the org's run-time part as written, not as the directory holds it after a reload:
   * the reload may fail (the change is stored all the same) or show a later change. Once written,
   * the change stands: a failed reload is done again at the next check (or reconnection), a failed
   * announcement is sent again in the background.
   */
  private async changeOrg(actor: Actor, action: AuditAction, target: string, concerned: { org: string; team?: string; project?: string; changes?: TenantChanges }, change: (stored: OrgConfig | undefined) => OrgConfig): Promise<OrgConfig> {
    // The change and its audit entry are one write: no tenant is added unaudited.
    const entry = this.auditEntry(actor, action, target, concerned);
    const written = await this.repository.updateOrg(concerned.org, change, entry);
    this.logAudit(entry);
    // This replica first (its next request sees the change), then every other one.
    await this.reloadTenants();
    await this.announceTenants(entry);
    return written;
  }

  private async announceTenants(entry: AuditEntry): Promise<void> {
    try {
      await this.repository.publish({ kind: 'tenants' });
    } catch (error) {
      this.logger.warn({ err: error, target: entry.target }, 'a tenant change was stored but could not be announced to the other replicas: announcing it again in the background');
      this.reannouncer.start();
    }
  }

  /**
   * The newest `limit` changes the actor may see. A scoped key sees the entries that name its org
   * (and project) in their details; entries naming none (written before they did) are not shown.
   */
  async listAudit(actor: Actor, limit: number): Promise<NumberedAuditEntry[]> {
    return (await this.auditPage(actor, { limit })).data;
  }

  /**
   * One page of the audit log the actor may see, newest first: the `limit` entries matching the
   * query just older than `after` (from the newest when neither cursor is given), or just newer than
   * `before`. The log is read in batches from the cursor on, and at most {@link AUDIT_SCAN} entries
   * are examined: a page that stops there before it knows whether more match has what it found (maybe
   * nothing) and `hasMore` set, and its edge in the direction read (`lastId` older, `firstId` newer) is the last entry
   * examined, where the next page goes on. A scoped key sees only the entries naming its org (and
   * project) in `details`; its filters may narrow that, never widen it (404).
   */
  async auditPage(actor: Actor, query: AuditQuery): Promise<AuditPage> {
    requireFilterInScope(actor, query);
    // The actor's scope is a filter the query can narrow, never widen.
    const filter = { ...query, org: query.org ?? actor.org, project: query.project ?? actor.project };
    const matches = auditMatcher(filter);
    const filtered = Boolean(filter.actions?.length) || [filter.actor, filter.target, filter.since, filter.until, filter.org, filter.project].some((f) => f !== undefined);
    const direction = query.before !== undefined ? 'newer' : 'older';
    let from = query.before ?? query.after;
    const found: NumberedAuditEntry[] = [];
    let examined = 0;
    let end = false;
    // Reads until one entry more than the page (so `hasMore` is known), the log's end, or the bound.
    while (found.length <= query.limit && !end && examined < AUDIT_SCAN) {
      const want = filtered ? AUDIT_BATCH : query.limit + 1 - found.length;
      const batch = await this.repository.readAudit({ from, direction, count: Math.min(want, AUDIT_SCAN - examined) });
      examined += batch.examined;
      from = batch.lastId ?? from;
      found.push(...batch.entries.filter(matches));
      end = batch.end || batch.examined === 0;
    }
    const page = found.slice(0, query.limit);
    const hasMore = found.length > query.limit || !end;
    // Stopped at the bound: the next page goes on from the last entry examined, not the last shown.
    const resume = found.length <= query.limit && !end ? from : undefined;
    const data = direction === 'older' ? page : page.reverse();
    return {
      data,
      firstId: direction === 'newer' && resume !== undefined ? resume : data[0]?.id,
      lastId: direction === 'older' && resume !== undefined ? resume : data.at(-1)?.id,
      hasMore,
    };
  }

  private auditEntry(actor: Actor, action: AuditAction, target: string, details: Record<string, unknown>): AuditEntry {
    return auditEntryOf(actor, action, target, details);
  }

  private logAudit(entry: AuditEntry): void {
    this.logger.info({ audit: entry }, 'admin change');
  }

  /** Stops the version checks and the announcements still to send (the other replicas' checks catch up). */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.checker);
    this.reannouncer.close();
    this.keyReannouncer.close();
    // The uses seen since the last write, before the store goes.
    await this.uses.close();
    await this.repository.close();
  }
}

/** Whether an entry matches every filter of an audit query (an entry whose time cannot be read matches no time filter). */
function auditMatcher(query: AuditQuery): (entry: NumberedAuditEntry) => boolean {
  const actions = query.actions?.length ? new Set<string>(query.actions) : undefined;
  return (e) => {
    if (actions && !actions.has(e.action)) return false;
    if (query.actor !== undefined && e.actor !== query.actor) return false;
    if (query.target !== undefined && e.target !== query.target) return false;
    if (query.since !== undefined || query.until !== undefined) {
      const at = Date.parse(e.at);
      if (!Number.isFinite(at) || (query.since !== undefined && at < query.since) || (query.until !== undefined && at >= query.until)) return false;
    }
    if (query.org !== undefined && e.details['org'] !== query.org) return false;
    return query.project === undefined || e.details['project'] === query.project;
  };
}

/** An admin change as the audit log records it: `details` names the tenant concerned (`org`, `team`, `project`). */
export function auditEntryOf(actor: Actor, action: AuditAction, target: string, details: Record<string, unknown>): AuditEntry {
  // A scoped actor's own scope is recorded beside what it changed (`org`, `project`).
  const scope = { ...(actor.org !== undefined && { actor_org: actor.org }), ...(actor.project !== undefined && { actor_project: actor.project }) };
  return { at: new Date().toISOString(), actor: actor.id, action, target, details: { ...details, role: actor.role, ...scope, ...(actor.address !== undefined && { source_ip: actor.address }) } };
}

/**
 * How many entries of the audit log one page examines at most (the log keeps more): the bound on
 * the work of a filtered page, or a scoped key's, whose matches may be far apart.
 */
export const AUDIT_SCAN = 10_000;
/** How many entries a filtered page reads from the store at a time. */
const AUDIT_BATCH = 1_000;

/** What a page of the audit log asks for (ids as numbers, times in ms since the epoch). */
export interface AuditQuery {
  limit: number;
  /** Entries older than this id (the next page). */
  after?: number | undefined;
  /** Entries newer than this id (the previous page); not with `after`. */
  before?: number | undefined;
  /** Any of these actions. */
  actions?: readonly AuditAction[] | undefined;
  actor?: string | undefined;
  target?: string | undefined;
  /** From this instant, inclusive. */
  since?: number | undefined;
  /** Up to this instant, exclusive. */
  until?: number | undefined;
  /** `details.org` (and `details.project`) equal to these. */
  org?: string | undefined;
  project?: string | undefined;
}

/** A page of the audit log, newest first, with the ids to go on from (undefined: an empty page). */
export interface AuditPage {
  data: NumberedAuditEntry[];
  firstId: number | undefined;
  lastId: number | undefined;
  hasMore: boolean;
}

export interface TenantEntry {
  id: string;
  name?: string | undefined;
  costCenter?: string | undefined;
  /** Its own limits (none: the configured defaults of its scope). */
  limits?: Limits | undefined;
  /** Each end user's limits within its traffic (none: the level above's, else `access.rateLimits.endUser`). */
  endUserLimits?: Limits | undefined;
  /** Its own routing policy (none: only those of the tenants above it). */
  policy?: TenantPolicyConfig | undefined;
}

/** A change of a tenant: a field left out stays as it is; `null` clears it (the inherited cost centre, the default limits). */
export interface TenantUpdate {
  name?: string | null | undefined;
  costCenter?: string | null | undefined;
  /** Replaces the entry's own limits whole (`{}` or `null`: none of its own). */
  limits?: Limits | null | undefined;
  /** Replaces its end users' limits whole (`null`: none of its own, the level above's apply). */
  endUserLimits?: Limits | null | undefined;
  /** Replaces the entry's own routing policy whole (`null`: none of its own). */
  policy?: TenantPolicyConfig | null | undefined;
}

/** What a change did, as its audit entry records it: each field given, by its admin API name, from what it was to what it is. */
type TenantChanges = Record<string, { from: unknown; to: unknown }>;

/**
 * The entry with the update applied. Fills `changes` from the entry as stored (read under the org's
 * lock, so `from` is what this write replaced): the audit entry, written in the same write, holds them.
 */
function updated<T extends ProjectConfig>(entry: T, update: TenantUpdate, changes: TenantChanges): T {
  const next: T = { ...entry };
  if (update.name !== undefined) {
    changes['name'] = { from: entry.name ?? null, to: update.name };
    if (update.name === null) delete next.name;
    else next.name = update.name;
  }
  if (update.costCenter !== undefined) {
    changes['cost_center'] = { from: entry.costCenter ?? null, to: update.costCenter };
    if (update.costCenter === null) delete next.costCenter;
    else next.costCenter = update.costCenter;
  }
  if (update.limits !== undefined) {
    next.limits = update.limits ?? {};
    changes['limits'] = { from: limitsRecord(entry.limits), to: limitsRecord(next.limits) };
  }
  if (update.endUserLimits !== undefined) {
    changes['end_user_limits'] = { from: entry.endUserLimits ? limitsRecord(entry.endUserLimits) : null, to: update.endUserLimits ? limitsRecord(update.endUserLimits) : null };
    if (update.endUserLimits === null) delete next.endUserLimits;
    else next.endUserLimits = update.endUserLimits;
  }
  if (update.policy !== undefined) {
    changes['policy'] = { from: entry.policy ?? null, to: update.policy };
    if (update.policy === null) delete next.policy;
    else next.policy = update.policy;
  }
  return next;
}

function limitsRecord(limits: Limits): { rpm: number | null; tpm: number | null } {
  return { rpm: limits.rpm ?? null, tpm: limits.tpm ?? null };
}

function orgNotFound(orgId: string): GatewayError {
  return new GatewayError('not_found', `The organisation "${orgId}" does not exist.`, { param: 'org', code: 'not_found' });
}

function teamNotFound(orgId: string, teamId: string): GatewayError {
  return new GatewayError('not_found', `The team "${teamId}" does not exist in "${orgId}".`, { param: 'team', code: 'not_found' });
}

function projectNotFound(orgId: string, teamId: string, projectId: string): GatewayError {
  return new GatewayError('not_found', `The project "${projectId}" does not exist in the team "${teamId}" of "${orgId}".`, { param: 'project', code: 'not_found' });
}

/**
 * The configuration file wins for the tenants it declares (on every start, and on every reload of
 * the tenants): a stored change would be shown, then silently undone. So it is refused, saying where to change it.
 */
function declaredInConfiguration(what: string, id: string): GatewayError {
  return new GatewayError(
    'conflict',
    `The ${what} "${id}" is declared in the configuration file (access.orgs), which is what the gateway uses for it: change it there and restart. Only organisations, teams and projects added through the admin API can be changed with PATCH.`,
    { param: what === 'organisation' ? 'org' : what, code: 'configured_tenant' },
  );
}

function named(entry: TenantEntry): { name?: string; costCenter?: string; policy?: TenantPolicyConfig; endUserLimits?: Limits } {
  return {
    ...(entry.name ? { name: entry.name } : {}),
    ...(entry.costCenter ? { costCenter: entry.costCenter } : {}),
    ...(entry.policy ? { policy: entry.policy } : {}),
    ...(entry.endUserLimits ? { endUserLimits: entry.endUserLimits } : {}),
  };
}

/** Up to `NAMES_SHOWN` of `names`, those sharing the longest prefix with `name` first (the likely typo). */
function nearest(name: string, names: readonly string[]): string {
  const shared = (other: string): number => {
    let n = 0;
    while (n < name.length && name[n] === other[n]) n++;
    return n;
  };
  // A stable sort: among equally near names, configuration order.
  const shown = [...names].sort((a, b) => shared(b) - shared(a)).slice(0, NAMES_SHOWN);
  const more = names.length - shown.length;
  return shown.map((n) => `"${n}"`).join(', ') + (more > 0 ? ` and ${more} more` : '');
}

const NAMES_SHOWN = 5;

/** The fields of a key a change may set, with their names in the API. */
const KEY_FIELDS = [
  ['name', 'name'],
  ['allowedModels', 'allowed_models'],
  ['policy', 'policy'],
  ['limits', 'limits'],
  ['expiresAt', 'expires_at'],
  ['tags', 'tags'],
  ['metadata', 'metadata'],
] as const satisfies ReadonlyArray<readonly [keyof UpdateKeyInput, string]>;

/** The record with a change's fields applied; `expiresAt: null` removes the expiry. */
function withKeyChanges(stored: ApiKeyRecord, input: UpdateKeyInput): ApiKeyRecord {
  const { expiresAt: _expiresAt, policy: storedPolicy, ...rest } = stored;
  const policy = input.policy === undefined ? storedPolicy : (input.policy ?? undefined);
  const expiresAt = input.expiresAt === undefined ? stored.expiresAt : input.expiresAt === null ? undefined : new Date(input.expiresAt).toISOString();
  return {
    ...rest,
    ...(input.name !== undefined && { name: input.name }),
    ...(input.allowedModels !== undefined && { allowedModels: input.allowedModels }),
    ...(policy !== undefined && { policy }),
    ...(input.limits !== undefined && { limits: input.limits }),
    ...(input.metadata !== undefined && { metadata: input.metadata }),
    ...(input.tags !== undefined && { tags: input.tags }),
    ...(expiresAt !== undefined && { expiresAt }),
  };
}

function keyRevoked(id: string, what: 'changed' | 'rotated'): GatewayError {
  return new GatewayError('conflict', `The key "${id}" is revoked and cannot be ${what}; issue a new key instead.`, { param: 'id', code: 'key_revoked' });
}

function keyExpired(id: string, expiresAt: string): GatewayError {
  return new GatewayError('conflict', `The key "${id}" expired at ${expiresAt}: a new secret for it would never be accepted. Give it a later expires_at (PATCH /admin/v1/keys/${id}) before rotating it, or issue a new key.`, { param: 'id', code: 'key_expired' });
}

/** A rotation overtaken by another: the key no longer has the secret the caller read. */
function keyChanged(id: string): GatewayError {
  return new GatewayError('conflict', `The key "${id}" was rotated by another request meanwhile; read it again (GET /admin/v1/keys/${id}) and retry if it still needs a new secret.`, { param: 'id', code: 'key_changed' });
}

/**
 * Whether `stored` still has the secret `read` had: the same hash, or that hash among those it was
 * re-indexed from (a hash secret being rotated meanwhile moves a record, its secret unchanged).
 */
function sameSecret(stored: ApiKeyRecord, read: ApiKeyRecord): boolean {
  return stored.hash === read.hash || (stored.formerHashes ?? []).includes(read.hash);
}

function keyNotFound(id: string): GatewayError {
  return new GatewayError('not_found', `No issued key has the id "${id}".`, { param: 'id', code: 'not_found' });
}

function alreadyExists(what: string, id: string): GatewayError {
  return new GatewayError('conflict', `The ${what} "${id}" already exists.`, { param: 'id', code: 'already_exists' });
}

function devRecord(hash: string, prefix: string): ApiKeyRecord {
  return {
    id: DEV_KEY_ID,
    hash,
    prefix,
    name: 'development key',
    orgId: 'default',
    teamId: '',
    projectId: '',
    appId: '',
    allowedModels: [],
    limits: {},
    metadata: {},
    tags: {},
    createdAt: new Date(0).toISOString(),
    source: 'config',
  };
}
