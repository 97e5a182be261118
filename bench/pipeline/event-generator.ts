import { usagev1 } from '@openrouter/contracts';
import { emptyUsageEvent } from '@openrouter/usage';

/** The tenant and model spread of the synthetic events (also used by the SQL generator). */
export const SYNTHETIC_SHAPE = {
  orgs: 20,
  teamsPerOrg: 5,
  projectsPerTeam: 4,
  costCenters: 10,
  apps: 8,
  keys: 500,
  models: ['gpt-4o-mini', 'gpt-4o', 'claude-sonnet', 'gemini-flash', 'mistral-large', 'llama-70b'],
  providers: ['openai', 'anthropic', 'gemini'],
} as const;

/**
 * The i-th synthetic usage event of a run: a priced, valid chat or embedding event such as
 * ingress emits, with tenants, models and token counts varied deterministically by `i`.
 */
export function syntheticUsageEvent(runId: string, i: number, receivedAtMs: number): usagev1.UsageEvent {
  const s = SYNTHETIC_SHAPE;
  const event = emptyUsageEvent(`${runId}-${i}`, receivedAtMs);
  const org = i % s.orgs;
  const team = Math.floor(i / s.orgs) % s.teamsPerOrg;
  const project = Math.floor(i / (s.orgs * s.teamsPerOrg)) % s.projectsPerTeam;
  const prompt = 100 + (i % 2000);
  const completion = 20 + (i % 500);
  event.tenant = {
    orgId: `org-${org}`,
    teamId: `team-${team}`,
    projectId: `project-${project}`,
    appId: `app-${i % s.apps}`,
    costCenter: `cc-${i % s.costCenters}`,
    keyId: `key-${i % s.keys}`,
    endUser: '',
    tags: { env: 'bench' },
  };
  const model = s.models[i % s.models.length] ?? 'gpt-4o-mini';
  const provider = s.providers[i % s.providers.length] ?? 'openai';
  event.operation = i % 10 === 0 ? usagev1.Operation.OPERATION_EMBEDDING : usagev1.Operation.OPERATION_CHAT;
  event.requestedModel = model;
  event.servedModel = model;
  event.provider = provider;
  event.deployment = `${model}#0`;
  event.upstreamModel = model;
  event.attempts = [{ provider, deployment: `${model}#0`, status: usagev1.AttemptStatus.ATTEMPT_STATUS_OK, errorKind: '', latencyMs: 40 + (i % 200) }];
  event.tokens = { prompt, completion, cachedRead: 0, cacheWrite: 0, reasoning: 0, estimated: false };
  // 0.15 / 0.60 per 1M tokens, as exact decimal text (nano-dollars shifted by nine places).
  event.cost = { amount: nanosToDecimal(prompt * 150 + completion * 600), currency: 'USD', priceVersion: 'bench' };
  event.firstTokenAtMs = receivedAtMs + 20;
  event.completedAtMs = receivedAtMs + 40 + (i % 200);
  event.latencyMs = event.completedAtMs - receivedAtMs;
  event.ttftMs = 20;
  event.stream = i % 2 === 0;
  event.status = usagev1.Status.STATUS_OK;
  event.httpStatus = 200;
  return event;
}

function nanosToDecimal(nanos: number): string {
  const text = String(nanos).padStart(10, '0');
  return `${text.slice(0, -9)}.${text.slice(-9)}`;
}
