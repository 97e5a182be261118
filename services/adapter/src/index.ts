import { readProxyEnv, type GatewayConfig } from '@openrouter/config';
import { adapterv1 } from '@openrouter/contracts';
import { callStreamInProcess, callUnaryInProcess, GrpcSecurity, GrpcServerHandle } from '@openrouter/grpc';
import { createTelemetry, CredentialFileMetrics, traceGrpcBinding, traceStreamInProcess, traceUnaryInProcess, UpstreamInstrumentation, type Logger, type ReadinessCheck, type TelemetryOptions } from '@openrouter/observability';
import { HealthModule, startHttpApp, STOPPING, type ServiceHandle } from '@openrouter/service-runtime';
import { adapterGrpcBinding, speechMessages } from './adapter.grpc.controller';
import { AdapterService } from './adapter.service';
import { mayProxy, proxyForLog, type Egress } from './providers/http-upstream';
import { PROVIDER_REGISTRY } from './providers/provider.registry';

export { PROVIDER_REGISTRY } from './providers/provider.registry';
export { createProviderAdapter, type ProviderAdapter } from './providers/provider-adapter';

/** The adapter's methods as the router calls them: over gRPC, or in process in the embedded gateway. */
export interface AdapterCalls {
  chat(request: adapterv1.ChatRequest, signal: AbortSignal): AsyncGenerator<adapterv1.ChatResponse>;
  embed(request: adapterv1.EmbedRequest, signal: AbortSignal): Promise<adapterv1.EmbedResponse>;
  moderate(request: adapterv1.ModerateRequest, signal: AbortSignal): Promise<adapterv1.ModerateResponse>;
  generateImages(request: adapterv1.GenerateImagesRequest, signal: AbortSignal): Promise<adapterv1.GenerateImagesResponse>;
  transcribe(request: adapterv1.TranscribeRequest, signal: AbortSignal): Promise<adapterv1.TranscribeResponse>;
  /** Speech in pieces as the provider's audio arrives (see openrouter.chat.v1.SpeechResponse). */
  speak(request: adapterv1.SpeakRequest, signal: AbortSignal): AsyncGenerator<adapterv1.SpeakResponse>;
}

export interface AdapterHandle extends ServiceHandle {
  /** The gRPC methods called in process, with the same errors, cancellation and spans (the embedded gateway). */
  readonly inProcess: AdapterCalls;
}

export { DIRECT_EGRESS, type Egress } from './providers/http-upstream';

/**
 * Starts the adapter: gRPC for the router, HTTP for health. Outbound calls take the environment's
 * forward proxies (HTTPS_PROXY, HTTP_PROXY, NO_PROXY), read here once, unless `egress` is given.
 */
export async function startAdapter(config: GatewayConfig, logger: Logger, telemetryOptions: TelemetryOptions = {}, egress: Egress = { proxyEnv: readProxyEnv() }): Promise<AdapterHandle> {
  const security = GrpcSecurity.fromConfig(config.grpc);
  const telemetry = createTelemetry('adapter', config.observability, { logger, ...telemetryOptions });
  const service = new AdapterService(config, PROVIDER_REGISTRY, new UpstreamInstrumentation(telemetry.registry, telemetry.tracing), logger, egress, new CredentialFileMetrics(telemetry.registry));
  const { httpProxy, httpsProxy, noProxy } = egress.proxyEnv;
  if (mayProxy(egress)) {
    logger.info({ httpProxy: httpProxy && proxyForLog(httpProxy), httpsProxy: httpsProxy && proxyForLog(httpsProxy), noProxy }, 'outbound calls go through a forward proxy');
  }
  const grpc = await GrpcServerHandle.start(config.adapter.grpc.host, config.adapter.grpc.port, [traceGrpcBinding(adapterGrpcBinding(service, logger), telemetry.tracing)], security, (warning) => logger.warn(warning));
  const readiness: ReadinessCheck[] = [];
  const http = await startHttpApp(HealthModule.register('adapter', readiness, telemetry.registry), config.adapter.http, logger, { tracing: telemetry.tracing });
  logger.info({ grpcPort: grpc.port, httpPort: http.port, providers: service.providerIds }, 'adapter started');
  const tracing = telemetry.tracing;
  const chat = traceStreamInProcess(tracing, adapterv1.AdapterServiceService.chat.path, (request: adapterv1.ChatRequest, signal: AbortSignal) => service.chat(request, signal));
  const embed = traceUnaryInProcess(tracing, adapterv1.AdapterServiceService.embed.path, async (request: adapterv1.EmbedRequest, signal: AbortSignal) => ({ response: await service.embed(request, signal) }));
  const moderate = traceUnaryInProcess(tracing, adapterv1.AdapterServiceService.moderate.path, async (request: adapterv1.ModerateRequest, signal: AbortSignal) => ({ response: await service.moderate(request, signal) }));
  const generateImages = traceUnaryInProcess(tracing, adapterv1.AdapterServiceService.generateImages.path, async (request: adapterv1.GenerateImagesRequest, signal: AbortSignal) => ({
    response: await service.generateImages(request, signal),
  }));
  const transcribe = traceUnaryInProcess(tracing, adapterv1.AdapterServiceService.transcribe.path, async (request: adapterv1.TranscribeRequest, signal: AbortSignal) => ({
    response: await service.transcribe(request, signal),
  }));
  const speak = traceStreamInProcess(tracing, adapterv1.AdapterServiceService.speak.path, (request: adapterv1.SpeakRequest, signal: AbortSignal) => speechMessages(service.speak(request, signal)));
  return {
    name: 'adapter',
    inProcess: {
      chat: (request, signal) => callStreamInProcess((callee) => chat(request, callee), signal),
      embed: (request, signal) => callUnaryInProcess((callee) => embed(request, callee), signal),
      moderate: (request, signal) => callUnaryInProcess((callee) => moderate(request, callee), signal),
      generateImages: (request, signal) => callUnaryInProcess((callee) => generateImages(request, callee), signal),
      transcribe: (request, signal) => callUnaryInProcess((callee) => transcribe(request, callee), signal),
      speak: (request, signal) => callStreamInProcess((callee) => speak(request, callee), signal),
    },
    httpPort: http.port,
    grpcPort: grpc.port,
    async close() {
      readiness.push(STOPPING);
      await grpc.close(config.grpc.shutdownGraceMs);
      await http.app.close();
      await service.close();
      await telemetry.close();
    },
  };
}
