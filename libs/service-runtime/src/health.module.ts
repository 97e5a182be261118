import { Module, type DynamicModule } from '@nestjs/common';
import type { ReadinessCheck } from '@openrouter/observability';
import { HealthHttpController, READINESS_CHECKS, SERVICE_NAME } from './health.http.controller';

/** `/health` and `/ready` for a service, with the dependencies its readiness depends on. */
@Module({})
export class HealthModule {
  static register(service: string, checks: ReadinessCheck[] = []): DynamicModule {
    return {
      module: HealthModule,
      controllers: [HealthHttpController],
      providers: [
        { provide: SERVICE_NAME, useValue: service },
        { provide: READINESS_CHECKS, useValue: checks },
      ],
    };
  }
}
