import { createHmac, randomBytes } from 'node:crypto';

/** The credentials every target is driven with. */
export interface BenchKeys {
  /** A traffic key declared in `access.keys` by its keyed hash (not the development key). */
  apiKey: string;
  /** The key the upstream (simulated provider) requires; direct calls and the floor proxy send it. */
  upstreamKey: string;
}

/** What every request of the bench asks (chat, stream, embeddings, and the gRPC floor's calls). */
export const BENCH_PROMPT = 'Summarise the trade-offs of running an LLM gateway in front of several providers, in two sentences.';

/** Public model ids behind the gateway and the upstream names they map to. */
export const BENCH_MODELS = {
  chat: { public: 'gpt-4o-mini', upstream: 'sim-mini-upstream' },
  embeddings: { public: 'text-embedding-3-small', upstream: 'embed-upstream' },
} as const;

const KEY_HASH_SECRET = 'open-router-bench-key-hash-secret';
/** Generous enough never to be hit by the bench, low enough that every limit is evaluated. */
const LIMITS = { rpm: 50_000_000, tpm: 5_000_000_000 };

export function benchKeys(): BenchKeys {
  return { apiKey: `sk-or-v1-${randomBytes(32).toString('base64url')}`, upstreamKey: `sim-${randomBytes(8).toString('hex')}` };
}

export interface GatewayPorts {
  ingress: number;
  router: number;
  routerHttp: number;
  adapter: number;
  adapterHttp: number;
  billing: number;
  billingGrpc: number;
  alerting: number;
}

export interface BenchConfigOptions {
  upstreamBaseUrl: string;
  keys: BenchKeys;
  ports: GatewayPorts;
  /** Distributed: usage over Kafka, counters in Redis. Embedded: the in-process bus and memory counters. */
  mode: 'embedded' | 'distributed';
  kafkaBrokers?: readonly string[];
  redisUrl?: string;
  /** A ClickHouse server's HTTP interface (the distributed target's); else chDB in the billing process. */
  clickhouseUrl?: string;
  dataDir: string;
  /** Topic suffix, so runs sharing a broker never meet. */
  runId: string;
}

/**
 * The configuration document of a gateway target: the full request pipeline is on, i.e. a real
 * API key on a tenant (org, team, project, cost centre), rate limits on key, project, team and
 * model, hard budgets reserved and settled per request, routing over the catalog, and usage
 * events priced and stored in ClickHouse.
 */
export function benchConfigDocument(options: BenchConfigOptions): Record<string, unknown> {
  const { ports, keys, mode } = options;
  const distributed = mode === 'distributed';
  if (distributed && (!options.kafkaBrokers?.length || !options.redisUrl)) throw new Error('the distributed target needs Kafka brokers and a Redis URL');
  return {
    version: 1,
    gateway: { dataDir: options.dataDir, simulator: { enabled: false } },
    log: { level: 'warn' },
    // As deployed: the distributed services authenticate every gRPC call with the shared token.
    ...(distributed ? { grpc: { auth: { token: `bench-internal-token-${randomBytes(16).toString('hex')}` } } } : {}),
    ingress: { http: { host: '127.0.0.1', port: ports.ingress }, router: `127.0.0.1:${ports.router}`, devKey: `sk-or-dev-${randomBytes(16).toString('hex')}` },
    access: {
      keyHashSecret: KEY_HASH_SECRET,
      redis: { url: distributed ? options.redisUrl : '', keyPrefix: `bench-${options.runId}:` },
      admin: { devKey: 'disabled' },
      orgs: [{ id: 'bench', costCenter: 'cc-bench', teams: [{ id: 'platform', limits: LIMITS, projects: [{ id: 'gateway-bench', limits: LIMITS }] }] }],
      keys: [
        {
          id: 'bench-key',
          hash: createHmac('sha256', KEY_HASH_SECRET).update(keys.apiKey).digest('hex'),
          prefix: keys.apiKey.slice(0, 14),
          name: 'benchmark',
          org: 'bench',
          team: 'platform',
          project: 'gateway-bench',
          app: 'bench',
          limits: LIMITS,
        },
      ],
      rateLimits: { failMode: 'closed', key: LIMITS, project: LIMITS, team: LIMITS, models: { [BENCH_MODELS.chat.public]: LIMITS, [BENCH_MODELS.embeddings.public]: LIMITS } },
    },
    router: { grpc: { host: '127.0.0.1', port: ports.router }, http: { host: '127.0.0.1', port: ports.routerHttp }, adapters: { default: `127.0.0.1:${ports.adapter}` } },
    adapter: { grpc: { host: '127.0.0.1', port: ports.adapter }, http: { host: '127.0.0.1', port: ports.adapterHttp } },
    billing: { http: { host: '127.0.0.1', port: ports.billing }, grpc: { host: '127.0.0.1', port: ports.billingGrpc } },
    alerting: { http: { host: '127.0.0.1', port: ports.alerting } },
    // Hard budgets on the org and the project, far above what a run spends: every request
    // reserves its worst case against both and settles the real cost.
    budgets: {
      failMode: 'closed',
      list: [
        { id: 'bench-org-monthly', scope: { org: 'bench' }, period: 'monthly', amount: '100000000', enforcement: 'hard' },
        { id: 'bench-project-daily', scope: { org: 'bench', team: 'platform', project: 'gateway-bench' }, period: 'daily', amount: '10000000', enforcement: 'hard' },
      ],
    },
    usage: {
      bus: distributed ? 'kafka' : 'in-process',
      ...(distributed
        ? {
            kafka: {
              brokers: [...(options.kafkaBrokers ?? [])],
              clientId: `bench-${options.runId}`,
              topic: `bench-usage-${options.runId}.v1`,
              dlqTopic: `bench-usage-${options.runId}.v1.dlq`,
              consumerGroup: `bench-billing-${options.runId}`,
              partitions: 3,
              // A loaded machine can take longer than the default 5 s over a send; one that times out
              // moves the publisher to its outbox, which the pipeline benchmark counts as a failure.
              sendTimeoutMs: 30_000,
            },
          }
        : {}),
      outbox: { dir: `${options.dataDir}/outbox` },
      clickhouse: { ...(options.clickhouseUrl ? { url: options.clickhouseUrl } : { embedded: { path: ':memory:' } }), database: `bench_${options.runId}` },
    },
    providers: { simulated: { type: 'openai', baseUrl: options.upstreamBaseUrl, apiKey: keys.upstreamKey, timeoutMs: 30_000 } },
    models: [
      {
        id: BENCH_MODELS.chat.public,
        capabilities: ['chat', 'tools', 'json_object', 'json_schema', 'completions'],
        pricing: { input: '0.15', output: '0.60' },
        deployments: [{ id: 'sim-mini', provider: 'simulated', model: BENCH_MODELS.chat.upstream }],
      },
      {
        id: BENCH_MODELS.embeddings.public,
        capabilities: ['embeddings'],
        pricing: { input: '0.02' },
        deployments: [{ id: 'sim-embed', provider: 'simulated', model: BENCH_MODELS.embeddings.upstream }],
      },
    ],
  };
}
