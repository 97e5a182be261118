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
export interface RoutingEngine {
  config: Pick<GatewayConfig, 'models' | 'routing'>;
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

export function createRoutingEngine(config: Pick<GatewayConfig, 'models' | 'routing'>, options: EngineOptions = {}): RoutingEngine {
  const clock = options.clock ?? systemClock;
  const random = options.random ?? seededRandom(config.routing.seed ?? Math.floor(Math.random() * 2 ** 32));
  const catalog = new ModelCatalog(config);
  const stats = new LiveStats(clock, config.routing.latencyEwmaAlpha);
  const breakers = new CircuitBreakers(config.routing.breaker, clock);
  const experiments = new AbExperiments(config.routing.experiments);
  const grayReleases = new GrayReleases(config.routing.grayReleases, clock);
  const planner = new RoutePlanner({ catalog, routing: config.routing, stats, breakers, experiments, grayReleases, random });
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
