import { z } from 'zod';
import { accessPolicyIssues, accessReferenceIssues, accessSchema, devKeySchema, type OrgConfig } from './access.schema';
import { billingSchema, budgetsSchema, type BudgetConfig } from './budgets.schema';
import { cacheSchema } from './cache.schema';
import { chatCompletionsSchema } from './chat-completions.schema';
import { batchesSchema } from './batches.schema';
import { AUDIO_PROVIDER_TYPES, AUTO_MODEL, IMAGE_PROVIDER_TYPES, MODERATION_PROVIDER_TYPES, modelSchema, routingReferenceIssues, routingSchema } from './catalog.schema';
import { grpcAuthSchema, grpcTlsSchema } from './grpc.schema';
import { guardrailModelIssues, guardrailsSchema } from './guardrails.schema';
import { observabilitySchema } from './observability.schema';
import { address, flag, host, identifier, ipRange, kafkaTopicsCollide, listenSchema, MAX_TIMER_MS, port, strictObject, TIMER_TOO_LONG, type Listen } from './primitives';
import { providerSchema } from './providers.schema';
import { responsesSchema } from './responses.schema';
import { usageSchema } from './usage.schema';

export * from './access.schema';
export * from './batches.schema';
export * from './budgets.schema';
export * from './cache.schema';
export * from './catalog.schema';
export * from './chat-completions.schema';
export * from './grpc.schema';
export * from './guardrails.schema';
export * from './observability.schema';
export * from './pricing.schema';
export * from './primitives';
export * from './providers.schema';
export * from './responses.schema';
export * from './usage.schema';

const httpOnly = strictObject({ http: listenSchema });

/**
 * The longest `grpc.maxConnectionAgeMs` (about 22.6 days). grpc-js waits that long give or take up
 * to 10 %, at random, so that replicas do not reconnect together: the longest wait must still be
 * within MAX_TIMER_MS, or it would be taken as 1 ms for some connections (asked to go away as soon
 * as they are open, again and again). Exactly MAX_TIMER_MS it reads as never, which `0` says.
 */
export const MAX_CONNECTION_AGE_MS = Math.floor(MAX_TIMER_MS / 1.1);
const CONNECTION_AGE_TOO_LONG = `must be at most ${MAX_CONNECTION_AGE_MS} (ms, about 22.6 days): each connection's age is given up to 10 % more at random, and a Node.js timer waits at most ${MAX_TIMER_MS} ms (0 for never)`;

