import { Counter } from 'prom-client';
import type { usagev1 } from '@openrouter/contracts';
import { label, type Logger, type Registry } from '@openrouter/observability';

/**
 * Requests served by a model the price list does not know (the router's catalog has a model the
 * ingress was not restarted for). They stay served, recorded at 0, but never silently: each such
 * request is counted, and the first one of each model is logged as an error.
 */
export class UnpricedModels {
  private readonly requests: Counter<'model'>;
  private readonly logged = new Set<string>();

  constructor(
    registry: Registry,
    private readonly logger: Logger,
  ) {
    this.requests = new Counter({
      name: 'openrouter_unpriced_requests_total',
      help: 'Requests served by a model missing from the price list this ingress loaded, recorded at cost 0 (restart the ingress after adding a model).',
      labelNames: ['model'],
      registers: [registry],
    });
  }

  /** Looks at a priced usage event: one with a served model but no price version had no price. */
  check(event: Pick<usagev1.UsageEvent, 'servedModel' | 'deployment' | 'cost'>): void {
    if (!event.servedModel || (event.cost?.priceVersion ?? '') !== '') return;
    this.requests.inc({ model: label(event.servedModel) });
    if (this.logged.has(event.servedModel)) return;
    this.logged.add(event.servedModel);
    this.logger.error(
      { model: event.servedModel, deployment: event.deployment },
      'a request was served by a model with no price in this ingress: it is recorded at cost 0 and budgets do not see it; restart the ingress with the configuration that lists the model',
    );
  }
}
