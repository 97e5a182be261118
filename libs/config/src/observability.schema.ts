import { z } from 'zod';
import { flag, httpHeaders, httpUrl, identifier, MAX_TIMER_MS, numeric, strictObject, TIMER_TOO_LONG } from './primitives';

/** Counts, durations and ratios, which may come from the environment as text. */
const positive = z.number().int().positive();
const positiveInt = numeric(positive);
const nonNegativeInt = numeric(z.number().int().nonnegative());
const ratio = numeric(z.number().min(0).max(1));
/** A duration waited for with a timer: a retry or an evaluation past MAX_TIMER_MS would come at once, again and again. */
const timerMs = numeric(positive.max(MAX_TIMER_MS, TIMER_TOO_LONG));

/**
 * Spend buckets a `spend_anomaly` rule looks back over at most (`windowMs` × (`baselineWindows` + 1)
 * / `bucketMs`), each kept per organisation and added up at every evaluation. The default rule's
 * are 810 (at 10 s buckets); 5 000 are some 650 KB and under 10 ms a round for an organisation
 * spending in every bucket. An hour's window against 96 before it at 10 s buckets would be 35 000:
 * 4.5 MB and 60 ms a round per organisation.
 */
const MAX_SPEND_BUCKETS = 5_000;

/**
 * Buckets an `error_rate` or `latency_p95` window spans at most (`windowMs` / `bucketMs`), each kept
 * per provider and per deployment (with a latency histogram, some 260 bytes) and added up at every
 * evaluation. 5 000 are some 1.3 MB and 15 ms a round per series; a day's window at 1 s buckets
 * would be 86 400: 22 MB and 265 ms a round per series (the spend kept per organisation grows with
 * it too, since every series is kept as long as the longest window).
 */
const MAX_ATTEMPT_BUCKETS = 5_000;

export const metricsSchema = strictObject({
  /** `/metrics` on every service; off still answers, with an empty exposition. */
  enabled: flag.default(true),
  /** Node.js process metrics (CPU, memory, event loop lag, GC) next to the gateway's own. */
  processMetrics: flag.default(true),
});
export type MetricsConfig = z.infer<typeof metricsSchema>;

export const tracingSchema = strictObject({
  /** Off: no spans are made, no context is carried, nothing is exported. */
  enabled: flag.default(false),
  /**
   * OTLP/HTTP traces endpoint, e.g. `http://otel-collector:4318/v1/traces`; '' with tracing on
   * exports nowhere. Without a scheme (`otel-collector:4318/…`) every export would fail, so it is
   * refused here, as is a URL with credentials, which the exporter's errors would repeat.
   */
  otlpEndpoint: z.union([z.literal(''), httpUrl('send them in observability.tracing.headers, e.g. authorization: "Bearer ${OTLP_TOKEN}"')]).default(''),
  /** Extra headers for the exporter (an API key of a tracing backend: use `${VAR}`); checked as HTTP headers (see `httpHeaders`). */
  headers: httpHeaders.default({}),
  /**
   * Fraction of new traces recorded. Inside the gateway a call follows its caller's decision; at the
   * edge (ingress) a client's `traceparent` gives the trace its id, and this ratio decides.
   */
  sampleRatio: ratio.default(1),
  /**
   * Follow the sampling decision of a client's `traceparent` at the ingress (a trusted client
   * population, e.g. services of the same platform). Off, any client could have every one of its
   * requests recorded and exported, whatever `sampleRatio` says.
   */
  trustClientSampling: flag.default(false),
  exportTimeoutMs: timerMs.default(10_000),
});
export type TracingConfig = z.infer<typeof tracingSchema>;

export const logSettingsSchema = strictObject({
  /** Debug aid: log the byte sizes of prompt and completion bodies (never their contents). */
  debugSizes: flag.default(false),
});

const windowMs = numeric(positive.max(24 * 60 * 60_000));

const ruleBase = {
  id: identifier,
  /** `warning` or `critical`: shown in notifications, never changes behaviour. */
  severity: z.enum(['info', 'warning', 'critical']).default('warning'),
  /** Channel ids to notify; empty means every channel. */
  channels: z.array(identifier).default([]),
  /** After a notification, the same alert is not sent again for this long (a reminder follows if it still fires). */
  cooldownMs: nonNegativeInt.default(15 * 60_000),
};

const scope = z.enum(['provider', 'deployment']).default('provider');

