import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import type { GatewayConfig } from '@openrouter/config';
import type { DestinationStream } from 'pino';
import { createLogger, type Logger, type TelemetryOptions } from '@openrouter/observability';
import { InProcessBudgetBus } from '@openrouter/budgets';
import { startSimulator, type RunningSimulator } from '@openrouter/provider-simulator';
import { closeEach, type ServiceHandle } from '@openrouter/service-runtime';
import { startAdapter } from '@openrouter/adapter';
import { startAlerting } from '@openrouter/alerting';
import { startBilling, type BillingHandle } from '@openrouter/billing';
import { startIngress, type IngressHandle } from '@openrouter/ingress';
import { startRouter } from '@openrouter/router';
import { FileOutbox, InProcessUsageBus } from '@openrouter/usage';
import { UsageFanOut } from './usage-fan-out';

export interface GatewayOptions {
  /** Tracing exporter override for every service (tests use an in-memory exporter). */
  telemetry?: TelemetryOptions;
}

export interface GatewayHandle {
  readonly ingress: IngressHandle;
  readonly billing: BillingHandle;
  readonly simulator: RunningSimulator | undefined;
  /** Every service of the gateway (their HTTP ports serve /health, /ready and /metrics). */
  readonly services: readonly ServiceHandle[];
  readonly url: string;
  /** The service token its gRPC listeners require (`grpc.auth.token`, or one made for this process). */
  readonly internalToken: string;
  close(): Promise<void>;
}

const internal = { host: '127.0.0.1', port: 0 };

/**
 * The embedded mode: every service in this process. Ingress calls the router, and the router the
 * adapter, in process: the same service code as in the distributed mode, with the gRPC transport's
 * error mapping, cancellation and spans, but no socket and no serialisation. Each service still
 * listens on loopback ports the system picks (gRPC, and HTTP for health and metrics).
 */
export async function startGateway(given: GatewayConfig, logger: Logger, logDestination?: DestinationStream, options: GatewayOptions = {}): Promise<GatewayHandle> {
  // The services' loopback gRPC listeners take calls from other local processes too (another user
  // on a shared machine): without a configured token they get one made for this process.
  const internalToken = given.grpc.auth.token || randomBytes(32).toString('base64url');
  const config: GatewayConfig = given.grpc.auth.token ? given : { ...given, grpc: { ...given.grpc, auth: { ...given.grpc.auth, token: internalToken } } };
  const telemetry = options.telemetry;
  const started: Closable[] = [];
  const closeAll = closingInReverse(started);
  try {
    const sim = config.gateway.simulator;
    const simulator = sim.enabled ? await startSimulator({ host: sim.host, port: sim.port, apiKey: sim.apiKey || undefined }) : undefined;
    if (simulator) started.push(simulator);
    const child = (name: string): Logger => createLogger(name, config.log.level, logDestination);

    const adapter = await startAdapter({ ...config, adapter: { ...config.adapter, grpc: internal, http: internal } }, child('adapter'), telemetry);
    started.push(adapter);
    const router = await startRouter(
      { ...config, router: { ...config.router, grpc: internal, http: internal, adapters: { default: `127.0.0.1:${grpcPort(adapter)}` } } },
      child('router'),
      telemetry,
      { adapter: adapter.inProcess },
    );
    started.push(router);
    // One process: usage events go from ingress to billing over the in-process bus, unless Kafka is configured.
    const busOutbox = config.usage.bus === 'in-process' ? await usageBusOutbox(config, child('usage-bus')) : undefined;
    // Closed by the bus normally; this closes it (once only) when a later step fails before the bus is in `started`.
    if (busOutbox) started.push(busOutbox);
    const bus = busOutbox ? new InProcessUsageBus(child('usage-bus'), { ...config.usage.consumer, outbox: busOutbox }) : undefined;
    const budgetBus = config.usage.bus === 'in-process' ? new InProcessBudgetBus(child('budget-bus')) : undefined;
    const billing = await startBilling({ ...config, billing: { ...config.billing, http: internal, grpc: internal } }, child('billing'), { usageSource: bus, budgetEvents: budgetBus, telemetry });
    started.push(billing);
    // Closed after ingress (which publishes) and before billing (which stores): the bus drains in between.
    if (bus) started.push(bus);
    // Alerting has its own in-process bus (its own consumer group on Kafka); ingress publishes to both.
    const alertingBus = bus ? new InProcessUsageBus(child('usage-bus'), config.usage.consumer) : undefined;
    const alerting = await startAlerting({ ...config, alerting: { http: internal } }, child('alerting'), {
      usageSource: alertingBus,
      budgetEvents: budgetBus,
      store: billing.usage.store,
      routerAddress: `127.0.0.1:${grpcPort(router)}`,
      telemetry,
    });
    started.push(alerting);
    if (alertingBus) started.push(alertingBus);
    const usagePublisher = bus && alertingBus ? new UsageFanOut([bus, alertingBus]) : bus;
    const ingress = await startIngress({ ...config, ingress: { ...config.ingress, router: `127.0.0.1:${grpcPort(router)}`, billing: `127.0.0.1:${grpcPort(billing)}` } }, child('ingress'), {
      router: router.inProcess,
      usagePublisher,
      budgetEvents: budgetBus,
      analyticsStore: billing.usage.store,
      telemetry,
    });
    started.push(ingress);
    logger.info({ httpPort: ingress.httpPort, simulator: simulator?.baseUrl }, 'embedded gateway started');
    return { ingress, billing, simulator, services: [adapter, router, billing, alerting, ingress], url: `http://${config.ingress.http.host}:${ingress.httpPort}`, internalToken, close: closeAll };
  } catch (error) {
    await closeAll();
    throw error;
  }
}

interface Closable {
  close(): Promise<void>;
}

/**
 * Closes what was started, last first (ingress before the bus it publishes to, the bus before the
 * billing it feeds), once: a second call (a signal after a failed start, a test's afterAll after
 * the handle's own close) gets the same promise instead of closing everything again, out of order.
 * A close that fails does not stop the ones after it (the usage bus still hands what it holds to
 * billing or its outbox, every port is still released); the failures are thrown at the end.
 */
export function closingInReverse(started: readonly Closable[]): () => Promise<void> {
  let closing: Promise<void> | undefined;
  const closeAll = (): Promise<void> => closeEach('the gateway', [...started].reverse().map((handle) => () => handle.close()));
  return () => (closing ??= closeAll());
}

/**
 * Where billing's in-process bus keeps events its store does not take (an outage of its
 * ClickHouse) and those still queued at shutdown: `usage.outbox.dir`, else
 * `<gateway.dataDir>/outbox/usage-bus`.
 */
function usageBusOutbox(config: GatewayConfig, logger: Logger): Promise<FileOutbox> {
  const { dir, maxBytes, segmentBytes } = config.usage.outbox;
  return FileOutbox.open(resolve(dir || join(config.gateway.dataDir, 'outbox', 'usage-bus')), { maxBytes, segmentBytes, logger });
}

function grpcPort(handle: ServiceHandle): number {
  if (handle.grpcPort === undefined) throw new Error(`${handle.name} has no gRPC port`);
  return handle.grpcPort;
}