export const configSchema = strictObject({
  version: z.literal(1),
  gateway: strictObject({
    dataDir: z.string().min(1).default('.data'),
    simulator: strictObject({ enabled: flag.default(false), host, port: port.default(0), apiKey: z.string().default('') })
      .default({ enabled: false, host: '127.0.0.1', port: 0, apiKey: '' }),
  }).default({ dataDir: '.data', simulator: { enabled: false, host: '127.0.0.1', port: 0, apiKey: '' } }),
  log: strictObject({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') }).default({ level: 'info' }),
  ingress: strictObject({
    http: listenSchema,
    /**
     * A second listener for the internal network: `/health`, `/ready` and `/metrics`. Set, the
     * public listener (`http`) no longer serves `/metrics` (usage and cost figures of every tenant).
     */
    internalHttp: listenSchema.optional(),
    /**
     * Addresses (IPs, CIDR ranges) of the load balancers and proxies in front of ingress: a request
     * from one of them is taken to come from the address its `X-Forwarded-For` names, read from the
     * right past every trusted hop. Empty: the connection's peer is the client, whatever headers say.
     */
    trustedProxies: z.array(ipRange).default([]),
    router: address,
    /** Billing's gRPC address, for the report endpoints of the admin API; unset: they answer 503. */
    billing: address.optional(),
    /** Development traffic key (embedded mode); empty means generate one at start-up, `disabled` none. */
    devKey: devKeySchema,
    limits: strictObject({
      bodyBytes: z.number().int().positive().default(10 * 1024 * 1024),
      /** The largest audio upload (`/v1/audio/transcriptions`, `/translations`): a form's whole body. OpenAI takes files up to 25 MB. */
      audioBytes: z.number().int().positive().default(26 * 1024 * 1024),
      /** The largest image edit (`/v1/images/edits`): a form's whole body, its images and mask together. */
      imageEditBytes: z.number().int().positive().default(50 * 1024 * 1024),
      /** Deepest nesting of arrays and objects accepted in a JSON body or the x-openrouter-route header. */
      jsonDepth: z.number().int().positive().default(128),
      shutdownGraceMs: z.number().int().nonnegative().max(MAX_TIMER_MS, TIMER_TOO_LONG).default(10_000),
    }).default({ bodyBytes: 10 * 1024 * 1024, audioBytes: 26 * 1024 * 1024, imageEditBytes: 50 * 1024 * 1024, jsonDepth: 128, shutdownGraceMs: 10_000 }),
  }),
  router: strictObject({
    grpc: listenSchema,
    http: listenSchema,
    /** Provider id → adapter address; `default` serves every provider not listed. */
    adapters: z.record(z.string(), address).refine((m) => Object.keys(m).length > 0, 'name at least one adapter address'),
  }),
  adapter: strictObject({
    grpc: listenSchema,
    http: listenSchema,
    /** Provider ids this instance serves; empty means all. */
    providers: z.array(z.string()).default([]),
    /**
     * Image URLs the adapter fetches itself (Gemini, Bedrock, Anthropic's http://): only public
     * addresses by default, so a client cannot make it call loopback, the private network or a
     * cloud metadata endpoint.
     */
    imageFetch: strictObject({
      /** Also fetch from loopback, private, link-local and other non-public addresses (tests, labs). */
      allowPrivateNetworks: flag.default(false),
      /** Host names fetched from whatever address they resolve to, e.g. an internal image store. */
      allowedHosts: z.array(z.string().min(1).transform((h) => h.toLowerCase())).default([]),
    }).prefault({}),
  }),
  billing: billingSchema,
  alerting: httpOnly,
  grpc: strictObject({
    /**
     * How long a gRPC server (router, adapter, billing) lets calls in flight finish at shutdown
     * before it cuts them: just under the orchestrator's grace (compose: stop_grace_period 20s).
     */
    shutdownGraceMs: z.number().int().nonnegative().max(MAX_TIMER_MS, TIMER_TOO_LONG).default(15_000),
    /** Deadline of a unary call to the router (model list, embeddings, explain, health). */
    callTimeoutMs: z.number().int().positive().max(MAX_TIMER_MS, TIMER_TOO_LONG).default(5_000),
    /** Deadline of a report call to billing: reports scan the usage store. */
    reportTimeoutMs: z.number().int().positive().max(MAX_TIMER_MS, TIMER_TOO_LONG).default(60_000),
    /**
     * How a client spreads its calls over the addresses a peer's name resolves to: `round_robin`
     * (a connection to each, calls in turn) or `pick_first` (one connection, to the first that answers).
     */
    loadBalancing: z.enum(['round_robin', 'pick_first']).default('round_robin'),
    /**
     * How often a round_robin client looks a peer's DNS name up again, so replicas added behind it
     * get calls within about this long. 0: only when a connection breaks or is renewed.
     */
    resolveIntervalMs: z
      .number()
      .int()
      .max(MAX_TIMER_MS, TIMER_TOO_LONG)
      .refine((ms) => ms === 0 || ms >= 1_000, 'must be at least 1000 (ms), or 0 for only when a connection breaks or is renewed')
      .default(30_000),
    /**
     * How long a gRPC server keeps a client's connection before asking it to reconnect (HTTP/2
     * GOAWAY; calls in flight finish): clients then resolve the name again and find replicas added
     * since. 0: never.
     */
    maxConnectionAgeMs: z
      .number()
      .int()
      .nonnegative()
      .max(MAX_CONNECTION_AGE_MS, CONNECTION_AGE_TOO_LONG)
      .refine((ms) => ms === 0 || ms >= 1_000, 'must be at least 1000 (ms), or 0 for never')
      .default(300_000),
    auth: grpcAuthSchema,
    tls: grpcTlsSchema,
  }).prefault({}),
  providers: z.record(identifier, providerSchema),
  models: z.array(modelSchema).min(1),
  routing: routingSchema.prefault({}),
  usage: usageSchema.prefault({}),
  access: accessSchema.prefault({}),
  budgets: budgetsSchema.prefault({}),
  cache: cacheSchema.prefault({}),
  responses: responsesSchema.prefault({}),
  chatCompletions: chatCompletionsSchema.prefault({}),
  batches: batchesSchema.prefault({}),
  observability: observabilitySchema.prefault({}),
  /** Input guardrails: rules that block or redact sensitive text in requests (docs/guardrails.md). */
  guardrails: guardrailsSchema.prefault({}),
})
  .superRefine((config, ctx) => {
    const seen = new Set<string>();
    // Deployment ids name breakers, live stats, limits and price overrides, so they must be unique;
    // a deployment without an id is `<model id>#<index>`.
    const deploymentIds = new Map<string, string>();
    const adapters = config.router.adapters;
    config.models.forEach((model, i) => {
      if (seen.has(model.id)) ctx.addIssue({ code: 'custom', path: ['models', i, 'id'], message: `duplicate model id "${model.id}"` });
      seen.add(model.id);
      model.deployments.forEach((d, j) => {
        if (!(d.provider in config.providers)) {
          ctx.addIssue({ code: 'custom', path: ['models', i, 'deployments', j, 'provider'], message: `unknown provider "${d.provider}"` });
        } else if (!(d.provider in adapters) && !('default' in adapters)) {
          ctx.addIssue({ code: 'custom', path: ['models', i, 'deployments', j, 'provider'], message: `no adapter serves provider "${d.provider}": add router.adapters.${d.provider} or router.adapters.default` });
        } else {
          // Only some provider families have a moderations, images or audio API: a deployment elsewhere could never answer.
          const type = config.providers[d.provider]?.type ?? '';
          for (const [capability, types, api] of [['moderation', MODERATION_PROVIDER_TYPES, 'moderations'], ['images', IMAGE_PROVIDER_TYPES, 'image generation'], ['transcription', AUDIO_PROVIDER_TYPES, 'transcriptions'], ['speech', AUDIO_PROVIDER_TYPES, 'speech']] as const) {
            if (model.capabilities.includes(capability) && !types.includes(type)) {
              ctx.addIssue({ code: 'custom', path: ['models', i, 'deployments', j, 'provider'], message: `provider "${d.provider}" (type ${type}) has no ${api} API: a model with the ${capability} capability is deployed on providers of type ${types.join(', ')}` });
            }
          }
        }
        const id = d.id ?? `${model.id}#${j}`;
        const where = `models[${i}].deployments[${j}]`;
        const first = deploymentIds.get(id);
        if (first !== undefined) {
          const what = d.id === undefined ? `the default id "${id}" of this deployment` : `deployment id "${id}"`;
          ctx.addIssue({ code: 'custom', path: d.id === undefined ? ['models', i, 'deployments', j] : ['models', i, 'deployments', j, 'id'], message: `${what} is already used by ${first}; deployment ids must be unique` });
        } else deploymentIds.set(id, where);
      });
      // A price override under a name that is not one of the model's deployments would silently not apply.
      const own = model.deployments.map((d, j) => d.id ?? `${model.id}#${j}`);
      for (const key of Object.keys(model.pricing.deployments)) {
        if (!own.includes(key)) ctx.addIssue({ code: 'custom', path: ['models', i, 'pricing', 'deployments', key], message: `"${key}" is not a deployment of model "${model.id}" (its deployments: ${own.join(', ')})` });
      }
    });
    // A misspelt provider would leave the provider meant on the default adapter, without a word.
    for (const id of Object.keys(adapters)) {
      if (id !== 'default' && !(id in config.providers)) ctx.addIssue({ code: 'custom', path: ['router', 'adapters', id], message: `unknown provider "${id}": name a provider id (providers) or "default"` });
    }
    for (const id of config.adapter.providers) {
      if (!(id in config.providers)) ctx.addIssue({ code: 'custom', path: ['adapter', 'providers'], message: `unknown provider "${id}"` });
    }
    for (const issue of accessReferenceIssues(config.access, config.ingress.devKey)) ctx.addIssue({ code: 'custom', ...issue });
    for (const issue of accessPolicyIssues(config.access, config.providers, config.guardrails)) ctx.addIssue({ code: 'custom', ...issue });
    for (const issue of guardrailModelIssues(config.guardrails, config.models)) ctx.addIssue({ code: 'custom', ...issue });
    for (const issue of routingReferenceIssues(config.routing, config.models, Object.keys(config.providers))) ctx.addIssue({ code: 'custom', ...issue });
    for (const issue of budgetCurrencyIssues(config.budgets.list, config.models)) ctx.addIssue({ code: 'custom', ...issue });
    const orgs = new Map(config.access.orgs.map((o) => [o.id, o]));
    config.budgets.list.forEach((budget, i) => {
      // Only the tenants: a key named by a budget may be one issued at run time, unknown here.
      const issue = budgetScopeIssue(budget.scope, orgs.get(budget.scope.org));
      if (issue) ctx.addIssue({ code: 'custom', path: ['budgets', 'list', i, 'scope', issue.field], message: issue.message });
    });
    for (const issue of listenerClashes(config)) ctx.addIssue({ code: 'custom', ...issue });
    for (const issue of grpcMessageIssues(config)) ctx.addIssue({ code: 'custom', ...issue });
    for (const issue of kafkaNameIssues(config)) ctx.addIssue({ code: 'custom', ...issue });
    for (const issue of accessTimerIssues(config.access)) ctx.addIssue({ code: 'custom', ...issue });
    const rollup = config.billing.rollup;
    if (rollup.reconcileIntervalMs > 0 && config.usage.clickhouse.retentionDays <= rollup.lookbackDays) {
      // The reconciliation compares each day with its raw events: once they expire it would erase the day's rollup.
      ctx.addIssue({
        code: 'custom',
        path: ['billing', 'rollup', 'lookbackDays'],
        message: `must be less than usage.clickhouse.retentionDays (${config.usage.clickhouse.retentionDays}): the rollup reconciliation needs each day's raw events, which are deleted after retentionDays`,
      });
    }
    const topicKeepsMs = config.usage.kafka.retentionMs;
    if (config.usage.bus === 'kafka' && topicKeepsMs !== -1 && config.usage.clickhouse.retentionDays * 86_400_000 <= topicKeepsMs) {
      // Billing may be given (again) an event as old as the topic keeps; one already past retentionDays
      // when stored keeps no raw row nor id, so each redelivery would be counted again in the daily rollup.
      ctx.addIssue({
        code: 'custom',
        path: ['usage', 'clickhouse', 'retentionDays'],
        message: `must be longer than usage.kafka.retentionMs (${+(topicKeepsMs / 86_400_000).toFixed(3)} days): an event older than retentionDays when billing stores it has no id kept to recognise it by, and a redelivery would be counted twice in the daily rollup (shorten the topic's retention instead)`,
      });
    }
  })
  .superRefine((config, ctx) => {
    // A key's allowedModels are matched with the name a request asks for (a model id, an alias or
    // `auto`) and the ids of the models it stands for: any other entry allows nothing, and a typo
    // would leave the key unable to use the model meant. Keys issued through the admin API are
    // checked alike.
    const nameable = new Set([...config.models.map((m) => m.id), ...Object.keys(config.routing.aliases), AUTO_MODEL]);
    config.access.keys.forEach((key, i) => {
      key.allowedModels.forEach((name, j) => {
        if (!nameable.has(name)) ctx.addIssue({ code: 'custom', path: ['access', 'keys', i, 'allowedModels', j], message: `unknown model or alias "${name}": name a model id, an alias (routing.aliases) or "${AUTO_MODEL}"` });
      });
    });
    // Model limits are looked up by the name a request asks for: a misspelt one leaves the model unlimited.
    for (const name of Object.keys(config.access.rateLimits.models)) {
      if (!nameable.has(name)) ctx.addIssue({ code: 'custom', path: ['access', 'rateLimits', 'models', name], message: `unknown model or alias "${name}": name a model id, an alias (routing.aliases) or "${AUTO_MODEL}"` });
    }
    // Reservations look the maximum up by the models a request may reach, never by an alias.
    const modelIds = new Set(config.models.map((m) => m.id));
    for (const id of Object.keys(config.budgets.maxOutputTokens)) {
      if (!modelIds.has(id)) ctx.addIssue({ code: 'custom', path: ['budgets', 'maxOutputTokens', id], message: `unknown model "${id}": name a model id` });
    }
  });

export type GatewayConfig = z.infer<typeof configSchema>;

/**
 * The largest message a gRPC call between the gateway's services carries, either way (libs/grpc's
 * `MAX_MESSAGE_BYTES`, held equal to this by its spec). A request travels whole in one message, on
 * every hop: ingress to router, router to adapter, the embedded gateway's router to adapter too.
 */
export const GRPC_MESSAGE_MAX_BYTES = 64 * 1024 * 1024;

/**
 * Room kept in a message for what a request carries besides the client's bytes: its context, the
 * protobuf framing, fields the gateway adds. Items stored as JSON are no larger as protobuf (their
 * escapes and keys are gone), so this is ample.
 */
export const GRPC_MESSAGE_HEADROOM_BYTES = 4 * 1024 * 1024;

/**
 * Limits that let through a request no gRPC message can carry: grpc-js would refuse to send it,
 * after the client waited and its conversation was loaded (413 `request_too_large`, see
 * `fromGrpcError`), so the start refuses them instead. A turn of a stored conversation sends the
 * conversation (at most `responses.maxConversationBytes`) and a new body (`ingress.limits.bodyBytes`)
 * together; an upload (`audioBytes`, `imageEditBytes`) travels whole.
 */
function grpcMessageIssues(config: Pick<GatewayConfig, 'ingress' | 'responses'>): Array<{ path: Array<string | number>; message: string }> {
  const room = GRPC_MESSAGE_MAX_BYTES - GRPC_MESSAGE_HEADROOM_BYTES;
  const cap = `the ${GRPC_MESSAGE_MAX_BYTES} bytes (64 MiB) one gRPC message between the gateway's services carries, less ${GRPC_MESSAGE_HEADROOM_BYTES} bytes (4 MiB) kept for the request's other fields`;
  const { bodyBytes, audioBytes, imageEditBytes } = config.ingress.limits;
  const issues: Array<{ path: Array<string | number>; message: string }> = [];
  const conversation = config.responses.maxConversationBytes;
  if (bodyBytes >= room) {
    issues.push({ path: ['ingress', 'limits', 'bodyBytes'], message: `${bodyBytes} is more than ${cap}, with room for no conversation: a body that large could not be sent on. Lower it to well under ${room}` });
  } else if (conversation + bodyBytes > room) {
    issues.push({
      path: ['responses', 'maxConversationBytes'],
      message: `${conversation} plus ingress.limits.bodyBytes (${bodyBytes}) is more than ${cap}: a conversation continued with a full turn could not be sent. Lower it to at most ${Math.max(0, room - bodyBytes)}, or lower ingress.limits.bodyBytes`,
    });
  }
  for (const [key, bytes] of [['audioBytes', audioBytes], ['imageEditBytes', imageEditBytes]] as const) {
    if (bytes > room) issues.push({ path: ['ingress', 'limits', key], message: `${bytes} is more than ${cap}: an upload that large could not be sent on. Lower it to at most ${room}` });
  }
  return issues;
}

/**
 * The Kafka topics and consumer groups, against each other. Each topic has one purpose: dead
 * letters sent back to the usage topic would be consumed, fail and be sent again for ever, and
 * budget events on it would be read as usage events (and refused as poison). Billing and alerting
 * each read every usage event, so each needs a consumer group of its own: in one group they would
 * share the partitions, each committing what the other never saw, and billing would lose usage.
 * Topics whose names differ only by `.` and `_` are one to Kafka, which refuses to create the second.
 * Checked with either bus: a file written for the in-process bus may be switched to Kafka.
 */
function kafkaNameIssues(config: Pick<GatewayConfig, 'usage' | 'budgets' | 'observability'>): Array<{ path: Array<string | number>; message: string }> {
  const { topic, dlqTopic, consumerGroup } = config.usage.kafka;
  const issues: Array<{ path: Array<string | number>; message: string }> = [];
  const topics: Array<[Array<string | number>, string, string]> = [
    [['usage', 'kafka', 'topic'], 'usage.kafka.topic', topic],
    [['usage', 'kafka', 'dlqTopic'], 'usage.kafka.dlqTopic', dlqTopic],
    [['budgets', 'topic'], 'budgets.topic', config.budgets.topic],
  ];
  topics.forEach(([path, , name], i) => {
    const earlier = topics.slice(0, i).find(([, , other]) => kafkaTopicsCollide(name, other));
    if (!earlier) return;
    const [, setting, other] = earlier;
    const same = other === name ? `is ${setting} too` : `is one topic with ${setting} ("${other}") to Kafka, which takes "." and "_" in topic names as the same`;
    issues.push({ path, message: `"${name}" ${same}: the usage events, their dead letters and the budget events each need a topic of their own` });
  });
  if (config.observability.alerting.consumerGroup === consumerGroup) {
    issues.push({
      path: ['observability', 'alerting', 'consumerGroup'],
      message: `"${consumerGroup}" is usage.kafka.consumerGroup too (billing's): alerting would share the usage topic's partitions with billing, each committing events the other never read, and billing would lose usage. Give alerting a group of its own`,
    });
  }
  return issues;
}

/**
 * Access settings waited for with a timer (see MAX_TIMER_MS): checked here, with the other
 * cross-checks, rather than in access.schema.ts, whose shape they keep.
 */
function accessTimerIssues(access: Pick<GatewayConfig['access'], 'requests'>): Array<{ path: Array<string | number>; message: string }> {
  const timers: Array<[Array<string | number>, number]> = [
    [['access', 'requests', 'webSocketHeartbeatMs'], access.requests.webSocketHeartbeatMs],
    [['access', 'requests', 'streamStallMs'], access.requests.streamStallMs],
  ];
  return timers.filter(([, ms]) => ms > MAX_TIMER_MS).map(([path]) => ({ path, message: TIMER_TOO_LONG }));
}

/** Hosts that bind every interface, so a port taken there is taken on each. */
const EVERY_INTERFACE = new Set(['0.0.0.0', '::', '[::]']);

/** Whether two listeners would take the same socket: one port, other than 0 (the system picks one), on a shared interface. */
function sameSocket(a: Listen, b: Listen): boolean {
  return a.port !== 0 && a.port === b.port && (a.host === b.host || EVERY_INTERFACE.has(a.host) || EVERY_INTERFACE.has(b.host));
}

/**
 * Listeners of one process on one port: the second would fail the start with "address already in
 * use", after the configuration was accepted. A service's own listeners are in one process, and so
 * are the simulated provider and the ingress's in the embedded gateway (which gives the other
 * services ports the system picks).
 */
function listenerClashes(config: Pick<GatewayConfig, 'gateway' | 'ingress' | 'router' | 'adapter' | 'billing'>): Array<{ path: Array<string | number>; message: string }> {
  const issues: Array<{ path: Array<string | number>; message: string }> = [];
  const ingress: Array<[string, Listen | undefined]> = [
    ['ingress.http', config.ingress.http],
    ['ingress.internalHttp', config.ingress.internalHttp],
  ];
  const services: Array<[string, Array<[string, Listen | undefined]>]> = [
    ['the ingress', ingress],
    ['the router', [['router.grpc', config.router.grpc], ['router.http', config.router.http]]],
    ['the adapter', [['adapter.grpc', config.adapter.grpc], ['adapter.http', config.adapter.http]]],
    ['billing', [['billing.http', config.billing.http], ['billing.grpc', config.billing.grpc]]],
  ];
  const clash = (setting: string, listen: Listen, others: Array<[string, Listen | undefined]>, why: string): void => {
    const taken = others.find(([, other]) => other !== undefined && sameSocket(listen, other));
    if (taken) issues.push({ path: [...setting.split('.'), 'port'], message: `${listen.port} is the port of ${taken[0]} too: ${why}` });
  };
  for (const [service, listeners] of services) {
    listeners.forEach(([setting, listen], i) => {
      if (listen) clash(setting, listen, listeners.slice(0, i), `each listener of ${service} needs a port of its own`);
    });
  }
  if (config.gateway.simulator.enabled) clash('gateway.simulator', config.gateway.simulator, ingress, 'the embedded gateway runs the simulated provider and the ingress in one process');
  return issues;
}

/**
 * Why a budget's scope names tenants no request can come from, if it does. A budget applies to a
 * request only when every field of its scope equals the request's (org, team, project, key), so a
 * team that is not in the org, or a project in none of the org's teams (or not in the team the
 * scope names), would leave the budget never applied — a hard budget silently not enforced. `org`
 * is the scope's org as the tenants declare it; an org declared nowhere is a bare tenant (keys may
 * name one), which has no teams or projects. Budgets created through the admin API are checked by
 * the same rule, against the tenants added at run time too.
 */
export function budgetScopeIssue(scope: BudgetConfig['scope'], org: OrgConfig | undefined): { field: 'org' | 'team' | 'project'; message: string } | undefined {
  if (!org) return scope.team !== undefined || scope.project !== undefined ? { field: 'org', message: `unknown organisation "${scope.org}": declare it, with its teams and projects, in access.orgs` } : undefined;
  const teams = scope.team === undefined ? org.teams : org.teams.filter((t) => t.id === scope.team);
  if (scope.team !== undefined && teams.length === 0) return { field: 'team', message: `unknown team "${scope.team}" in "${org.id}"` };
  if (scope.project !== undefined && !teams.some((t) => t.projects.some((p) => p.id === scope.project))) {
    return { field: 'project', message: scope.team === undefined ? `unknown project "${scope.project}" in "${org.id}"` : `the project "${scope.project}" is not in the team "${scope.team}" of "${org.id}"` };
  }
  return undefined;
}

/** The currency of a price, where it may set one. */
interface PriceCurrency {
  currency?: string | undefined;
}

/** The currencies of prices laid over a model's (a deployment's, a service tier's): its own and its changes'. */
interface OverlaidPriceCurrencies extends PriceCurrency {
  changes: ReadonlyArray<PriceCurrency>;
}

/**
 * A budget counts spend in its own currency and any model may be charged to it (budgets scope
 * callers, not models), so every price must be in that currency: the ledger adds costs without
 * converting, and the reconciliation reads the budget's currency only. Budgets created through the
 * admin API are checked by the same rule.
 */
export function budgetCurrencyIssues(
  budgets: ReadonlyArray<{ id: string; currency: string }>,
  models: ReadonlyArray<{ id: string; pricing: { currency: string; changes: ReadonlyArray<PriceCurrency>; deployments: Record<string, OverlaidPriceCurrencies>; tiers: Partial<Record<string, OverlaidPriceCurrencies>> } }>,
): Array<{ path: Array<string | number>; message: string }> {
  const priced = new Map<string, string>();
  const overlaid = (o: OverlaidPriceCurrencies | undefined) => (o ? [o.currency, ...o.changes.map((c) => c.currency)] : []);
  for (const model of models) {
    const { pricing } = model;
    // The model's prices, its deployments' and its service tiers' (a tier's price is charged to the same budgets).
    const currencies = [pricing.currency, ...pricing.changes.map((c) => c.currency), ...Object.values(pricing.deployments).flatMap(overlaid), ...Object.values(pricing.tiers).flatMap(overlaid)];
    for (const currency of currencies) if (currency !== undefined && !priced.has(currency)) priced.set(currency, model.id);
  }
  const issues: Array<{ path: Array<string | number>; message: string }> = [];
  budgets.forEach((budget, i) => {
    for (const [currency, model] of priced) {
      if (currency === budget.currency) continue;
      issues.push({
        path: ['budgets', 'list', i, 'currency'],
        message: `budget "${budget.id}" is in ${budget.currency} but model "${model}" is priced in ${currency}: every price must be in the currency of the budgets, which add costs without converting them`,
      });
      break;
    }
  });
  return issues;
}
