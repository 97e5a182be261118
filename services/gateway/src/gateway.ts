import type { GatewayConfig } from '@openrouter/config';
import type { DestinationStream } from 'pino';
import { createLogger, type Logger } from '@openrouter/observability';
import { startSimulator, type RunningSimulator } from '@openrouter/provider-simulator';
import type { ServiceHandle } from '@openrouter/service-runtime';
import { startAdapter } from '@openrouter/adapter';
import { startAlerting } from '@openrouter/alerting';
import { startBilling, type BillingHandle } from '@openrouter/billing';
import { startIngress, type IngressHandle } from '@openrouter/ingress';
import { startRouter } from '@openrouter/router';
import { InProcessUsageBus } from '@openrouter/usage';

export interface GatewayHandle {
  readonly ingress: IngressHandle;
  readonly billing: BillingHandle;
  readonly simulator: RunningSimulator | undefined;
  readonly url: string;
  close(): Promise<void>;
}

const internal = { host: '127.0.0.1', port: 0 };

/**
 * The embedded mode: every service in this process, wired over loopback gRPC on ports the
 * system picks, so the request path is the same code as in the distributed mode.
 */
export async function startGateway(config: GatewayConfig, logger: Logger, logDestination?: DestinationStream): Promise<GatewayHandle> {
  const started: Array<{ close(): Promise<void> }> = [];
  const closeAll = async (): Promise<void> => {
    for (const handle of started.reverse()) await handle.close();
  };
  try {
    const sim = config.gateway.simulator;
    const simulator = sim.enabled ? await startSimulator({ host: sim.host, port: sim.port, apiKey: sim.apiKey || undefined }) : undefined;
    if (simulator) started.push(simulator);
    const child = (name: string): Logger => createLogger(name, config.log.level, logDestination);

    const adapter = await startAdapter({ ...config, adapter: { ...config.adapter, grpc: internal, http: internal } }, child('adapter'));
    started.push(adapter);
    const router = await startRouter(
      { ...config, router: { ...config.router, grpc: internal, http: internal, adapters: { default: `127.0.0.1:${grpcPort(adapter)}` } } },
      child('router'),
    );
    started.push(router);
    // One process: usage events go from ingress to billing over the in-process bus, unless Kafka is configured.
    const bus = config.usage.bus === 'in-process' ? new InProcessUsageBus(child('usage-bus'), config.usage.consumer) : undefined;
    const billing = await startBilling({ ...config, billing: { ...config.billing, http: internal } }, child('billing'), { usageSource: bus });
    started.push(billing);
    // Closed after ingress (which publishes) and before billing (which stores): the bus drains in between.
    if (bus) started.push(bus);
    started.push(await startAlerting({ ...config, alerting: { http: internal } }, child('alerting')));
    const ingress = await startIngress({ ...config, ingress: { ...config.ingress, router: `127.0.0.1:${grpcPort(router)}` } }, child('ingress'), { usagePublisher: bus });
    started.push(ingress);
    logger.info({ httpPort: ingress.httpPort, simulator: simulator?.baseUrl }, 'embedded gateway started');
    return { ingress, billing, simulator, url: `http://${config.ingress.http.host}:${ingress.httpPort}`, close: closeAll };
  } catch (error) {
    await closeAll();
    throw error;
  }
}

function grpcPort(handle: ServiceHandle): number {
  if (handle.grpcPort === undefined) throw new Error(`${handle.name} has no gRPC port`);
  return handle.grpcPort;
}
