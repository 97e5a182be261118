import { randomBytes } from 'node:crypto';
import { routerv1 } from '@openrouter/contracts';
import { configSchema } from '@openrouter/config';
import { acceptBatches, chatChunkBatching, GrpcSecurity, readStream } from '@openrouter/grpc';
import { freePorts } from '../test/support/ports';
import { BENCH_PROMPT } from './bench-config';
import { percentile, type GrpcFloorRow } from './report';
import { ProcessGroupMeter, sampleProcess, type MemoryPeaks } from './proc-stats';
import { BenchProcess } from './targets/child-process';
import { chainAnswer } from './targets/grpc-chain-answer';

/**
 * The gRPC transport floor of the distributed mode: ingress → router → adapter is two grpc-js
 * hops, each a client and a server. Here the same two hops run with the gateway's contracts,
 * channel options, call helpers and service token, and no logic: a client (in this process, ingress's place), a
 * relay (the router's) and a backend answering a canned answer (the adapter's), the relay and the
 * backend each a process of its own (`targets/grpc-chain.main.ts`). Their CPU per call is what
 * grpc-js, HTTP/2 and protobuf cost the distributed mode before it does anything.
 */

const CHAIN_MAIN = 'dist/bench/targets/grpc-chain.main.js';

/** A chat request as ingress sends it to the router for the bench's prompt. */
export function chainRequest(stream: boolean): routerv1.ChatRequest {
  return routerv1.ChatRequest.fromPartial({
    context: { requestId: 'req_0123456789abcdef', orgId: 'org-bench', projectId: 'proj-bench', teamId: 'team-bench', appId: 'app-bench', costCenter: 'cc-bench', keyId: 'key_bench' },
    request: { model: 'bench-chat', messages: [{ role: 'user', text: BENCH_PROMPT }], maxTokens: 64, stream, ...(stream ? { streamOptions: { includeUsage: true } } : {}) },
  });
}


/** One measured run of the chain: calls, and the CPU each part used, in ms. */
export interface GrpcChainSample {
  requests: number;
  errors: number;
  durationMs: number;
  latenciesMs: number[];
  cpuMs: { client: number; relay: number; backend: number };
  /** The relay's and the backend's memory during the run. */
  memory: MemoryPeaks;
}

/**
 * The chain, started: `measure` drives it from this process like the load driver drives the HTTP
 * targets, so the bench can interleave it with them.
 */
export class GrpcChain {
  private constructor(
    private readonly client: routerv1.RouterServiceClient,
    private readonly relay: BenchProcess,
    private readonly backend: BenchProcess,
  ) {}

  static async start(): Promise<GrpcChain> {
    const [backendPort, relayPort] = await freePorts(2);
    // Built like the services (`npm run build`), so no compiler is loaded in them either.
    // The distributed services authenticate every call with the shared token: so does the floor.
    const token = `bench-floor-token-${randomBytes(16).toString('hex')}`;
    // The gateway's own gRPC settings, defaults included (load balancing, connection age).
    const security = GrpcSecurity.fromConfig(configSchema.shape.grpc.parse({ auth: { token } }));
    const backend = BenchProcess.node('backend', CHAIN_MAIN, ['--role', 'backend', '--port', String(backendPort), '--token', token]);
    const relay = BenchProcess.node('relay', CHAIN_MAIN, ['--role', 'relay', '--port', String(relayPort), '--backend', `127.0.0.1:${backendPort}`, '--token', token]);
    const chain = new GrpcChain(security.client(routerv1.RouterServiceClient, `127.0.0.1:${relayPort}`), relay, backend);
    try {
      await chain.waitReady();
    } catch (error) {
      await chain.stop();
      throw error;
    }
    return chain;
  }

  /** The relay and the backend, the chain's processes of its own. */
  get processes(): Array<{ name: string; pid: number }> {
    return [
      { name: 'relay', pid: this.relay.pid },
      { name: 'backend', pid: this.backend.pid },
    ];
  }

