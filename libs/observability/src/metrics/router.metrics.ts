import { Counter, Gauge, type Registry } from 'prom-client';
import { label } from './metrics-registry';

export type CircuitState = 'closed' | 'half_open' | 'open';
export const CIRCUIT_STATE_VALUE: Record<CircuitState, number> = { closed: 0, half_open: 1, open: 2 };

export interface DeploymentCircuit {
  provider: string;
  deployment: string;
  state: CircuitState;
}

/** Attempts, retries, failovers and circuit state of the routing engine. */
export class RouterMetrics {
  readonly attempts: Counter<'provider' | 'deployment' | 'outcome'>;
  readonly retries: Counter<'provider' | 'deployment'>;
  readonly failovers: Counter<'from_deployment' | 'to_deployment'>;
  readonly circuit: Gauge<'provider' | 'deployment'>;
  readonly guardrailMatches: Counter<'rule' | 'action' | 'stage'>;
  readonly deprecatedModelRequests: Counter<'model'>;
  private circuits: () => DeploymentCircuit[] = () => [];

  constructor(registry: Registry) {
    const registers = [registry];
    this.attempts = new Counter({ name: 'openrouter_router_attempts_total', help: 'Calls to deployments, by outcome (ok or the canonical error kind).', labelNames: ['provider', 'deployment', 'outcome'], registers });
    this.retries = new Counter({ name: 'openrouter_router_retries_total', help: 'Attempts after the first one of a request (same or another deployment).', labelNames: ['provider', 'deployment'], registers });
    this.failovers = new Counter({ name: 'openrouter_router_failovers_total', help: 'Attempts that moved to another deployment than the previous attempt of the request.', labelNames: ['from_deployment', 'to_deployment'], registers });
    this.guardrailMatches = new Counter({
      name: 'openrouter_guardrail_matches_total',
      help: 'Guardrail matches, by rule id, action (block: the request was refused, or the answer cut; redact: matches replaced; flag: counted only; skipped: let through unscreened, its moderation model not answering) and stage (input: requests; output: answers).',
      labelNames: ['rule', 'action', 'stage'],
      registers,
    });
    this.deprecatedModelRequests = new Counter({
      name: 'openrouter_deprecated_model_requests_total',
      help: 'Requests naming a deprecated or retired model (served, sent to its replacement, or refused), by the model named.',
      labelNames: ['model'],
      registers,
    });
    const read = (): DeploymentCircuit[] => this.circuits();
    this.circuit = new Gauge({
      name: 'openrouter_circuit_state',
      help: 'Circuit breaker state per deployment: 0 closed, 1 half-open, 2 open.',
      labelNames: ['provider', 'deployment'],
      registers,
      collect() {
        this.reset();
        for (const c of read()) this.set({ provider: label(c.provider), deployment: label(c.deployment) }, CIRCUIT_STATE_VALUE[c.state]);
      },
    });
  }

  /** Where the circuit gauge reads the breakers from at scrape time. */
  readCircuitsFrom(source: () => DeploymentCircuit[]): void {
    this.circuits = source;
  }

  /** A guardrail rule matched a request (`input`) or an answer (`output`) `count` times (a block counts once: the request or the choice stops there). */
  /** `skipped`: a request went on unscreened by the rule, its moderation model not answering (fail mode open). */
  guardrailMatch(rule: string, action: 'block' | 'redact' | 'flag' | 'skipped', count: number, stage: 'input' | 'output'): void {
    this.guardrailMatches.inc({ rule: label(rule), action, stage }, count);
  }

  /** A request named a model past its `deprecatedAt` (or retired). */
  deprecatedModelRequest(model: string): void {
    this.deprecatedModelRequests.inc({ model: label(model) });
  }

  /** One attempt of a request ended (`index` counts from 0); `previousDeployment` is the attempt before's. */
  attempt(provider: string, deployment: string, outcome: string, index: number, previousDeployment: string | undefined): void {
    const labels = { provider: label(provider), deployment: label(deployment) };
    this.attempts.inc({ ...labels, outcome: label(outcome) });
    if (index > 0) this.retries.inc(labels);
    if (previousDeployment !== undefined && previousDeployment !== deployment) this.failovers.inc({ from_deployment: label(previousDeployment), to_deployment: labels.deployment });
  }
}
