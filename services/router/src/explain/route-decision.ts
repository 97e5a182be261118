import { routerv1 } from '@openrouter/contracts';
import type { Candidate, RoutePlan } from '../routing/route-planner';

/** The decision for the deployment that served, with every attempt and why it was chosen. */
export function decisionFor(plan: RoutePlan, served: Candidate, attempts: routerv1.RouteAttempt[]): routerv1.RouteDecision {
  return {
    model: served.model.id,
    provider: served.deployment.provider,
    deployment: served.deployment.id,
    upstreamModel: served.deployment.model,
    attempts: attempts.length,
    taskType: plan.taskType ?? '',
    reason: routeReason(plan, served, attempts.length),
    experiment: plan.assignment?.experiment ?? '',
    experimentArm: plan.assignment?.arm ?? '',
    attemptDetails: attempts,
    strategy: plan.route.strategy,
    replacedModel: plan.replaced?.model,
    deprecation: deprecationOf(plan),
  };
}

/** The requested model's lifecycle, as the decision carries it to ingress (which answers with the headers). */
function deprecationOf(plan: RoutePlan): routerv1.ModelDeprecation | undefined {
  const notice = plan.deprecation;
  return notice && { model: notice.model, deprecatedAt: notice.deprecatedAt, retiresAt: notice.retiresAt, replacement: notice.replacement };
}

/** The route of a request that called nothing: only its experiment or gray release arm. */
export function assignedDecision(plan: RoutePlan): routerv1.RouteDecision {
  return {
    ...routerv1.RouteDecision.fromPartial({ taskType: plan.taskType ?? '', strategy: plan.route.strategy, replacedModel: plan.replaced?.model }),
    deprecation: deprecationOf(plan),
    experiment: plan.assignment?.experiment ?? '',
    experimentArm: plan.assignment?.arm ?? '',
  };
}

/** The decision while `calling` is being called: the attempts made before it, then this one, in progress. */
export function callingDecision(plan: RoutePlan, calling: Candidate, earlier: readonly routerv1.RouteAttempt[]): routerv1.RouteDecision {
  const inProgress: routerv1.RouteAttempt = {
    model: calling.model.id,
    provider: calling.deployment.provider,
    deployment: calling.deployment.id,
    status: routerv1.RouteAttemptStatus.ROUTE_ATTEMPT_STATUS_IN_PROGRESS,
    errorKind: '',
    latencyMs: 0,
    upstreamStatus: 0,
  };
  return decisionFor(plan, calling, [...earlier, inProgress]);
}

/** A short ASCII reason (it travels in a response header). */
export function routeReason(plan: RoutePlan, served: Candidate, attempts: number): string {
  const parts: string[] = [];
  const primary = plan.primary;
  if (plan.replaced) parts.push(`replacement for retired ${plan.replaced.model}`);
  if (served.via.startsWith('context fallback')) parts.push(served.via);
  else if (served.via !== primary) parts.push(`fallback ${served.via}`);
  else if (served.via !== served.model.id) parts.push(`${served.via}: ${plan.route.strategy} strategy`);
  // A replacement serving in a retired model's place is said so above.
  else if (!plan.replaced) parts.push('requested model');
  if (plan.route.minQuality > 0) parts.push(`min_quality ${plan.route.minQuality}`);
  if (plan.assignment) parts.push(`${plan.assignment.kind === 'experiment' ? 'experiment' : 'gray release'} ${plan.assignment.experiment} arm ${plan.assignment.arm}`);
  if (attempts > 1) parts.push(`failover after ${attempts - 1} failed attempt${attempts > 2 ? 's' : ''}`);
  return parts.join('; ');
}

