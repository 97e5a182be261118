export { HealthHttpController, READINESS_CHECKS, SERVICE_NAME } from './health.http.controller';
export { HealthModule } from './health.module';
export { METRICS_REGISTRY, MetricsHttpController } from './metrics.http.controller';
export { Coalesced } from './coalesced';
export { closeWithinGrace, jsonTooDeep, startHttpApp, tooDeep } from './http-app';
export type { HttpAppOptions, RespondedExchange } from './http-app';
export { closeOnSignals, runServiceMain } from './service-handle';
export type { ServiceHandle } from './service-handle';
