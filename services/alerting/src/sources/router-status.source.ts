import { Metadata } from '@grpc/grpc-js';
import { routerv1 } from '@openrouter/contracts';
import { callUnary, type GrpcSecurity } from '@openrouter/grpc';
import type { Logger } from '@openrouter/observability';
import type { RouterSnapshot } from '../rules/rule-evaluator';

/**
 * Polls the router's gRPC status (deployment health with circuit state, gray releases). A poll that
 * fails leaves the snapshot undefined, so router-based rules keep their state instead of resolving.
 */
export class RouterStatusSource {
  private readonly client: routerv1.RouterServiceClient;
  private timer: NodeJS.Timeout | undefined;
  private latest: RouterSnapshot | undefined;
  private failing = false;

  constructor(
    address: string,
    private readonly intervalMs: number,
    private readonly logger: Logger,
    security: GrpcSecurity,
  ) {
    this.client = security.client(routerv1.RouterServiceClient, address);
  }

  snapshot(): RouterSnapshot | undefined {
    return this.latest;
  }

  start(onSnapshot: () => void): void {
    const tick = async (): Promise<void> => {
      await this.poll();
      onSnapshot();
      this.timer = setTimeout(() => void tick(), this.intervalMs);
      this.timer.unref();
    };
    void tick();
  }

  async poll(): Promise<RouterSnapshot | undefined> {
    const deadline = (): Metadata => new Metadata();
    try {
      const signal = AbortSignal.timeout(Math.min(5_000, this.intervalMs));
      const [health, gray] = await Promise.all([
        callUnary<routerv1.ProvidersHealthRequest, routerv1.ProvidersHealthResponse>(this.client.providersHealth.bind(this.client), {}, deadline(), signal),
        callUnary<routerv1.GrayReleasesRequest, routerv1.GrayReleasesResponse>(this.client.grayReleases.bind(this.client), {}, deadline(), signal),
      ]);
      this.latest = {
        circuits: health.deployments.map((d) => ({ provider: d.provider, deployment: d.deployment, state: d.breakerState })),
        grayReleases: gray.releases.map((g) => ({ id: g.id, target: g.target, canary: g.canary, status: g.status, rolledBackAtMs: g.rolledBackAtMs, reason: g.rollbackReason })),
      };
      if (this.failing) this.logger.info('router status reachable again');
      this.failing = false;
    } catch (error) {
      if (!this.failing) this.logger.warn({ err: error }, 'router status unreachable; circuit and canary rules keep their state');
      this.failing = true;
      this.latest = undefined;
    }
    return this.latest;
  }

  close(): void {
    clearTimeout(this.timer);
    this.client.close();
  }
}
