import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { freePort, freePorts } from '../../test/support/ports';
import { BENCH_MODELS, benchConfigDocument, type BenchKeys, type GatewayPorts } from '../bench-config';
import { BenchProcess } from './child-process';
import type { BenchTarget } from './target';


export interface Upstream {
  /** http://127.0.0.1:PORT/v1 */
  baseUrl: string;
  process: BenchProcess;
}

/** The simulated provider with zero latency, in a process of its own, from the build. */
export async function startUpstream(keys: BenchKeys): Promise<Upstream> {
  const port = await freePort();
  const sim = BenchProcess.node('upstream', 'dist/libs/provider-simulator/src/main.js', ['--port', String(port), '--api-key', keys.upstreamKey, '--latency-ms', '0', '--ttft-ms', '0', '--tokens-per-second', '0']);
  await sim.waitHealthy(`http://127.0.0.1:${port}/_sim/requests`);
  return { baseUrl: `http://127.0.0.1:${port}/v1`, process: sim };
}

const upstreamModels = { chat: BENCH_MODELS.chat.upstream, embeddings: BENCH_MODELS.embeddings.upstream };
const gatewayModels = { chat: BENCH_MODELS.chat.public, embeddings: BENCH_MODELS.embeddings.public };

export function directTarget(upstream: Upstream, keys: BenchKeys): BenchTarget {
  return { name: 'direct', baseUrl: upstream.baseUrl, authorization: `Bearer ${keys.upstreamKey}`, models: upstreamModels, processes: [], stop: async () => undefined };
}

export async function startFloor(upstream: Upstream, keys: BenchKeys): Promise<BenchTarget> {
  const port = await freePort();
  const proxy = BenchProcess.node('floor', 'dist/bench/targets/floor-proxy.main.js', ['--port', String(port), '--upstream', upstream.baseUrl]);
  await proxy.waitHealthy(`http://127.0.0.1:${port}/__floor/health`);
  return { name: 'floor', baseUrl: `http://127.0.0.1:${port}/v1`, authorization: `Bearer ${keys.upstreamKey}`, models: upstreamModels, processes: [{ name: 'floor', pid: proxy.pid }], stop: () => proxy.stop() };
}

export interface GatewayTargetOptions {
  upstream: Upstream;
  keys: BenchKeys;
  runId: string;
  kafkaBrokers?: readonly string[];
  redisUrl?: string;
  /** Extra node flags for every gateway process, e.g. `--cpu-prof`. */
  nodeArgs?: readonly string[];
}

async function gatewayPorts(): Promise<GatewayPorts> {
  const [ingress, router, routerHttp, adapter, adapterHttp, billing, billingGrpc, alerting] = await freePorts(8);
  return { ingress: ingress!, router: router!, routerHttp: routerHttp!, adapter: adapter!, adapterHttp: adapterHttp!, billing: billing!, billingGrpc: billingGrpc!, alerting: alerting! };
}

/** The ClickHouse database of a gateway target's usage (`bench_<runId>`, with the run id the target's configuration is given). */
const usageDatabase = (options: GatewayTargetOptions, mode: 'embedded' | 'distributed'): string => `bench_${options.runId}_${mode}`;

function writeConfig(mode: 'embedded' | 'distributed', ports: GatewayPorts, options: GatewayTargetOptions, clickhouseUrl?: string): string {
  const dir = mkdtempSync(join(tmpdir(), `or-bench-${mode}-`));
  const document = benchConfigDocument({
    mode,
    ports,
    keys: options.keys,
    upstreamBaseUrl: options.upstream.baseUrl,
    kafkaBrokers: options.kafkaBrokers,
    redisUrl: options.redisUrl,
    clickhouseUrl,
    dataDir: join(dir, 'data'),
    runId: `${options.runId}_${mode}`,
  });
  const path = join(dir, 'config.yaml');
  writeFileSync(path, stringify(document));
  return path;
}

