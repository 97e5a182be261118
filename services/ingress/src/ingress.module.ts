import { Module, type DynamicModule } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import type { Logger, ReadinessCheck } from '@openrouter/observability';
import { HealthModule } from '@openrouter/service-runtime';
import { AccessService } from './access/access.service';
import { AdminAuth } from './admin/admin-auth';
import { AdminGuard } from './admin/admin.guard';
import { KeysHttpController } from './admin/keys.http.controller';
import { ADMIN_READINESS, AdminStatusHttpController } from './admin/status.http.controller';
import { TenantsHttpController } from './admin/tenants.http.controller';
import { ApiKeyGuard } from './auth/api-key.guard';
import { OpenAIExceptionFilter } from './openai-exception.filter';
import { RouterClient } from './router.client';
import { ChatCompletionsHttpController } from './routes/chat-completions.http.controller';
import { CompletionsHttpController } from './routes/completions.http.controller';
import { EmbeddingsHttpController } from './routes/embeddings.http.controller';
import { ModelsHttpController } from './routes/models.http.controller';

export interface IngressDependencies {
  router: RouterClient;
  access: AccessService;
  adminAuth: AdminAuth;
  readiness: ReadinessCheck[];
  logger: Logger;
}

@Module({})
export class IngressModule {
  static register(deps: IngressDependencies): DynamicModule {
    return {
      module: IngressModule,
      imports: [HealthModule.register('ingress', deps.readiness)],
      controllers: [
        ChatCompletionsHttpController,
        CompletionsHttpController,
        EmbeddingsHttpController,
        ModelsHttpController,
        KeysHttpController,
        TenantsHttpController,
        AdminStatusHttpController,
      ],
      providers: [
        { provide: RouterClient, useValue: deps.router },
        { provide: AccessService, useValue: deps.access },
        { provide: AdminAuth, useValue: deps.adminAuth },
        { provide: ADMIN_READINESS, useValue: deps.readiness },
        { provide: APP_FILTER, useValue: new OpenAIExceptionFilter(deps.logger) },
        ApiKeyGuard,
        AdminGuard,
      ],
    };
  }
}
