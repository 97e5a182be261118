import { Counter, type Registry } from 'prom-client';

export type ReconciliationJob = 'budget' | 'rollup';

/** Billing's periodic reconciliations: runs, the corrections they made, the alerts they caught up. */
export class ReconciliationMetrics {
  private readonly runs: Counter<'job' | 'outcome'>;
  private readonly corrections: Counter<'job'>;
  private readonly thresholdEvents: Counter;

  constructor(registry: Registry) {
    const registers = [registry];
    this.runs = new Counter({
      name: 'openrouter_billing_reconciliation_runs_total',
      help: 'Periodic reconciliation runs, by job (budget, rollup) and outcome (ran, not_leader: another replica holds the lease, failed).',
      labelNames: ['job', 'outcome'],
      registers,
    });
    this.corrections = new Counter({
      name: 'openrouter_billing_reconciliation_corrections_total',
      help: 'Corrections made: budget accounts whose Redis spend was corrected, rollup groups whose day was corrected.',
      labelNames: ['job'],
      registers,
    });
    this.thresholdEvents = new Counter({
      name: 'openrouter_budget_threshold_events_caught_up_total',
      help: 'Budget threshold crossings published by the reconciliation because no settle had published them.',
      registers,
    });
  }

  ran(job: ReconciliationJob, corrections: number): void {
    this.runs.inc({ job, outcome: 'ran' });
    if (corrections > 0) this.corrections.inc({ job }, corrections);
  }

  notLeader(job: ReconciliationJob): void {
    this.runs.inc({ job, outcome: 'not_leader' });
  }

  failed(job: ReconciliationJob): void {
    this.runs.inc({ job, outcome: 'failed' });
  }

  thresholdsCaughtUp(count: number): void {
    if (count > 0) this.thresholdEvents.inc(count);
  }
}
