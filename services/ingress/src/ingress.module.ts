import { Module, type DynamicModule } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { batchesSchema } from '@openrouter/config';
import type { AlertHistoryStore, Logger, ReadinessCheck, Registry } from '@openrouter/observability';
import { HealthModule } from '@openrouter/service-runtime';
import { AccessService } from './access/access.service';
import { AdminAuth } from './admin/admin-auth';
import { AdminGuard } from './admin/admin.guard';
import { AdminBatchesHttpController } from './admin/batches.http.controller';
import { ALERT_HISTORY, AlertsHttpController } from './admin/alerts.http.controller';
import { BudgetsHttpController } from './admin/budgets.http.controller';
import { KeysHttpController } from './admin/keys.http.controller';
import { ReportsHttpController } from './admin/reports.http.controller';
import { ResponsesPurgeHttpController } from './admin/responses-purge.http.controller';
import { ResponsesPurge } from './admin/responses-purge.service';
import { EndUsersHttpController } from './admin/end-users.http.controller';
import { ADMIN_READINESS, AdminStatusHttpController } from './admin/status.http.controller';
import { RoutingHttpController } from './admin/routing.http.controller';
import { TenantsHttpController } from './admin/tenants.http.controller';
import { ApiKeyGuard, KeyGuard, UnmeteredApiKeyGuard } from './auth/api-key.guard';
import { BillingClient } from './billing.client';
import { BudgetAdminService } from './budgets/budget-admin.service';
import { BudgetService } from './budgets/budget.service';
import { BATCH_STORE, type BatchStore } from './batches/batch-store';
import { BATCHES_CONFIG, BatchesHttpController, type BatchesSettings } from './batches/batches.http.controller';
import { FILE_STORE, type FileStore } from './batches/file-store';
import { FilesHttpController } from './batches/files.http.controller';
import { FilesService } from './batches/files.service';
import { StoredResponses } from './responses/stored-responses';
import { StoredChatCompletions } from './chat-store/stored-chat-completions';
import { StoredChatCompletionsHttpController } from './chat-store/stored-chat-completions.http.controller';
import { Conversations } from './conversations/conversations';
import { ConversationsHttpController } from './conversations/conversations.http.controller';
import { StoredResponsesHttpController } from './responses/stored-responses.http.controller';
import { ResponseCache } from './cache/response-cache';
import { OpenAIExceptionFilter } from './openai-exception.filter';
import { RouterPort } from './router.port';
import { ChatCompletionsHttpController } from './routes/chat-completions.http.controller';
import { CompletionsHttpController } from './routes/completions.http.controller';
import { EMBEDDING_INPUT_LIMITS, type EmbeddingInputLimits } from './routes/embedding-input-limit';
import { EmbeddingsHttpController } from './routes/embeddings.http.controller';
import { ModerationsHttpController } from './routes/moderations.http.controller';
import { ImagesHttpController } from './routes/images.http.controller';
import { AudioHttpController } from './routes/audio.http.controller';
import { FORM_LIMITS, MultipartFormParser, type FormLimits } from './routes/multipart-form';
import { KeyHttpController } from './routes/key.http.controller';
import { CountTokensBodyGuard, MessagesBodyGuard, MessagesHttpController } from './routes/messages.http.controller';
import { ModelsHttpController } from './routes/models.http.controller';
import { REQUEST_BOUNDS, type RequestBounds } from './routes/request-bounds';
import { ResponsesAdmissionGuard, ResponsesBodyGuard, ResponsesHttpController } from './routes/responses.http.controller';
import { UsageRecorder } from './usage/usage-recorder';

