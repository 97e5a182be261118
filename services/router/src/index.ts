import type { GatewayConfig } from '@openrouter/config';
import { routerv1 } from '@openrouter/contracts';
import { callStreamInProcess, callUnaryInProcess, GrpcSecurity, GrpcServerHandle } from '@openrouter/grpc';
import { createTelemetry, RouterMetrics, traceGrpcBinding, traceStreamInProcess, traceUnaryInProcess, tracingClientOptions, type Logger, type ReadinessCheck, type TelemetryOptions } from '@openrouter/observability';
import { HealthModule, startHttpApp, STOPPING, type ServiceHandle } from '@openrouter/service-runtime';
import { AdapterClients } from './adapter-clients';
import { startGrayReleaseSync } from './experiments/gray-release-sync';
import { Guardrails } from './guardrails/guardrails';
import { deploymentCircuits, instrumentAdapterPort } from './observability/router-telemetry';
import { routerGrpcBinding } from './router.grpc.controller';
import { grpcAdapters, RouterService, type AdapterPort } from './router.service';
import { createRoutingEngine } from './routing/routing-engine';

export { measureRouteDecision } from './bench/route-decision.bench';
export type { AdapterPort } from './router.service';

/** The router's methods as ingress calls them: over gRPC, or in process in the embedded gateway. */
export interface RouterCalls {
  chat(request: routerv1.ChatRequest, signal: AbortSignal): AsyncGenerator<routerv1.ChatResponse>;
  embed(request: routerv1.EmbedRequest, signal?: AbortSignal): Promise<routerv1.EmbedResponse>;
  moderate(request: routerv1.ModerateRequest, signal?: AbortSignal): Promise<routerv1.ModerateResponse>;
  generateImages(request: routerv1.GenerateImagesRequest, signal?: AbortSignal): Promise<routerv1.GenerateImagesResponse>;
  transcribe(request: routerv1.TranscribeRequest, signal?: AbortSignal): Promise<routerv1.TranscribeResponse>;
  speak(request: routerv1.SpeakRequest, signal: AbortSignal): AsyncGenerator<routerv1.SpeakResponse>;
  listModels(context: routerv1.RequestContext, includeRetired?: boolean): Promise<routerv1.ListModelsResponse>;
  explain(request: routerv1.ExplainRequest): Promise<routerv1.ExplainResponse>;
  providersHealth(): Promise<routerv1.ProvidersHealthResponse>;
  grayReleases(): Promise<routerv1.GrayReleasesResponse>;
}

export interface RouterHandle extends ServiceHandle {
  /** The gRPC methods called in process, with the same errors, cancellation and spans (the embedded gateway). */
  readonly inProcess: RouterCalls;
}

export interface RouterOptions {
  /** The adapter called in process (the embedded gateway); without it, over gRPC at `router.adapters`. */
  adapter?: AdapterPort;
}

