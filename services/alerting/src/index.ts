import type { GatewayConfig } from '@openrouter/config';
import type { budgetv1 } from '@openrouter/contracts';
import { GrpcSecurity, routerAddressesOf } from '@openrouter/grpc';
import { AlertingMetrics, ClickHouseAlertHistory, createTelemetry, UsageConsumerMetrics, type AlertHistoryStore, type Logger, type ReadinessCheck, type TelemetryOptions } from '@openrouter/observability';
import { createRedisClient, HealthModule, RedisLease, startHttpApp, waitForClickHouse, waitForUsageBus, type ServiceHandle } from '@openrouter/service-runtime';
import { createClickHouse, migrate, USAGE_MIGRATIONS, type ClickHouseTarget, type UsageMessage, type UsageSource } from '@openrouter/usage';
import { AlertingService } from './alerting.service';
import { budgetPeriodEndOf, startBudgetCatalog } from './rules/budget-period-end';
import type { NotificationChannel } from './channels/notification';
import { SlackChannel } from './channels/slack.channel';
import { WebhookChannel } from './channels/webhook.channel';
import { DeliveryQueue } from './delivery/delivery-queue';
import { sendHandedOver } from './delivery/handed-over';
import { HistoryWriter } from './delivery/history-writer';
import { KafkaAlertSource } from './sources/kafka-alert.source';
import { RouterReplicaMetrics } from './sources/router-replica.metrics';
import { RouterStatusSource } from './sources/router-status.source';
import { ActiveReplica, type ReplicaRole } from './standby/active-replica';
import { ActiveRoleMetrics } from './standby/active-role.metrics';
import { cooldownRetentionOf, RedisAlertingState, type AlertingStateRepository } from './state/alerting-state.repository';

export { AlertingService } from './alerting.service';
export type { ReplicaRole } from './standby/active-replica';
export { RedisAlertingState } from './state/alerting-state.repository';
export { signPayload, verifySignature, SIGNATURE_HEADER, TIMESTAMP_HEADER, DELIVERY_HEADER } from './channels/webhook.channel';

export interface AlertingDependencies {
  /** The embedded gateway's in-process usage bus; without it alerting consumes Kafka per `usage.bus`. */
  usageSource?: UsageSource;
  /** The embedded gateway's in-process budget events. */
  budgetEvents?: { subscribe(handler: (event: budgetv1.BudgetEvent) => void): () => void };
  /** The embedded gateway's analytics store (one chDB per process); else a ClickHouse server from `usage.clickhouse.url`. */
  store?: ClickHouseTarget;
  /** The router's gRPC address (the embedded gateway's loopback port); else `observability.alerting.router` (one or a list). */
  routerAddress?: string;
  telemetry?: TelemetryOptions;
  /** Aborted when the process is told to stop during the start: the wait for ClickHouse ends, and the start with it. */
  stopping?: AbortSignal;
  /** The active replica's lease time to live (with `access.redis`); 15 s unless a test shortens it. */
  leaseTtlMs?: number;
}

export interface AlertingHandle extends ServiceHandle {
  /** The service while this replica is the active one; undefined while it stands by. */
  readonly alerting: AlertingService | undefined;
  /** Active (consuming, polling, evaluating, notifying) or standing by for the active replica's lease. */
  role(): ReplicaRole;
  /** Resolves once every alert transition so far (of the active part running now) is written to the history store. */
  historyFlushed(): Promise<void>;
}

/** The parts of the active replica that outlive its start: what its handle and metrics read. */
interface ActiveParts {
  service: AlertingService;
  history: HistoryWriter;
  router: RouterStatusSource | undefined;
  kafka?: KafkaAlertSource;
}

/** What restores firing alerts and keeps history: the ClickHouse history, or without it the alerting state in Redis. */
type FiringStore = Pick<AlertHistoryStore, 'append' | 'firing'>;

/** The active replica's lease lives this long in Redis; renewed every third of it, given up at two thirds without a renewal. */
const ACTIVE_LEASE_TTL_MS = 15_000;

function channelsOf(config: GatewayConfig): NotificationChannel[] {
  return config.observability.alerting.channels.map((c) => (c.kind === 'webhook' ? new WebhookChannel(c.id, c.url, c.secret, c.headers) : new SlackChannel(c.id, c.url)));
}

