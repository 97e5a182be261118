import type { routerv1 } from '@openrouter/contracts';
import type { GatewayError } from '@openrouter/errors';
import type { TaskPrediction } from '../classifier/linear-model';
import type { ConsideredCandidate, RoutePlan } from '../routing/route-planner';
import { decisionFor } from './route-decision';

/** A plan as the explain endpoint shows it: task type, every candidate with its verdict, the decision. */
export type LiveLookup = (deploymentId: string) => { breakerState: string; outstanding: number };

export function explainPlan(plan: RoutePlan | undefined, prediction: TaskPrediction, error: GatewayError | undefined, requested = plan?.requested ?? '', live?: LiveLookup): routerv1.ExplainResponse {
  const first = plan?.candidates[0];
  const noRoute = plan && !first ? (plan.refusal?.message ?? `No deployment can serve \`${plan.requested}\` for this request: every candidate was filtered.`) : '';
  return {
    requestedModel: requested,
    taskType: prediction.taskType,
    taskScores: prediction.probabilities.map((p) => ({ taskType: p.taskType, probability: Number(p.probability.toFixed(4)) })),
    strategy: plan?.route.strategy ?? '',
    experiment: plan?.assignment?.experiment ?? '',
    experimentArm: plan?.assignment?.arm ?? '',
    candidates: (plan?.considered ?? []).map((c) => explainCandidate(c, live)),
    decision: plan && first ? { ...decisionFor(plan, first, []), attempts: 0 } : undefined,
    error: error?.message ?? noRoute,
    routeJson: plan ? JSON.stringify(plan.route) : '',
  };
}

function explainCandidate(c: ConsideredCandidate, live: LiveLookup | undefined): routerv1.ExplainedCandidate {
  const state = live?.(c.deployment.id);
  return {
    model: c.model.id,
    provider: c.deployment.provider,
    deployment: c.deployment.id,
    upstreamModel: c.deployment.model,
    via: c.via,
    eligible: c.filteredReason === '' && c.rank > 0,
    filteredReason: c.filteredReason || (c.rank === 0 ? 'not tried: fallbacks are off and another model ranked first' : ''),
    rank: c.rank,
    score: Number(c.score.toFixed(4)),
    scoreDetail: c.scoreDetail,
    quality: c.quality,
    priceInput: c.price.input.toString(),
    priceOutput: c.price.output.toString(),
    latencyMs: Math.round(c.latencyMs),
    breakerState: state?.breakerState ?? '',
    outstanding: state?.outstanding ?? 0,
  };
}