export interface IngressDependencies {
  /** Whether the public listener serves `/metrics` (false: an internal listener does, `ingress.internalHttp`). */
  publicMetrics?: boolean;
  router: RouterPort;
  access: AccessService;
  adminAuth: AdminAuth;
  readiness: ReadinessCheck[];
  bounds: RequestBounds;
  /** The largest multipart forms read (`ingress.limits`): audio uploads, image edits, and a form sent to any other route. */
  formLimits: FormLimits;
  /** Per-model token limits of one embeddings input; absent: none checked at ingress. */
  embeddingInputLimits?: EmbeddingInputLimits | undefined;
  usage: UsageRecorder;
  budgets: BudgetService;
  /** Budget status, and budgets created, changed and deleted at run time (`/admin/v1/budgets`). */
  budgetAdmin: BudgetAdminService;
  /** Billing's reports; absent when ingress.billing is not configured (the report endpoints answer 503). */
  billing?: BillingClient | undefined;
  logger: Logger;
  /** The service's metrics registry, served at `/metrics`. */
  registry?: Registry;
  /** Alert history for `GET /admin/v1/alerts`; absent answers 503. */
  alertHistory?: AlertHistoryStore | undefined;
  /** The response cache (`cache.enabled`); absent: every request bypasses it. */
  cache?: ResponseCache | undefined;
  /** The files of the Files API and batches (`batches.enabled`); absent: `/v1/files` answers 404. */
  files?: FileStore | undefined;
  /** How long a file uploaded to `/v1/files` is kept (`batches.fileRetentionDays`). */
  fileRetentionDays?: number | undefined;
  /** Batches (`batches.enabled`, with `files`); absent: `/v1/batches` answers 404. */
  batches?: { store: BatchStore; config: BatchesSettings } | undefined;
  /** Stored responses of the Responses API (`responses.store`); absent: nothing is stored, `previous_response_id` is refused and `/v1/responses/{id}` answers 404. */
  responses?: StoredResponses | undefined;
  /** Conversations of the Conversations API (with `responses.store`); absent: `/v1/conversations` answers 404 and `conversation` is refused. */
  conversations?: Conversations | undefined;
  /** Stored chat completions (`chatCompletions.store`); absent: `store` goes to the provider as sent, and the stored-completion routes answer 404. */
  chatCompletions?: StoredChatCompletions | undefined;
  /** Purges a project's stored responses and conversations (with `responses.store`); absent: the admin route answers 404. */
  responsesPurge?: ResponsesPurge | undefined;
}

@Module({})
export class IngressModule {
  static register(deps: IngressDependencies): DynamicModule {
    // A budget created through the admin API must name tenants and keys that exist (the access service's).
    deps.budgetAdmin.checkScopesIn(deps.access);
    return {
      module: IngressModule,
      imports: [HealthModule.register('ingress', deps.readiness, deps.registry, { metrics: deps.publicMetrics !== false })],
      controllers: [
        ChatCompletionsHttpController,
        StoredChatCompletionsHttpController,
        CompletionsHttpController,
        ResponsesHttpController,
        StoredResponsesHttpController,
        ConversationsHttpController,
        MessagesHttpController,
        EmbeddingsHttpController,
        ModerationsHttpController,
        ImagesHttpController,
        AudioHttpController,
        ModelsHttpController,
        KeyHttpController,
        KeysHttpController,
        TenantsHttpController,
        ReportsHttpController,
        EndUsersHttpController,
        AdminStatusHttpController,
        AlertsHttpController,
        RoutingHttpController,
        BudgetsHttpController,
        FilesHttpController,
        BatchesHttpController,
        AdminBatchesHttpController,
        ResponsesPurgeHttpController,
      ],
      providers: [
        { provide: RouterPort, useValue: deps.router },
        { provide: AccessService, useValue: deps.access },
        { provide: AdminAuth, useValue: deps.adminAuth },
        { provide: ADMIN_READINESS, useValue: deps.readiness },
        { provide: ALERT_HISTORY, useValue: deps.alertHistory },
        { provide: REQUEST_BOUNDS, useValue: deps.bounds },
        { provide: FORM_LIMITS, useValue: deps.formLimits },
        MultipartFormParser,
        ...(deps.embeddingInputLimits ? [{ provide: EMBEDDING_INPUT_LIMITS, useValue: deps.embeddingInputLimits }] : []),
        { provide: UsageRecorder, useValue: deps.usage },
        { provide: BudgetService, useValue: deps.budgets },
        { provide: BudgetAdminService, useValue: deps.budgetAdmin },
        ...(deps.billing ? [{ provide: BillingClient, useValue: deps.billing }] : []),
        ...(deps.cache ? [{ provide: ResponseCache, useValue: deps.cache }] : []),
        ...(deps.files
          ? [
              { provide: FILE_STORE, useValue: deps.files },
              { provide: FilesService, useValue: new FilesService(deps.files, deps.fileRetentionDays ?? batchesSchema.parse({}).fileRetentionDays) },
            ]
          : []),
        ...(deps.batches
          ? [
              { provide: BATCH_STORE, useValue: deps.batches.store },
              { provide: BATCHES_CONFIG, useValue: deps.batches.config },
            ]
          : []),
        ...(deps.responses ? [{ provide: StoredResponses, useValue: deps.responses }] : []),
        ...(deps.conversations ? [{ provide: Conversations, useValue: deps.conversations }] : []),
        ...(deps.chatCompletions ? [{ provide: StoredChatCompletions, useValue: deps.chatCompletions }] : []),
        ...(deps.responsesPurge ? [{ provide: ResponsesPurge, useValue: deps.responsesPurge }] : []),
        { provide: APP_FILTER, useValue: new OpenAIExceptionFilter(deps.logger) },
        ApiKeyGuard,
        KeyGuard,
        UnmeteredApiKeyGuard,
        ResponsesBodyGuard,
        ResponsesAdmissionGuard,
        MessagesBodyGuard,
        CountTokensBodyGuard,
        AdminGuard,
      ],
    };
  }
}