/** Starts the router: gRPC for ingress, HTTP for health. */
export async function startRouter(config: GatewayConfig, logger: Logger, telemetryOptions: TelemetryOptions = {}, options: RouterOptions = {}): Promise<RouterHandle> {
  const security = GrpcSecurity.fromConfig(config.grpc);
  const telemetry = createTelemetry('router', config.observability, { logger, ...telemetryOptions });
  const metrics = new RouterMetrics(telemetry.registry);
  const adapters = new AdapterClients(config.router.adapters, security, tracingClientOptions(telemetry.tracing));
  const engine = createRoutingEngine(config);
  const grayReleaseSync = await startGrayReleaseSync(config, engine.grayReleases, logger);
  metrics.readCircuitsFrom(() => deploymentCircuits(engine));
  // A policy naming a rule this router lacks refuses its requests (503) until the router's
  // configuration catches up: said once a minute at most, as the operator has something to roll out.
  let unknownRuleWarned = 0;
  const moderationWarned = new Map<string, number>();
  const guardrails = new Guardrails(
    config.guardrails,
    (rule, action, count, stage) => metrics.guardrailMatch(rule, action, count, stage),
    (rule) => {
      if (Date.now() - unknownRuleWarned < 60_000) return;
      unknownRuleWarned = Date.now();
      logger.warn({ rule }, 'a request names a guardrail rule this router is not configured with: refused with 503 guardrails_unavailable until the router has the rule (roll out guardrails.rules to every router)');
    },
    (rule, model, failure, outcome) => {
      // A request let through unscreened by a rule is counted, each one; the warning (rule, model
      // and the failure's kind, never the text) comes once a minute at most per rule and outcome.
      if (outcome === 'skipped') metrics.guardrailMatch(rule, 'skipped', 1, 'input');
      const key = `${rule}\n${outcome}`;
      if (Date.now() - (moderationWarned.get(key) ?? 0) < 60_000) return;
      moderationWarned.set(key, Date.now());
      logger.warn(
        { rule, model, kind: failure.kind, outcome },
        outcome === 'refused'
          ? 'a guardrail moderation model did not answer: requests its block rule screens are refused with 503 guardrails_unavailable (guardrails.moderationFailMode closed)'
          : 'a guardrail moderation model did not answer: requests go on unscreened by the rule (guardrails.moderationFailMode open, or a flag rule)',
      );
    },
  );
  const service = new RouterService(engine, instrumentAdapterPort(options.adapter ?? grpcAdapters(adapters), metrics), guardrails, (model) => metrics.deprecatedModelRequest(model));
  const grpc = await GrpcServerHandle.start(config.router.grpc.host, config.router.grpc.port, [traceGrpcBinding(routerGrpcBinding(service, logger), telemetry.tracing)], security, (warning) => logger.warn(warning));
  const readiness: ReadinessCheck[] = [{ name: 'adapters', check: async () => options.adapter !== undefined || adapters.anyReachable(500) }];
  const http = await startHttpApp(HealthModule.register('router', readiness, telemetry.registry), config.router.http, logger, { tracing: telemetry.tracing });
  logger.info({ grpcPort: grpc.port, httpPort: http.port }, 'router started');
  const tracing = telemetry.tracing;
  const methods = routerv1.RouterServiceService;
  const unary = <A extends unknown[], T>(method: { path: string }, run: (...args: A) => T | Promise<T>): ((...args: A) => Promise<T>) =>
    traceUnaryInProcess(tracing, method.path, async (...args: A) => run(...args));
  const chat = traceStreamInProcess(tracing, methods.chat.path, (request: routerv1.ChatRequest, signal: AbortSignal) => service.chat(request, signal));
  const embed = unary(methods.embed, (request: routerv1.EmbedRequest, signal: AbortSignal) => service.embed(request, signal));
  const moderate = unary(methods.moderate, (request: routerv1.ModerateRequest, signal: AbortSignal) => service.moderate(request, signal));
  const generateImages = unary(methods.generateImages, (request: routerv1.GenerateImagesRequest, signal: AbortSignal) => service.generateImages(request, signal));
  const transcribe = unary(methods.transcribe, (request: routerv1.TranscribeRequest, signal: AbortSignal) => service.transcribe(request, signal));
  const speak = traceStreamInProcess(tracing, methods.speak.path, (request: routerv1.SpeakRequest, signal: AbortSignal) => service.speak(request, signal));
  const listModels = unary(methods.listModels, (context: routerv1.RequestContext, includeRetired: boolean) => service.listModels(context, includeRetired));
  const explain = unary(methods.explain, (request: routerv1.ExplainRequest) => service.explain(request));
  const providersHealth = unary(methods.providersHealth, () => service.providersHealth());
  const grayReleases = unary(methods.grayReleases, () => service.grayReleases());
  return {
    name: 'router',
    inProcess: {
      chat: (request, signal) => callStreamInProcess((callee) => chat(request, callee), signal),
      embed: (request, signal) => callUnaryInProcess((callee) => embed(request, callee), signal),
      moderate: (request, signal) => callUnaryInProcess((callee) => moderate(request, callee), signal),
      generateImages: (request, signal) => callUnaryInProcess((callee) => generateImages(request, callee), signal),
      transcribe: (request, signal) => callUnaryInProcess((callee) => transcribe(request, callee), signal),
      speak: (request, signal) => callStreamInProcess((callee) => speak(request, callee), signal),
      listModels: (context, includeRetired = false) => callUnaryInProcess(() => listModels(context, includeRetired)),
      explain: (request) => callUnaryInProcess(() => explain(request)),
      providersHealth: () => callUnaryInProcess(() => providersHealth()),
      grayReleases: () => callUnaryInProcess(() => grayReleases()),
    },
    httpPort: http.port,
    grpcPort: grpc.port,
    async close() {
      readiness.push(STOPPING);
      await grpc.close(config.grpc.shutdownGraceMs);
      await http.app.close();
      adapters.close();
      await grayReleaseSync?.close();
      await telemetry.close();
    },
  };
}
