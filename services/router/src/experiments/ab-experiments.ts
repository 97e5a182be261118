import type { ExperimentConfig } from '@openrouter/config';
import type { routerv1 } from '@openrouter/contracts';
import { stablePoint } from '../stats/clock';

export interface ArmAssignment {
  experiment: string;
  arm: string;
  /** The model or alias the arm routes to. */
  model: string;
}

/**
 * Who a request belongs to for stickiness: the end user the gateway records (`x-openrouter-user`,
 * else the body's `user`), else the body's `user` of a caller that sets no context, else the key,
 * else the request.
 */
export function stickyKey(stickiness: ExperimentConfig['stickiness'], context: Pick<routerv1.RequestContext, 'endUser' | 'keyId' | 'requestId'>, user: string | undefined): string {
  if (stickiness === 'user') return context.endUser || user || context.keyId || context.requestId;
  if (stickiness === 'key') return context.keyId || context.requestId;
  return context.requestId;
}

/** Picks an arm by the caller's stable point in [0, 1), so a caller stays on its arm. */
export function pickArm<T extends { weight: number }>(arms: readonly T[], point: number): T | undefined {
  const total = arms.reduce((sum, arm) => sum + arm.weight, 0);
  let edge = 0;
  for (const arm of arms) {
    edge += arm.weight / total;
    if (point < edge) return arm;
  }
  return arms.at(-1);
}

/** A/B experiments from configuration: a target name split into weighted, sticky arms. */
export class AbExperiments {
  private readonly byTarget: ReadonlyMap<string, ExperimentConfig>;

  constructor(experiments: readonly ExperimentConfig[]) {
    this.byTarget = new Map(experiments.filter((e) => e.enabled).map((e) => [e.target, e]));
  }

  assign(target: string, context: Pick<routerv1.RequestContext, 'endUser' | 'keyId' | 'requestId'>, user: string | undefined): ArmAssignment | undefined {
    const experiment = this.byTarget.get(target);
    if (!experiment) return undefined;
    const arm = pickArm(experiment.arms, stablePoint(`${experiment.id}:${stickyKey(experiment.stickiness, context, user)}`));
    return arm ? { experiment: experiment.id, arm: arm.name, model: arm.model } : undefined;
  }
}