  /** `concurrency` calls always in flight for `durationMs`, with the CPU of each part and the memory of the relay and backend. */
  async measure(scenario: 'chat' | 'stream', concurrency: number, durationMs: number): Promise<GrpcChainSample> {
    const meter = new ProcessGroupMeter(this.processes);
    const clientStart = sampleProcess(process.pid)?.cpuMs ?? 0;
    meter.begin();
    const run = await this.drive(scenario === 'stream', concurrency, durationMs);
    const usage = meter.end();
    const client = (sampleProcess(process.pid)?.cpuMs ?? 0) - clientStart;
    if (run.requests === 0) throw new Error(`gRPC floor ${scenario} c=${concurrency}: no call completed (${run.errors} failed): ${run.lastError}`);
    const memory = { peakRssBytes: usage.peakRssBytes, peakPssBytes: usage.peakPssBytes, memoryByProcess: usage.memoryByProcess };
    return { ...run, cpuMs: { client, relay: usage.cpuMsByProcess['relay'] ?? 0, backend: usage.cpuMsByProcess['backend'] ?? 0 }, memory };
  }

  async stop(): Promise<void> {
    this.client.close();
    await Promise.all([this.relay.stop(), this.backend.stop()]);
  }

  private async waitReady(): Promise<void> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const dead = [this.relay, this.backend].find((p) => !p.running);
      if (dead) throw new Error(`gRPC floor: ${dead.name} exited:\n${dead.tail}`);
      // One whole call proves the relay and the backend are both up.
      if (await this.call(false).then(() => true, () => false)) return;
      if (Date.now() > deadline) throw new Error(`gRPC floor: the chain did not answer in 30 s:\n${this.relay.tail}\n${this.backend.tail}`);
      await new Promise((done) => setTimeout(done, 100));
    }
  }

  private async call(stream: boolean): Promise<void> {
    const expected = stream ? STREAM_MESSAGES : CHAT_MESSAGES;
    let messages = 0;
    for await (const _ of readStream(() => this.client.chat(stream ? STREAM_REQUEST : CHAT_REQUEST, acceptBatches(CHUNKS)), undefined, CHUNKS)) messages++;
    if (messages !== expected) throw new Error(`expected ${expected} messages, got ${messages}`);
  }

  private async drive(stream: boolean, concurrency: number, durationMs: number) {
    const latenciesMs: number[] = [];
    let errors = 0;
    let lastError = '';
    const started = performance.now();
    const end = started + durationMs;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (performance.now() < end) {
          const t0 = performance.now();
          try {
            await this.call(stream);
            latenciesMs.push(performance.now() - t0);
          } catch (error) {
            errors++;
            lastError = String(error);
          }
        }
      }),
    );
    return { requests: latenciesMs.length, errors, lastError, latenciesMs, durationMs: performance.now() - started };
  }
}

const CHUNKS = chatChunkBatching<routerv1.ChatResponse>();
const CHAT_REQUEST = chainRequest(false);
const STREAM_REQUEST = chainRequest(true);
const CHAT_MESSAGES = [...chainAnswer(false)].length;
const STREAM_MESSAGES = [...chainAnswer(true)].length;

const round = (n: number): number => Number(n.toFixed(3));

/** A report row from a cell's samples. */
export function grpcFloorRow(scenario: 'chat' | 'stream', concurrency: number, samples: readonly GrpcChainSample[]): GrpcFloorRow {
  const sum = (f: (s: GrpcChainSample) => number): number => samples.reduce((acc, s) => acc + f(s), 0);
  const requests = sum((s) => s.requests);
  const per = (ms: number): number => round(ms / requests);
  const client = sum((s) => s.cpuMs.client);
  const relay = sum((s) => s.cpuMs.relay);
  const backend = sum((s) => s.cpuMs.backend);
  return {
    scenario,
    concurrency,
    requests,
    errors: sum((s) => s.errors),
    requestsPerSecond: round((requests * 1000) / sum((s) => s.durationMs)),
    p50Ms: round(percentile(samples.flatMap((s) => s.latenciesMs), 0.5)),
    cpuMsPerRequest: { client: per(client), relay: per(relay), backend: per(backend), total: per(client + relay + backend) },
  };
}