export const alertRuleSchema = z.discriminatedUnion('kind', [
  strictObject({
    ...ruleBase,
    kind: z.literal('error_rate'),
    scope,
    windowMs: windowMs.default(5 * 60_000),
    /** Fires when errors / requests in the window reach this ratio. */
    threshold: ratio.default(0.2),
    /** Below this many requests in the window the rate is not judged. */
    minRequests: positiveInt.default(20),
  }),
  strictObject({
    ...ruleBase,
    kind: z.literal('latency_p95'),
    scope,
    windowMs: windowMs.default(5 * 60_000),
    thresholdMs: positiveInt.default(10_000),
    minRequests: positiveInt.default(20),
  }),
  strictObject({
    ...ruleBase,
    kind: z.literal('circuit_open'),
    /**
     * With several router replicas (each keeps its own breakers): fires when the breaker is open on
     * at least this share of the replicas that answer and know the deployment, and on one at least.
     * 0 (the default): on any one.
     */
    minReplicaShare: ratio.default(0),
  }),
  strictObject({
    ...ruleBase,
    kind: z.literal('budget_threshold'),
    /** Fires for budget events at or above this percentage of the budget. */
    minPercent: numeric(z.number().min(0).max(1000)).default(80),
    /** A budget alert holds this long after its event, then resolves unless a new period restarts it. */
    holdMs: positiveInt.default(24 * 60 * 60_000),
    /**
     * The crossings the rule takes: `spent` (the spend reached a threshold) and `forecast` (the spend
     * projected to the period's end did), so forecasts can go to channels of their own, or be ignored.
     */
    kinds: z
      .array(z.enum(['spent', 'forecast'], { error: 'must be spent or forecast' }))
      .min(1, { error: 'must name at least one kind (spent, forecast); leave it out for both' })
      .default(['spent', 'forecast']),
  }),
  strictObject({
    ...ruleBase,
    kind: z.literal('spend_anomaly'),
    /** Spend in the last `windowMs`, per organisation, against the average of the `baselineWindows` before it. */
    windowMs: windowMs.default(15 * 60_000),
    baselineWindows: numeric(positive.max(96)).default(8),
    /** Fires when current spend ≥ factor × baseline (and ≥ minSpend). */
    factor: numeric(z.number().positive()).default(3),
    minSpend: numeric(z.number().nonnegative()).default(1),
  }),
  strictObject({ ...ruleBase, kind: z.literal('canary_rolled_back') }),
  strictObject({
    ...ruleBase,
    kind: z.literal('router_unreachable'),
    /** Fires for a polled router (replica) that has not answered its status for this long. */
    forMs: nonNegativeInt.default(60_000),
  }),
]);
export type AlertRuleConfig = z.infer<typeof alertRuleSchema>;

/**
 * A receiver's URL: http or https, since notifications are POSTed with fetch (which would fail every
 * delivery of a `file:` or `ftp:` URL with a bare TypeError; better refused at start-up). Credentials
 * in it are refused: fetch does not send them, and they would end up in logs.
 */
const receiverUrl = httpUrl('send them in headers, e.g. authorization: "Basic ${WEBHOOK_AUTH}"');

/** Extra request headers of a receiver: fetch refuses a bad one on every delivery (see `httpHeaders`). */
const receiverHeaders = httpHeaders.default({});

export const alertChannelSchema = z.discriminatedUnion('kind', [
  strictObject({
    id: identifier,
    kind: z.literal('webhook'),
    url: receiverUrl,
    /** HMAC-SHA256 key of the signature header; use `${VAR}`. Empty sends unsigned. */
    secret: z.string().default(''),
    /** Sent with every delivery (`authorization` and the like; use `${VAR}`). */
    headers: receiverHeaders,
  }),
  strictObject({ id: identifier, kind: z.literal('slack'), url: receiverUrl }),
]);
export type AlertChannelConfig = z.infer<typeof alertChannelSchema>;

/** A router address: `host:port`, or `[IPv6]:port`. */
const ROUTER_ADDRESS = /^(?:[^\s:,[\]]+|\[[0-9A-Fa-f:.]+\]):\d+$/;

