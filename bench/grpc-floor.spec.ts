import { routerv1 } from '@openrouter/contracts';
import { chainRequest, grpcFloorRow, type GrpcChainSample } from './grpc-floor';
import { chainAnswer } from './targets/grpc-chain-answer';

const sample = (requests: number, durationMs: number, latencyMs: number, cpuMs: GrpcChainSample['cpuMs']): GrpcChainSample => ({
  requests,
  errors: 0,
  durationMs,
  latenciesMs: Array.from({ length: requests }, () => latencyMs),
  cpuMs,
  memory: { peakRssBytes: 0, peakPssBytes: 0, memoryByProcess: {} },
});

describe('gRPC transport floor', () => {
  it('sums the rounds of a cell before dividing: CPU per call of each part and their total', () => {
    const row = grpcFloorRow('chat', 16, [sample(100, 1_000, 2, { client: 50, relay: 80, backend: 20 }), sample(300, 1_000, 4, { client: 150, relay: 120, backend: 40 })]);
    expect(row).toMatchObject({ scenario: 'chat', concurrency: 16, requests: 400, errors: 0, requestsPerSecond: 200, p50Ms: 4 });
    expect(row.cpuMsPerRequest).toEqual({ client: 0.5, relay: 0.5, backend: 0.15, total: 1.15 });
  });

  it('sends what the router sends ingress: the deployment called, then the decision with a completion or with the first chunk of a stream, the others after it, its usage last', () => {
    const chat = [...chainAnswer(false)];
    expect(chat.map((m) => Object.entries(m).filter(([, v]) => v !== undefined).map(([k]) => k))).toEqual([['calling'], ['routed']]);
    expect(chat[1]?.routed?.completion?.choices).toHaveLength(1);
    const stream = [...chainAnswer(true)];
    expect(stream[0]?.calling?.provider).toBe('openai');
    expect(stream[1]?.routed).toMatchObject({ decision: { provider: 'openai' }, chunk: { choices: [{ delta: { role: 'assistant' } }] } });
    expect(stream.slice(2).every((m) => m.chunk !== undefined)).toBe(true);
    expect(stream.at(-1)?.chunk?.usage?.completionTokens).toBe(stream.length - 3);
    // Both survive the wire format unchanged.
    for (const m of [...chat, ...stream]) expect(routerv1.ChatResponse.decode(routerv1.ChatResponse.encode(m).finish())).toEqual(m);
    expect(routerv1.ChatRequest.decode(routerv1.ChatRequest.encode(chainRequest(true)).finish()).request?.streamOptions?.includeUsage).toBe(true);
  });
});
