import { randomBytes } from 'node:crypto';
import { Counter } from 'prom-client';
import { MAX_TIMER_MS, type GatewayConfig } from '@openrouter/config';
import { GrpcSecurity } from '@openrouter/grpc';
import { createTelemetry, tracingClientOptions, type Logger, type TelemetryOptions } from '@openrouter/observability';
import { closeEach, closeWithinGrace, HealthModule, startHttpApp, whenReady, type ServiceHandle } from '@openrouter/service-runtime';
import { PriceBook, UnpricedModels, type ClickHouseTarget, type UsagePublisher } from '@openrouter/usage';
import { BudgetCatalog, connectBudgetStore, InProcessBudgetBus, KafkaBudgetPublisher, MemoryBudgetLedger, MemoryBudgetStore, RedisBudgetLedger, type BudgetEventPublisher } from '@openrouter/budgets';
import { AccessService } from './access/access.service';
import { auditEntrySchema, auditLogOf, MemoryAccessRepository, RedisAccessRepository } from './access/access.repository';
import { RedisIdempotencyStore } from './access/idempotency.store';
import { ADMIN_KEY_PREFIX, generateApiKey } from './access/api-key';
import { MemoryCounterStore, RedisCounterStore } from './access/counter.store';
import { connectBulkRedis, connectRedis, connectSubscriber, logOutages } from './access/redis-connection';
import { AdminAuth } from './admin/admin-auth';
import { OidcAdminAuth } from './admin/admin-oidc';
import { redisAuditAppend, ResponsesPurge, type AuditAppend } from './admin/responses-purge.service';
import { BillingClient } from './billing.client';
import { BudgetAdminService } from './budgets/budget-admin.service';
import { BudgetService } from './budgets/budget.service';
import type { FileStore } from './batches/file-store';
import { MemoryFileStore } from './batches/memory-file-store';
import { RedisFileStore } from './batches/redis-file-store';
import { MemoryResponseStore } from './responses/memory-response-store';
import { RedisResponseStore } from './responses/redis-response-store';
import { StoredResponses } from './responses/stored-responses';
import { MemoryChatCompletionStore } from './chat-store/memory-chat-completion-store';
import { RedisChatCompletionStore } from './chat-store/redis-chat-completion-store';
import { StoredChatCompletions } from './chat-store/stored-chat-completions';
import { MemoryBackgroundStore } from './responses/background-store';
import { RedisBackgroundStore } from './responses/redis-background-store';
import { RedisResponseEventLog } from './responses/redis-response-event-log';
import { MemoryResponseEventLog } from './responses/response-event-log';
import { BackgroundRunner } from './responses/background-runner';
import { Conversations } from './conversations/conversations';
import { MemoryConversationStore } from './conversations/memory-conversation-store';
import { RedisConversationStore } from './conversations/redis-conversation-store';
import { BatchRunner } from './batches/batch-runner';
import { OwnApiClient } from './batches/own-api';
import { MemoryBatchStore } from './batches/batch-store';
import { RedisBatchStore } from './batches/redis-batch-store';
import { connectBudgetRedis } from './budgets/budget-redis';
import { lifecycleStarts, ResponseCache } from './cache/response-cache';
import { MemoryResponseCacheStore, RedisResponseCacheStore } from './cache/response-cache.store';
import { EmbeddingInputLimits } from './routes/embedding-input-limit';
import { IngressModule } from './ingress.module';
import { alertHistoryFor, IngressTelemetry } from './observability/ingress-telemetry';
import { RouterClient, type RouterTimeouts } from './router.client';
import { InProcessRouter, RouterPort, type RouterCalls } from './router.port';
import { WsGateway } from './ws/ws.gateway';
import { createUsagePublisher } from './usage/usage-publisher.factory';
import { UsageRecorder } from './usage/usage-recorder';
import { endUserIds } from './usage/end-user-ids';

