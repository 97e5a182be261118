import { Module, type DynamicModule } from '@nestjs/common';
import { Registry, type ReadinessCheck } from '@openrouter/observability';
import { HealthHttpController, READINESS_CHECKS, SERVICE_NAME } from './health.http.controller';
import { METRICS_REGISTRY, MetricsHttpController } from './metrics.http.controller';

/**
 * `/health` and `/ready` for a service, with the dependencies its readiness depends on, and
 * `/metrics` from the service's registry (an empty one when none is given) unless `metrics` is
 * false (a public listener whose metrics are served on an internal one).
 */
/**
 * Joins a service's readiness checks when its close begins: `/ready` fails from then on, so load
 * balancers send it nothing new while it drains what is in flight, and `/health` still answers.
 */
export const STOPPING: ReadinessCheck = { name: 'stopping', check: async () => false };

@Module({})
export class HealthModule {
  static register(service: string, checks: ReadinessCheck[] = [], registry: Registry = new Registry(), options: { metrics?: boolean } = {}): DynamicModule {
    return {
      module: HealthModule,
      controllers: options.metrics === false ? [HealthHttpController] : [HealthHttpController, MetricsHttpController],
      providers: [
        { provide: SERVICE_NAME, useValue: service },
        { provide: READINESS_CHECKS, useValue: checks },
        { provide: METRICS_REGISTRY, useValue: registry },
      ],
    };
  }
}