export const alertingSchema = strictObject({
  /** How often rules are evaluated. */
  evaluateIntervalMs: timerMs.default(10_000),
  /** Width of one aggregation bucket; windows are whole buckets. */
  bucketMs: positiveInt.default(10_000),
  /** Kafka consumer group of the alerting service. */
  consumerGroup: z.string().min(1).default('alerting'),
  /**
   * The router's gRPC address, or a comma-separated list of them (one per replica), polled for
   * circuit and gray-release state; '' turns those rules off.
   */
  router: z.string().default(''),
  /**
   * `dns`: the host of every `router` address is resolved at each poll and each of its addresses (IPv4,
   * else IPv6) polled as a replica of its own, e.g. a headless Kubernetes Service or a
   * compose service name. `none`: each address is one router, behind which one replica answers.
   */
  routerDiscovery: z.enum(['none', 'dns']).default('none'),
  routerPollMs: timerMs.default(10_000),
  rules: z.array(alertRuleSchema).default([]),
  channels: z.array(alertChannelSchema).default([]),
  delivery: strictObject({
    /** At most 10 min: a stopping replica waits this long (and a second) for a send under way. */
    timeoutMs: numeric(positive.max(10 * 60_000)).default(5_000),
    maxAttempts: numeric(positive.max(50)).default(8),
    initialBackoffMs: timerMs.default(1_000),
    maxBackoffMs: timerMs.default(5 * 60_000),
    /** Notifications waiting for delivery at most; beyond it the oldest is dropped (and counted). */
    queueLimit: positiveInt.default(1_000),
  }).prefault({}),
})
  .superRefine((a, ctx) => {
    if (a.delivery.maxBackoffMs < a.delivery.initialBackoffMs) {
      ctx.addIssue({ code: 'custom', path: ['delivery', 'maxBackoffMs'], message: `must be at least delivery.initialBackoffMs (${a.delivery.initialBackoffMs})` });
    }
    const channels = new Set<string>();
    a.channels.forEach((channel, i) => {
      // Rules and deliveries name a channel by its id: of two with one id, only one would be sent anything.
      if (channels.has(channel.id)) ctx.addIssue({ code: 'custom', path: ['channels', i, 'id'], message: `duplicate channel id "${channel.id}"` });
      channels.add(channel.id);
    });
    const ids = new Set<string>();
    a.rules.forEach((rule, i) => {
      if (ids.has(rule.id)) ctx.addIssue({ code: 'custom', path: ['rules', i, 'id'], message: `duplicate rule id "${rule.id}"` });
      ids.add(rule.id);
      // Windows are whole buckets: a window shorter than a bucket, or between two, would see
      // nothing (or a varying span) depending on where in the bucket the evaluation falls.
      if ('windowMs' in rule && rule.windowMs % a.bucketMs !== 0) {
        ctx.addIssue({ code: 'custom', path: ['rules', i, 'windowMs'], message: `must be a multiple of bucketMs (${a.bucketMs})` });
      }
      if ((rule.kind === 'error_rate' || rule.kind === 'latency_p95') && rule.windowMs / a.bucketMs > MAX_ATTEMPT_BUCKETS) {
        ctx.addIssue({
          code: 'custom',
          path: ['rules', i, 'windowMs'],
          message: `with bucketMs ${a.bucketMs}, keeps ${Math.ceil(rule.windowMs / a.bucketMs)} buckets of calls per provider and deployment (windowMs / bucketMs); at most ${MAX_ATTEMPT_BUCKETS}: use a shorter windowMs or a larger bucketMs`,
        });
      }
      if (rule.kind === 'spend_anomaly' && (rule.windowMs * (rule.baselineWindows + 1)) / a.bucketMs > MAX_SPEND_BUCKETS) {
        const buckets = Math.ceil((rule.windowMs * (rule.baselineWindows + 1)) / a.bucketMs);
        ctx.addIssue({
          code: 'custom',
          path: ['rules', i, 'baselineWindows'],
          message: `with windowMs ${rule.windowMs} and bucketMs ${a.bucketMs}, keeps ${buckets} buckets of spend per organisation (windowMs × (baselineWindows + 1) / bucketMs); at most ${MAX_SPEND_BUCKETS}: use fewer baseline windows, a shorter windowMs or a larger bucketMs`,
        });
      }
      rule.channels.forEach((c, j) => {
        if (!channels.has(c)) ctx.addIssue({ code: 'custom', path: ['rules', i, 'channels', j], message: `unknown channel "${c}"` });
      });
    });
    if (a.router !== '' && !a.router.split(',').every((address) => ROUTER_ADDRESS.test(address.trim()))) {
      ctx.addIssue({ code: 'custom', path: ['router'], message: 'must be host:port, a comma-separated list of them, or empty' });
    }
  });
export type AlertingConfig = z.infer<typeof alertingSchema>;

/** Metrics, tracing and alert rules and channels. */
export const observabilitySchema = strictObject({
  metrics: metricsSchema.prefault({}),
  tracing: tracingSchema.prefault({}),
  log: logSettingsSchema.prefault({}),
  alerting: alertingSchema.prefault({}),
});
export type ObservabilityConfig = z.infer<typeof observabilitySchema>;
