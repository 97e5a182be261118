import type { GatewayConfig } from '@openrouter/config';
import { ModelCatalog } from '../catalog/model-catalog';
import { TaskClassifier } from '../classifier/task-classifier';
import { AbExperiments } from '../experiments/ab-experiments';
import { GrayReleases } from '../experiments/gray-release';
import { CircuitBreakers } from '../resilience/circuit-breaker';
import type { FailoverDependencies } from '../resilience/failover';
import { seededRandom, systemClock, type Clock, type Random } from '../stats/clock';
import { LiveStats } from '../stats/deployment-stats';
import { RoutePlanner } from './route-planner';

/** Everything routing needs, per router process: catalog, live state, planner and failover settings. */
/**
 * What routing reads of the configuration; `providers` for their residency labels (tenant
 * policies), `budgets` for the tokens a second of audio counts for (`budgets.audio.tokensPerSecond`).
 */
export type RoutingConfig = Pick<GatewayConfig, 'models' | 'routing' | 'budgets'> & Partial<Pick<GatewayConfig, 'providers'>>;

export interface RoutingEngine {
  config: RoutingConfig;
  catalog: ModelCatalog;
  classifier: TaskClassifier;
  stats: LiveStats;
  breakers: CircuitBreakers;
  experiments: AbExperiments;
  grayReleases: GrayReleases;
  planner: RoutePlanner;
  failover: FailoverDependencies;
}

export interface EngineOptions {
  clock?: Clock;
  random?: Random;
  classifier?: TaskClassifier;
}

export function createRoutingEngine(config: RoutingConfig, options: EngineOptions = {}): RoutingEngine {
  const clock = options.clock ?? systemClock;
  const random = options.random ?? seededRandom(config.routing.seed ?? Math.floor(Math.random() * 2 ** 32));
  const catalog = new ModelCatalog(config, clock);
  const stats = new LiveStats(clock, config.routing.latencyEwmaAlpha);
  const breakers = new CircuitBreakers(config.routing.breaker, clock);
  const experiments = new AbExperiments(config.routing.experiments);
  const grayReleases = new GrayReleases(config.routing.grayReleases, clock);
  const residency = new Map(Object.entries(config.providers ?? {}).map(([id, provider]) => [id, provider.residency]));
  const planner = new RoutePlanner({ catalog, routing: config.routing, stats, breakers, experiments, grayReleases, random, residency });
  return {
    config,
    catalog,
    classifier: options.classifier ?? new TaskClassifier(),
    stats,
    breakers,
    experiments,
    grayReleases,
    planner,
    failover: { retry: config.routing.retry, contextFallback: config.routing.contextFallback, breakers, stats, clock, random },
  };
}
