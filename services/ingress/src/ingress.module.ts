import { Module, type DynamicModule } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import type { Logger } from '@openrouter/observability';
import { HealthModule } from '@openrouter/service-runtime';
import { ApiKeyGuard, KEY_STORE } from './auth/api-key.guard';
import type { KeyStore } from './auth/key-store';
import { OpenAIExceptionFilter } from './openai-exception.filter';
import { RouterClient } from './router.client';
import { ChatCompletionsHttpController } from './routes/chat-completions.http.controller';
import { CompletionsHttpController } from './routes/completions.http.controller';
import { EmbeddingsHttpController } from './routes/embeddings.http.controller';
import { ModelsHttpController } from './routes/models.http.controller';

export interface IngressDependencies {
  router: RouterClient;
  keys: KeyStore;
  logger: Logger;
}

@Module({})
export class IngressModule {
  static register(deps: IngressDependencies): DynamicModule {
    return {
      module: IngressModule,
      imports: [HealthModule.register('ingress', [{ name: 'router', check: () => deps.router.isReachable(500) }])],
      controllers: [ChatCompletionsHttpController, CompletionsHttpController, EmbeddingsHttpController, ModelsHttpController],
      providers: [
        { provide: RouterClient, useValue: deps.router },
        { provide: KEY_STORE, useValue: deps.keys },
        { provide: APP_FILTER, useValue: new OpenAIExceptionFilter(deps.logger) },
        ApiKeyGuard,
      ],
    };
  }
}