/** The embedded gateway (every service in one process) as a child process, so it is measured alone. */
export async function startEmbedded(options: GatewayTargetOptions): Promise<BenchTarget> {
  const ports = await gatewayPorts();
  const config = writeConfig('embedded', ports, options);
  const gateway = BenchProcess.node('embedded', 'dist/services/gateway/src/main.js', [], { env: { OPENROUTER_CONFIG: config }, nodeArgs: options.nodeArgs });
  try {
    await gateway.waitHealthy(`http://127.0.0.1:${ports.ingress}/ready`);
  } catch (error) {
    await gateway.stop(1_000);
    throw error;
  }
  return {
    name: 'embedded',
    baseUrl: `http://127.0.0.1:${ports.ingress}/v1`,
    authorization: `Bearer ${options.keys.apiKey}`,
    models: gatewayModels,
    processes: [{ name: 'gateway', pid: gateway.pid }],
    stop: () => gateway.stop(),
  };
}

const SERVICES = ['adapter', 'router', 'billing', 'alerting', 'ingress'] as const;

/** ClickHouse's HTTP interface over chDB in a process of its own: the distributed target's usage store. */
async function startClickHouseStore(): Promise<{ url: string; process: BenchProcess }> {
  const port = await freePort();
  const store = BenchProcess.node('clickhouse', 'bench/clickhouse-store.main.ts', ['--port', String(port)], { nodeArgs: ['-r', './bench/register.js'] });
  try {
    await store.waitHealthy(`http://127.0.0.1:${port}/?query=SELECT%201`);
  } catch (error) {
    await store.stop(1_000);
    throw error;
  }
  return { url: `http://127.0.0.1:${port}`, process: store };
}

/** The distributed mode: each service its own process, usage over Kafka, counters in Redis, a ClickHouse server. */
export async function startDistributed(options: GatewayTargetOptions): Promise<BenchTarget> {
  const ports = await gatewayPorts();
  const store = await startClickHouseStore();
  const config = writeConfig('distributed', ports, options, store.url);
  const processes = new Map<string, BenchProcess>();
  const stopAll = async (): Promise<void> => {
    // Ingress first (it publishes), billing after the bus is drained into Kafka, the store last.
    for (const name of [...SERVICES].reverse()) await processes.get(name)?.stop();
    await store.process.stop();
  };
  try {
    for (const name of SERVICES) processes.set(name, BenchProcess.node(name, `dist/services/${name}/src/main.js`, [], { env: { OPENROUTER_CONFIG: config }, nodeArgs: options.nodeArgs }));
    const health: Record<(typeof SERVICES)[number], string> = {
      adapter: `http://127.0.0.1:${ports.adapterHttp}/health`,
      router: `http://127.0.0.1:${ports.routerHttp}/health`,
      billing: `http://127.0.0.1:${ports.billing}/ready`,
      alerting: `http://127.0.0.1:${ports.alerting}/health`,
      ingress: `http://127.0.0.1:${ports.ingress}/ready`,
    };
    await Promise.all(SERVICES.map((name) => processes.get(name)!.waitHealthy(health[name], 90_000)));
  } catch (error) {
    await stopAll();
    throw error;
  }
  return {
    name: 'distributed',
    baseUrl: `http://127.0.0.1:${ports.ingress}/v1`,
    authorization: `Bearer ${options.keys.apiKey}`,
    models: gatewayModels,
    processes: [...processes].map(([name, p]) => ({ name, pid: p.pid })),
    usageRecords: async () => {
      // Each request's event once: FINAL folds a redelivered batch's duplicates as every report does.
      const query = `SELECT count() FROM ${usageDatabase(options, 'distributed')}.usage_events FINAL`;
      const response = await fetch(store.url, { method: 'POST', body: `${query} FORMAT TabSeparated` });
      const text = await response.text();
      if (!response.ok) throw new Error(`counting usage records: HTTP ${response.status}: ${text.slice(0, 300)}`);
      return Number(text.trim());
    },
    stop: stopAll,
  };
}
