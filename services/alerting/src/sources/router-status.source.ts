import { Metadata } from '@grpc/grpc-js';
import { routerv1 } from '@openrouter/contracts';
import { callUnary, RouterTargets, type GrpcSecurity, type HostLookup, type RouterDiscovery, type RouterTarget } from '@openrouter/grpc';
import type { Logger } from '@openrouter/observability';
import type { RouterReplica, RouterReplicaStatus, RouterSnapshot } from '../aggregation/router-replicas';

export interface RouterStatusSettings {
  /** The configured router addresses (`host:port`). */
  addresses: readonly string[];
  discovery: RouterDiscovery;
  intervalMs: number;
}

export interface RouterStatusOptions {
  clock?: () => number;
  /** Resolves a router name with `dns` discovery: the system resolver by default. */
  lookup?: HostLookup;
}

/** A replica's channel (made at its first call), and since when it has not answered (undefined while it answers). */
interface ReplicaState {
  client: routerv1.RouterServiceClient | undefined;
  failingSinceMs: number | undefined;
}

/**
 * Polls the router's gRPC status (deployment health with circuit state, gray releases) on every
 * replica: each configured address, or with `dns` discovery each address its name resolves to at
 * this poll (those it last resolved to when a lookup fails: see `RouterTargets`). A replica that
 * does not answer is in the snapshot without a status, so router-based rules keep their state for
 * it instead of reading it as healthy; until the first poll the snapshot is undefined.
 */
export class RouterStatusSource {
  private readonly replicas = new Map<string, ReplicaState>();
  private timer: NodeJS.Timeout | undefined;
  private latest: RouterSnapshot | undefined;
  private closed = false;
  /** Aborted by close(): calls under way end then, instead of at their deadline. */
  private readonly closing = new AbortController();
  private readonly targets: RouterTargets;
  private readonly clock: () => number;

  constructor(
    private readonly settings: RouterStatusSettings,
    private readonly logger: Logger,
    private readonly security: GrpcSecurity,
    options: RouterStatusOptions = {},
  ) {
    this.clock = options.clock ?? Date.now;
    // A lookup gets the time a replica's status calls get: a hung one cannot hold a poll longer.
    this.targets = new RouterTargets(settings.addresses, settings.discovery, logger, { lookupTimeoutMs: this.timeoutMs(), lookup: options.lookup });
  }

  snapshot(): RouterSnapshot | undefined {
    return this.latest;
  }

  start(onSnapshot: () => void): void {
    const tick = async (): Promise<void> => {
      await this.poll();
      if (this.closed) return;
      onSnapshot();
      this.timer = setTimeout(() => void tick(), this.settings.intervalMs);
      this.timer.unref();
    };
    void tick();
  }

  /** The replicas polled now; once closed (during the lookup too) none is, and the snapshot stays the last one taken. */
  async poll(): Promise<RouterSnapshot> {
    const targets = await this.targets.resolve();
    if (this.closed) return this.latest ?? { replicas: [] };
    const current = new Set(targets.map((t) => t.address));
    // A replica gone from the name (a pod replaced, scaled down) is no longer one to watch.
    for (const [address, state] of this.replicas) {
      if (current.has(address)) continue;
      state.client?.close();
      this.replicas.delete(address);
    }
    const replicas = await Promise.all(targets.map((target) => this.pollReplica(target)));
    // Closed during the calls: close() has cancelled them and closed their channels; they do not replace the snapshot.
    if (!this.closed) this.latest = { replicas };
    return { replicas };
  }

  close(): void {
    this.closed = true;
    this.closing.abort();
    clearTimeout(this.timer);
    for (const state of this.replicas.values()) state.client?.close();
    this.replicas.clear();
  }

  private async pollReplica(target: RouterTarget): Promise<RouterReplica> {
    // Once closed, no state is kept and no channel made: close() would not see it, and it would live on.
    if (this.closed) return { address: target.address, status: undefined };
    const state = this.replicas.get(target.address) ?? { client: undefined, failingSinceMs: undefined };
    this.replicas.set(target.address, state);
    try {
      if (target.unresolved !== undefined) throw new Error(target.unresolved);
      state.client ??= this.clientOf(target);
      const status = await this.statusOf(state.client);
      if (state.failingSinceMs !== undefined) this.logger.info({ router: target.address }, 'router status reachable again');
      state.failingSinceMs = undefined;
      return { address: target.address, status };
    } catch (error) {
      if (state.failingSinceMs === undefined && !this.closed) {
        this.logger.warn({ err: error, router: target.address }, 'router status unreachable; circuit and canary rules keep their state');
        state.failingSinceMs = this.clock();
      }
      return { address: target.address, status: undefined, failingSinceMs: state.failingSinceMs };
    }
  }

  private async statusOf(client: routerv1.RouterServiceClient): Promise<RouterReplicaStatus> {
    const deadline = (): Metadata => new Metadata();
    const signal = AbortSignal.any([this.closing.signal, AbortSignal.timeout(this.timeoutMs())]);
    const [health, gray] = await Promise.all([
      callUnary<routerv1.ProvidersHealthRequest, routerv1.ProvidersHealthResponse>(client.providersHealth.bind(client), {}, deadline(), signal),
      callUnary<routerv1.GrayReleasesRequest, routerv1.GrayReleasesResponse>(client.grayReleases.bind(client), {}, deadline(), signal),
    ]);
    return {
      circuits: health.deployments.map((d) => ({ provider: d.provider, deployment: d.deployment, state: d.breakerState })),
      grayReleases: gray.releases.map((g) => ({ id: g.id, target: g.target, canary: g.canary, status: g.status, rolledBackAtMs: g.rolledBackAtMs, reason: g.rollbackReason })),
    };
  }

  private timeoutMs(): number {
    return Math.min(5_000, this.settings.intervalMs);
  }

  /** A channel of the replica's own; TLS verifies a resolved address as the name it was resolved from. */
  private clientOf(target: RouterTarget): routerv1.RouterServiceClient {
    const options = target.serverName === undefined ? {} : { 'grpc.ssl_target_name_override': target.serverName };
    return this.security.client(routerv1.RouterServiceClient, target.address, options);
  }
}