/**
 * Starts the alerting service: takes usage and budget events (consumer group `alerting`, or the
 * in-process buses of the embedded gateway), evaluates the configured rules over windowed
 * aggregates, notifies webhook and Slack channels in the background and keeps alert history.
 */
export async function startAlerting(config: GatewayConfig, logger: Logger, deps: AlertingDependencies = {}): Promise<AlertingHandle> {
  const settings = config.observability.alerting;
  const telemetry = createTelemetry('alerting', config.observability, { logger, ...deps.telemetry });
  const metrics = new AlertingMetrics(telemetry.registry);
  const consumerMetrics = new UsageConsumerMetrics(telemetry.registry, settings.consumerGroup);
  const own = deps.store ? undefined : config.usage.clickhouse.url ? createClickHouse(config.usage.clickhouse, config.gateway.dataDir, logger) : undefined;
  const target = deps.store ?? own;
  const cleanups: Array<() => Promise<void> | void> = [];
  let http: Awaited<ReturnType<typeof startHttpApp>> | undefined;
  try {
    // `/ready` reads this list on each request: each check joins it as what it watches starts.
    // Alerting serves `/ready` from the beginning, to say what it waits for, but is ready only once
    // the whole start is done (the history store migrated, the budget catalog loaded, the events
    // consumed: its Kafka consumer joined its group), or it stands by for the active replica. Until
    // then `starting` fails: without ClickHouse no other check would say so.
    const starting: ReadinessCheck = { name: 'starting', check: async () => false };
    const readiness: ReadinessCheck[] = [starting];
    // A ClickHouse server started after alerting is waited for (not ready meanwhile, saying why), then migrated.
    const storeWait = target
      ? waitForClickHouse({
          store: target,
          config: config.usage.clickhouse,
          what: 'the alert history store (ClickHouse)',
          prepare: () => migrate(target.client, target.database, USAGE_MIGRATIONS),
          logger,
          initialDelayMs: config.usage.consumer.retryInitialMs,
          maxDelayMs: config.usage.consumer.retryMaxMs,
          signal: deps.stopping,
        })
      : undefined;
    if (storeWait) {
      cleanups.push(() => storeWait.stop());
      readiness.push(storeWait.readiness('clickhouse'));
    }
    http = await startHttpApp(HealthModule.register('alerting', readiness, telemetry.registry), config.alerting.http, logger);
    let store: FiringStore | undefined;
    if (target && storeWait) {
      // Nothing is consumed before: what was firing is taken back from the history first, and what fires next is written to it.
      await storeWait.ready;
      const history = new ClickHouseAlertHistory(target.client, target.database);
      store = { append: (entries) => consumerMetrics.timeInsert('alert_history', () => history.append(entries)), firing: (limit) => history.firing(limit) };
    }
    const budgetPeriodEnd = budgetPeriodEndOf(await startBudgetCatalog(config, logger, cleanups));
    const routerAddresses = routerAddressesOf(deps.routerAddress ?? settings.router);
    const security = GrpcSecurity.fromConfig(config.grpc);
    const kafkaInput = !deps.usageSource && config.usage.bus === 'kafka';
    if (!deps.usageSource && !kafkaInput) logger.warn('usage.bus is in-process but alerting runs on its own: no usage events will arrive (use usage.bus: kafka)');
    const redis = config.access.redis;
    // Several replicas stand by for one another on a lease in Redis; the embedded gateway's alerting watches its own process's bus, alone.
    const replicated = redis.url !== '' && !deps.usageSource;
    // What must outlive the active replica (undelivered notifications, cooldowns; firing alerts when no history is kept) is kept in Redis for the next.
    let state: AlertingStateRepository | undefined;
    if (replicated) {
      const stateRedis = createRedisClient(redis, { maxRetriesPerRequest: 1 });
      stateRedis.on('error', (error: unknown) => logger.debug({ err: error }, 'alerting state connection error'));
      cleanups.push(() => stateRedis.disconnect());
      // Cooldowns are kept as long as the longest a rule has: a shorter time would lose those longer than it at a hand-over.
      state = new RedisAlertingState(stateRedis, redis.keyPrefix, (what) => logger.warn(`${what} kept in Redis could not be read: skipped`), Date.now, cooldownRetentionOf(settings.rules));
    }
    if (!store && state) {
      logger.warn('no ClickHouse server configured (usage.clickhouse.url): alert history is not kept; firing alerts are kept in Redis for the next active replica');
      store = state;
    } else if (!store) {
      logger.warn('no ClickHouse server configured (usage.clickhouse.url): alert history is not kept');
    }
    let replica: ActiveReplica | undefined;
    /** What runs while this replica is the active one (always, without Redis). */
    let active: ActiveParts | undefined;
    const mayAct = (): boolean => replica?.isActive() ?? true;
    // Read at scrape time, so they outlive each start and stop of the active part.
    if (routerAddresses.length > 0) new RouterReplicaMetrics(telemetry.registry, () => active?.router?.snapshot());
    new ActiveRoleMetrics(telemetry.registry, () => (replica ? replica.current === 'active' : true));
    if (deps.usageSource) consumerMetrics.readLagFrom(() => deps.usageSource?.lag() ?? Promise.resolve(0));
    // Brokers not reachable yet (a Kafka started, or restarted, alongside alerting) are waited for,
    // not ready meanwhile and saying which setting names them, as billing does: without the wait
    // kafkajs's last retry ended the start (a restart loop), or, standing by for one another, the
    // replicas took and gave up the lease every few seconds.
    const bus = kafkaInput
      ? waitForUsageBus(config.usage, 'alerting', logger, { initialDelayMs: config.usage.consumer.retryInitialMs, maxDelayMs: config.usage.consumer.retryMaxMs, signal: deps.stopping })
      : undefined;
    if (bus) {
      cleanups.push(() => bus.stop());
      const waiting = bus.readiness('kafka');
      readiness.push(waiting);
      await bus.ready;
      readiness.splice(readiness.indexOf(waiting), 1);
    }
    if (kafkaInput) {
      // A standby is not in the consumer group: no lag of its own, and the group's consumer is the active one's.
      consumerMetrics.readLagFrom(() => active?.kafka?.lag() ?? Promise.resolve(0));
      // A standby runs no consumer: no series (a 0 would read as kafkajs having stopped it).
      consumerMetrics.readRunningFrom(() => active?.kafka?.isRunning());
      // Not ready while kafkajs has stopped the consumer for good and fresh ones are tried; a standby consumes nothing, and is ready.
      readiness.push({
        name: 'kafka',
        check: async () => {
          const kafka = active?.kafka;
          return !kafka || (kafka.isRunning() && (await kafka.lag()) >= 0);
        },
        details: async () => (active?.kafka ? { ...active.kafka.status() } : { state: 'standby' }),
      });
    }
    if (replicated) readiness.push({ name: 'role', check: async () => true, details: async () => ({ role: replica?.current ?? 'active' }) });

    // As a restarted alerting starts: the firing alerts taken back from the history, windows empty, Kafka from the group's offsets.
    const startActive = async (): Promise<() => Promise<void>> => {
      const stops: Array<() => Promise<void> | void> = [];
      const stopAll = async (): Promise<void> => {
        active = undefined;
        for (const stop of stops.reverse()) await stop();
      };
      try {
        const history = new HistoryWriter(store, logger);
        stops.push(() => history.close());
        // Delivers while the lease is held, shutting down included; what is left then is handed over through Redis.
        const mayDeliver = (): boolean => replica?.holdsLease() ?? true;
        const delivery = new DeliveryQueue(settings.delivery, metrics, logger, Math.random, mayDeliver, state ? (left) => state.handOff(left) : undefined);
        // Handed-over deliveries with an outcome, being removed from Redis: waited for after the queue closes.
        const finishing = new Set<Promise<void>>();
        stops.push(async () => {
          await Promise.all(finishing);
        });
        stops.push(() => delivery.close());
        const router = routerAddresses.length > 0 ? new RouterStatusSource({ addresses: routerAddresses, discovery: settings.routerDiscovery, intervalMs: settings.routerPollMs }, logger, security) : undefined;
        if (router) stops.push(() => router.close());
        const channels = channelsOf(config);
        const service = new AlertingService(settings, { channels, delivery, history, metrics, logger, router: router ? () => router.snapshot() : undefined, budgetPeriodEnd, mayAct, cooldowns: state });
        stops.push(() => service.close());
        const parts: ActiveParts = { service, history, router };
        active = parts;

        const takeUsage = (messages: UsageMessage[]): Promise<void> =>
          telemetry.tracing.consume(`${config.usage.kafka.topic} process`, messages.map((m) => m.headers), () => service.takeUsage(messages));
        if (deps.usageSource) {
          await deps.usageSource.start(takeUsage);
        } else if (kafkaInput) {
          const kafka = new KafkaAlertSource(config, logger);
          stops.push(() => kafka.close());
          parts.kafka = kafka;
          await kafka.start({ usage: takeUsage, budget: service.takeBudget, mayTake: mayAct });
        }
        const unsubscribe = deps.budgetEvents?.subscribe((event) => service.observeBudget(event));
        if (unsubscribe) stops.push(unsubscribe);
        if (state) await restoreCooldowns(service, state, logger);
        if (store) await restoreFiring(service, store, logger);
        if (state) {
          // What a stopped replica left undelivered; taken again every round, for a replica that stopped after this one started.
          // The first take that succeeds also takes what a previous active replica had taken and never finished (it died).
          let retaken = false;
          let taking: Promise<void> | undefined;
          const takeHandedOver = (): Promise<void> =>
            (taking ??= sendHandedOver(state, service, delivery, logger, !retaken, finishing)
              .then((taken) => {
                retaken ||= taken;
              })
              .finally(() => {
                taking = undefined;
              }));
          await takeHandedOver();
          const timer = setInterval(() => void takeHandedOver(), settings.evaluateIntervalMs);
          timer.unref();
          stops.push(() => clearInterval(timer));
        }
        router?.start(() => undefined);
        service.start();
        return stopAll;
      } catch (error) {
        await stopAll().catch(() => undefined);
        throw error;
      }
    };

    if (replicated) {
      const ttlMs = deps.leaseTtlMs ?? ACTIVE_LEASE_TTL_MS;
      const leaseRedis = createRedisClient(redis, { maxRetriesPerRequest: 1, commandTimeout: Math.max(1, Math.floor(ttlMs / 3)) });
      // A failed renewal logs its error; the connection's own are details.
      leaseRedis.on('error', (error: unknown) => logger.debug({ err: error }, 'alerting lease connection error'));
      const started = new ActiveReplica(new RedisLease(leaseRedis, `${redis.keyPrefix}alerting:active`, ttlMs), startActive, logger, { ttlMs });
      replica = started;
      cleanups.push(async () => {
        await started.close();
        leaseRedis.disconnect();
      });
      started.begin();
    } else {
      cleanups.push(await startActive());
    }

    readiness.splice(readiness.indexOf(starting), 1);
    const listening = http;
    logger.info({ httpPort: listening.port, rules: settings.rules.length, channels: settings.channels.length, router: routerAddresses.length > 0 ? routerAddresses.join(',') : null, routerDiscovery: settings.routerDiscovery, standby: replicated }, replicated ? 'alerting started: active on holding the lease, standing by meanwhile' : 'alerting started');
    return {
      name: 'alerting',
      httpPort: listening.port,
      get alerting() {
        return active?.service;
      },
      role: () => (replica ? replica.current : 'active'),
      historyFlushed: () => active?.history.flushed() ?? Promise.resolve(),
      async close() {
        await listening.app.close();
        for (const cleanup of cleanups.reverse()) await cleanup();
        await own?.client.close();
        await telemetry.close();
      },
    };
  } catch (error) {
    for (const cleanup of cleanups.reverse()) await Promise.resolve(cleanup()).catch(() => undefined);
    await own?.client.close().catch(() => undefined);
    await http?.app.close().catch(() => undefined);
    throw error;
  }
}

/** The cooldowns the previous active replica kept; unreadable ones are no reason not to start. */
async function restoreCooldowns(service: AlertingService, state: AlertingStateRepository, logger: Logger): Promise<void> {
  try {
    service.restoreCooldowns(await state.cooldowns());
  } catch (error) {
    logger.warn({ err: error }, 'alert cooldowns could not be read from Redis: alerts firing again may be notified before their cooldown ends');
  }
}

/** What was firing when alerting last stopped, from its history; a store that cannot say is no reason not to start. */
async function restoreFiring(service: AlertingService, store: FiringStore, logger: Logger): Promise<void> {
  try {
    const restored = service.restore(await store.firing());
    if (restored > 0) logger.info({ alerts: restored }, 'firing alerts taken back from the alert history');
  } catch (error) {
    logger.warn({ err: error }, 'firing alerts could not be read from the alert history: those still holding will notify again');
  }
}