export { hashApiKey, generateApiKey, API_KEY_PREFIX, ADMIN_KEY_PREFIX } from './access/api-key';
export { RedisCounterStore, MemoryCounterStore, type CounterCharge } from './access/counter.store';
export { RateLimiter } from './access/rate-limiter';
export { RedisAccessRepository, type AccessEvent } from './access/access.repository';
export { connectRedis, connectSubscriber } from './access/redis-connection';
export { connectBudgetRedis } from './budgets/budget-redis';
export { ResponseCache, lifecycleStarts, type CachePlan, type CacheHit } from './cache/response-cache';
export { MemoryResponseCacheStore, RedisResponseCacheStore, type ResponseCacheStore } from './cache/response-cache.store';
export { MemoryFileStore } from './batches/memory-file-store';
export { RedisFileStore } from './batches/redis-file-store';
export { newFileId, type FileStore, type StoredFile, type FileListQuery } from './batches/file-store';
export { ownerOf } from './access/owner';

export interface IngressHandle extends ServiceHandle {
  /** Port of the internal listener (`ingress.internalHttp`: probes and metrics), when configured. */
  readonly internalHttpPort: number | undefined;
  /** The accepted development key, and whether it was generated because none was configured. */
  readonly devKey: string;
  readonly devKeyGenerated: boolean;
  /** The development admin key ('' when disabled), and whether it was generated. */
  readonly adminKey: string;
  readonly adminKeyGenerated: boolean;
  /** Budget reservations, and where threshold crossings go (an in-process bus unless usage.bus is kafka). */
  readonly budgets: BudgetService;
  readonly budgetEvents: BudgetEventPublisher;
}

export interface IngressOptions {
  /** The router called in process (the embedded gateway); without it, over gRPC at `ingress.router`. */
  router?: RouterCalls;
  /** The embedded gateway's in-process usage bus; without it ingress publishes per `usage.bus`. */
  usagePublisher?: UsagePublisher;
  /** Tracing exporter override (tests). */
  telemetry?: TelemetryOptions;
  /** The embedded gateway's analytics store, where alert history is read from. */
  analyticsStore?: ClickHouseTarget;
  /** Where budget threshold events go; without it, Kafka when usage.bus is kafka, else an in-process bus. */
  budgetEvents?: BudgetEventPublisher;
}

export function generateDevKey(): string {
  return `sk-or-dev-${randomBytes(24).toString('base64url')}`;
}

/**
 * How long ingress waits on the router. A chat's first message comes when the router has a first
 * answer event, which its own retry deadline bounds (a non-streamed attempt started just before it
 * may still run a whole completion), after the guardrails' moderation calls, if any, which
 * `guardrails.moderationTimeoutMs` bounds (and `deadlineMs`, the most it is given): ingress waits
 * all that plus `grpc.callTimeoutMs`, so only a router that hangs is cut, never one still failing
 * over, nor one whose moderation model did not answer (its fail mode answers, open or closed).
 */
export function routerTimeouts(config: GatewayConfig): RouterTimeouts {
  const { deadlineMs, completionTimeoutMs } = config.routing.retry;
  const moderation = Math.min(config.guardrails.moderationTimeoutMs, deadlineMs);
  const margin = config.grpc.callTimeoutMs;
  // Each is at most MAX_TIMER_MS, their sum may not be: a wait past the longest a Node.js timer
  // waits would be taken as 1 ms (every call cut at once), so it is cut to that (about 24.8 days).
  const bounded = (ms: number): number => Math.min(ms, MAX_TIMER_MS);
  return { callMs: config.grpc.callTimeoutMs, firstStreamedMs: bounded(moderation + deadlineMs + margin), wholeAnswerMs: bounded(moderation + deadlineMs + completionTimeoutMs + margin) };
}

/** Starts the edge: the OpenAI-compatible HTTP API in front of the router. */
export async function startIngress(config: GatewayConfig, logger: Logger, options: IngressOptions = {}): Promise<IngressHandle> {
  const telemetry = new IngressTelemetry(createTelemetry('ingress', config.observability, { logger, ...options.telemetry, edge: true }), logger, config.observability.log.debugSizes);
  const alertHistory = alertHistoryFor(config, options.analyticsStore);
  const devKeyGenerated = config.ingress.devKey === '';
  // `disabled`: no development key at all (production, where keys are issued through the admin API).
  const devKey = devKeyGenerated ? generateDevKey() : config.ingress.devKey === 'disabled' ? '' : config.ingress.devKey;
  const adminKeyGenerated = config.access.admin.devKey === '';
  const adminKey = adminKeyGenerated ? generateApiKey(ADMIN_KEY_PREFIX) : config.access.admin.devKey === 'disabled' ? '' : config.access.admin.devKey;
  const grpcSecurity = GrpcSecurity.fromConfig(config.grpc);
  const router: RouterPort = options.router ? new InProcessRouter(options.router) : new RouterClient(config.ingress.router, routerTimeouts(config), grpcSecurity, tracingClientOptions(telemetry.telemetry.tracing), logger);
  const { url: redisUrl, keyPrefix } = config.access.redis;
  const memoryAccess = redisUrl ? undefined : new MemoryAccessRepository();
  const repository = memoryAccess ?? new RedisAccessRepository(config.access.redis, keyPrefix);
  // Budgets created through the admin API: in Redis beside the tenants, their changes in the same
  // audit log; without Redis in this process, like tenants (gone when it stops).
  const budgetStore = redisUrl
    ? connectBudgetStore(config.access.redis, keyPrefix, { auditLog: auditLogOf(keyPrefix) })
    : new MemoryBudgetStore((entry) => memoryAccess?.appendAudit(auditEntrySchema.parse(entry)));
  const budgetCatalog = new BudgetCatalog(config.budgets.list, budgetStore, logger);
  const counterRedis = redisUrl ? connectRedis(config.access.redis) : undefined;
  if (counterRedis) logOutages(counterRedis, logger, 'rate-limit counters');
  const counters = counterRedis ? new RedisCounterStore(counterRedis, keyPrefix) : new MemoryCounterStore();
  const [storeReady, countersReady, budgetsLoaded] = await Promise.all([repository.ready(), counterRedis ? whenReady(counterRedis, 3_000) : true, budgetCatalog.start()]);
  if (!storeReady || !countersReady) logger.warn('Redis is not reachable yet; keys and limits follow the configured fail mode until it is');
  if (!budgetsLoaded) {
    logger.warn(
      { failMode: config.budgets.failMode },
      config.budgets.failMode === 'closed'
        ? 'the budgets created through the admin API have not loaded: requests are refused (503 budget_store_unavailable) and the replica is not ready until they have (budgets.failMode closed)'
        : 'the budgets created through the admin API have not loaded: requests are admitted under the configured budgets alone until they have (budgets.failMode open)',
    );
  }
  const storeFailures = new Counter({
    name: 'openrouter_rate_limit_store_failures_total',
    help: 'Rate-limit checks that could not reach Redis, by the fail mode applied (open: served unlimited; closed: refused).',
    labelNames: ['fail_mode'],
    registers: [telemetry.telemetry.registry],
  });
  const addressRefusals = new Counter({
    name: 'openrouter_address_refused_requests_total',
    help: 'Requests refused because they came from an address an allow list does not hold (policy.allowedIps of a key or its tenants; access.admin.allowedIps), by API (v1, admin).',
    labelNames: ['api'],
    registers: [telemetry.telemetry.registry],
  });
  const failMode = config.access.rateLimits.failMode;
  const access = new AccessService(config, repository, counters, logger, devKey, () => storeFailures.inc({ fail_mode: failMode }), {
    // Answers to admin writes sent with an Idempotency-Key: in the shared Redis, so a retry reaching another replica is replayed.
    idempotencyStore: counterRedis ? new RedisIdempotencyStore(counterRedis, keyPrefix) : undefined,
    onAddressRefused: (api) => addressRefusals.inc({ api }),
  });
  await access.start();
  const adminOidc = config.access.admin.oidc ? new OidcAdminAuth(config.access.admin.oidc, logger) : undefined;
  const adminAuth = new AdminAuth({ current: config.access.keyHashSecret, previous: config.access.previousKeyHashSecrets }, config.access.admin.keys, adminKey || undefined, adminOidc);
  const readiness = [{ name: 'router', check: () => router.isReachable(500) }];
  // With a fail mode of `closed`, requests are refused while Redis is away: the replica is not ready
  // then. For budgets only while there are any, which the admin API may create at any time, and
  // until the budgets created there have loaded once (every request is refused until then).
  const budgetsGate = config.budgets.failMode === 'closed';
  if (counterRedis && (failMode === 'closed' || budgetsGate)) {
    readiness.push({ name: 'redis', check: async () => (failMode !== 'closed' && budgetCatalog.loaded && budgetCatalog.empty) || (await counterRedis.ping()) === 'PONG' });
  }
  // Only a store in Redis can be away at start; the memory store has loaded by now.
  if (budgetsGate && redisUrl) readiness.push({ name: 'budgets', check: async () => budgetCatalog.loaded });
  const publisher = options.usagePublisher ?? (await createUsagePublisher(config, logger));
  const prices = PriceBook.fromModels(config.models);
  // The router may serve a model this ingress has no price for (added without restarting it): loud, not silent.
  const unpriced = new UnpricedModels(telemetry.telemetry.registry, logger);
  const usage = new UsageRecorder(
    telemetry.instrumentPublisher(publisher),
    prices,
    logger,
    (event, decision, endpoint) => {
      unpriced.check(event);
      telemetry.metered(event, decision, endpoint);
    },
    endUserIds(config.usage),
    config.usage.endUsers,
  );
  const budgetEvents =
    options.budgetEvents ?? (config.usage.bus === 'kafka' ? new KafkaBudgetPublisher(config.usage.kafka, config.budgets.topic, logger) : new InProcessBudgetBus(logger));
  const budgetRedis = redisUrl ? connectBudgetRedis(config.access.redis) : undefined;
  if (budgetRedis) logOutages(budgetRedis, logger, 'budget ledger');
  if (budgetRedis && !(await whenReady(budgetRedis, 3_000))) logger.warn('Redis is not reachable yet; requests under a budget follow budgets.failMode until it is');
  const budgetLedger = budgetRedis ? new RedisBudgetLedger(budgetRedis, keyPrefix) : new MemoryBudgetLedger();
  const budgets = new BudgetService(config, prices, budgetLedger, budgetEvents, logger, undefined, undefined, budgetCatalog);
  const budgetAdmin = new BudgetAdminService(budgets, budgetStore, config, logger);
  const billing = config.ingress.billing ? new BillingClient(config.ingress.billing, config.grpc.reportTimeoutMs, grpcSecurity) : undefined;
  // The response cache: in the access store's Redis (shared by every replica) when there is one, else a bounded LRU in this process.
  // Its own pub/sub connection carries the ends of misses coalesced across replicas.
  const cacheSubscriber = counterRedis && config.cache.enabled && config.cache.coalesceWaitMs > 0 && config.cache.coalesceAcrossReplicas ? connectSubscriber(config.access.redis) : undefined;
  const cache = config.cache.enabled
    ? new ResponseCache(
        config.cache,
        config.access.keyHashSecret,
        counterRedis ? new RedisResponseCacheStore(counterRedis, keyPrefix, cacheSubscriber) : new MemoryResponseCacheStore(config.cache.maxEntries),
        logger,
        telemetry.telemetry.registry,
        Date.now,
        lifecycleStarts(config.models),
        access,
      )
    : undefined;
  // Files of the Files API and batches, stored responses and conversations: in the access store's Redis (every replica's), on a connection of their own for large values, when there is one; else in this process.
  const bulkRedis = (config.batches.enabled || config.responses.store || config.chatCompletions.store) && redisUrl ? connectBulkRedis(config.access.redis) : undefined;
  if (bulkRedis) logOutages(bulkRedis, logger, 'batch files and stored responses');
  if (bulkRedis && !(await whenReady(bulkRedis, 3_000))) logger.warn('Redis is not reachable yet; the Files and Batch APIs and stored responses answer 503 until it is');
  // What these stores seal and index is keyed by the hash secret: what they kept under a previous one (while it is rotated) still opens.
  const storeSecrets = { current: config.access.keyHashSecret, previous: config.access.previousKeyHashSecrets };
  const files: FileStore | undefined = config.batches.enabled ? (bulkRedis ? new RedisFileStore(bulkRedis, keyPrefix, storeSecrets) : new MemoryFileStore()) : undefined;
  const responseStore = config.responses.store ? (bulkRedis ? new RedisResponseStore(bulkRedis, keyPrefix, storeSecrets) : new MemoryResponseStore({ maxResponses: config.responses.memoryMaxResponses, maxBytes: config.responses.memoryMaxBytes })) : undefined;
  const backgroundStore = responseStore && config.responses.background.enabled ? (bulkRedis ? new RedisBackgroundStore(bulkRedis, keyPrefix, storeSecrets) : new MemoryBackgroundStore()) : undefined;
  // The events of streamed background responses, read by clients on any replica: each append wakes the replicas reading it through a subscriber of its own.
  const responseEvents = backgroundStore
    ? bulkRedis
      ? new RedisResponseEventLog(bulkRedis, keyPrefix, storeSecrets, config.responses.background.pollMs, connectSubscriber(config.access.redis))
      : new MemoryResponseEventLog(Date.now, config.responses.memoryMaxResponses, config.responses.memoryMaxBytes)
    : undefined;
  const responses = responseStore && new StoredResponses(responseStore, config.responses, logger, telemetry.telemetry.registry, Date.now, backgroundStore, responseEvents);
  const conversationStore = config.responses.store
    ? bulkRedis
      ? new RedisConversationStore(bulkRedis, keyPrefix, storeSecrets)
      : new MemoryConversationStore({ maxConversations: config.responses.memoryMaxResponses, maxBytes: config.responses.memoryMaxBytes })
    : undefined;
  const conversations = conversationStore && new Conversations(conversationStore, config.responses, logger, telemetry.telemetry.registry);
  // Chat completions created with `store: true`, kept by the gateway whatever provider answered (docs/chat-completions-store.md).
  const chatCompletionStore = config.chatCompletions.store
    ? bulkRedis
      ? new RedisChatCompletionStore(bulkRedis, keyPrefix, storeSecrets)
      : new MemoryChatCompletionStore({ maxCompletions: config.chatCompletions.memoryMaxCompletions, maxBytes: config.chatCompletions.memoryMaxBytes })
    : undefined;
  const chatCompletions = chatCompletionStore && new StoredChatCompletions(chatCompletionStore, config.chatCompletions, access, logger, telemetry.telemetry.registry);
  // Audited in the access store's log: in Redis on the stores' connection, else this process's.
  const purgeAudit: AuditAppend = bulkRedis ? redisAuditAppend(bulkRedis, keyPrefix) : async (entry) => memoryAccess?.appendAudit(entry);
  const responsesPurge = config.responses.store || chatCompletionStore ? new ResponsesPurge(access, responseStore, conversationStore, purgeAudit, logger, Date.now, chatCompletionStore) : undefined;
  const batchStore = files && (bulkRedis ? new RedisBatchStore(bulkRedis, keyPrefix, storeSecrets, config.batches.fileRetentionDays * 86_400_000) : new MemoryBatchStore());
  const internalListen = config.ingress.internalHttp;
  const { app, port } = await startHttpApp(
    IngressModule.register({
      publicMetrics: internalListen === undefined,
      registry: telemetry.telemetry.registry,
      alertHistory: alertHistory.store,
      router,
      access,
      adminAuth,
      readiness,
      bounds: config.access.requests,
      formLimits: { audioBytes: config.ingress.limits.audioBytes, imageEditBytes: config.ingress.limits.imageEditBytes, bodyBytes: config.ingress.limits.bodyBytes, filesBytes: config.batches.maxFileBytes },
      embeddingInputLimits: new EmbeddingInputLimits(config),
      usage,
      budgets,
      budgetAdmin,
      billing,
      logger,
      cache,
      files,
      fileRetentionDays: config.batches.fileRetentionDays,
      batches: batchStore && { store: batchStore, config: { ...config.batches, jsonDepth: config.ingress.limits.jsonDepth } },
      responses,
      conversations,
      chatCompletions,
      responsesPurge,
    }),
    config.ingress.http,
    logger,
    {
      bodyLimit: config.ingress.limits.bodyBytes,
      jsonDepth: config.ingress.limits.jsonDepth,
      jsonHeaders: ['x-openrouter-route'],
      requestIds: true,
      tracing: telemetry.telemetry.tracing,
      metrics: telemetry.http,
      onResponded: telemetry.responded,
    },
  );
  // Metrics (and probes) for the internal network only, apart from the API's public listener.
  const internal = internalListen
    ? await startHttpApp(HealthModule.register('ingress', readiness, telemetry.telemetry.registry), internalListen, logger).catch(async (error: unknown) => {
        // The public listener is up already: a port that is taken must not leave it serving.
        await app.close();
        throw error;
      })
    : undefined;
  const ws = new WsGateway(access, router, config.access.requests, usage, budgets, config.ingress.limits, telemetry.telemetry.tracing, cache, chatCompletions);
  ws.attach(app.getHttpServer());
  // Every replica runs batches and background responses: requests to its own API, as the key that created them.
  const ownApi = batchStore || backgroundStore ? new OwnApiClient(config.ingress.http.host, port, (batchStore ? config.batches.concurrency : 0) + (backgroundStore ? config.responses.background.concurrency : 0)) : undefined;
  const batchRunner = files && batchStore && ownApi ? new BatchRunner(config.batches, batchStore, files, (request) => ownApi.call(request), access.internalCalls, logger, telemetry.telemetry.registry) : undefined;
  batchRunner?.start();
  const backgroundRunner =
    responses && backgroundStore && ownApi ? new BackgroundRunner(config.responses.background, backgroundStore, responses, (request) => ownApi.call(request), access.internalCalls, logger, telemetry.telemetry.registry) : undefined;
  if (responses && backgroundRunner) responses.onCancel = (id) => backgroundRunner.cancelled(id);
  backgroundRunner?.start();
  logger.info({ httpPort: port, internalHttpPort: internal?.port, router: config.ingress.router }, 'ingress started');
  let closing: Promise<void> | undefined;
  return {
    name: 'ingress',
    httpPort: port,
    internalHttpPort: internal?.port,
    devKey,
    devKeyGenerated,
    adminKey,
    adminKeyGenerated,
    budgets,
    budgetEvents,
    close() {
      closing ??= shutDown();
      return closing;
    },
  };

  async function shutDown(): Promise<void> {
    // HTTP requests and WebSocket sessions drain together, up to the grace; what is still open
    // then is ended (a stream with a shutting_down error event, a WebSocket request with its 499
    // frame) or cut, and metered as cancelled, so its usage event is produced before the process exits.
    const graceMs = config.ingress.limits.shutdownGraceMs;
    // Each step whatever the ones before it did: a listener that fails to close must not keep the usage from being handed on and flushed.
    await closeEach('ingress', [
      // Probes on the internal listener see the replica go at once, as the public listener stops taking requests.
      () => internal?.app.close(),
      async () => {
        // Once the runners stop, their own-API connections go: kept alive, they would hold the listener open for the whole grace.
        const runnersDone = [batchRunner?.close(graceMs), backgroundRunner?.close(graceMs)].filter((done) => done !== undefined);
        const batchesDone = runnersDone.length > 0 ? [Promise.all(runnersDone).then(() => ownApi?.close())] : [];
        if (await closeWithinGrace(app, graceMs, [ws.close(graceMs), ...batchesDone])) logger.warn({ graceMs }, 'requests still in flight after the shutdown grace were ended as cancelled');
      },
      // Every request's usage event is handed over, then the publisher flushes.
      () => usage.drain(),
      () => (options.usagePublisher ? undefined : publisher.close()),
      () => budgetAdmin.close(),
      () => budgets.close(),
      () => billing?.close(),
      () => router.close(),
      () => access.close(),
      () => cache?.close(),
      // The memory store lets go of its files; the Redis one holds nothing of its own (the connection is the counters').
      () => files?.close(),
      () => responseStore?.close(),
      () => backgroundStore?.close(),
      () => responseEvents?.close(),
      () => conversationStore?.close(),
      // Completions still being kept are written before their store goes.
      async () => {
        await chatCompletions?.drain();
        await chatCompletionStore?.close();
      },
      () => ownApi?.close(),
      () => bulkRedis?.disconnect(),
      () => counters.close(),
      () => alertHistory.close(),
      () => telemetry.telemetry.close(),
    ]);
  }
}
