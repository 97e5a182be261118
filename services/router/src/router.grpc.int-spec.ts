import { credentials, Metadata } from '@grpc/grpc-js';
import { routerv1, type adapterv1, type chatv1 } from '@openrouter/contracts';
import { acceptBatches, CHANNEL_OPTIONS, chatChunkBatching, GrpcServerHandle, readStream, ROUTE_CALLS_FEATURE, withFeatures } from '@openrouter/grpc';
import { createLogger } from '@openrouter/observability';
import { routerGrpcBinding } from './router.grpc.controller';
import { RouterService, type AdapterPort } from './router.service';
import { configWith, contextFor, engineFor, TWO_MODELS } from './routing/test-engine.testing';
import { unusedAdapters } from './adapter-port.testing';

const CHUNKS = chatChunkBatching<routerv1.ChatResponse>();

/** Answers every call with a whole completion. */
const adapters: AdapterPort = {
  ...unusedAdapters(),
  chat: (request) =>
    (async function* (): AsyncGenerator<adapterv1.ChatResponse> {
      yield { completion: { id: 'c', created: 1, model: request.upstreamModel, choices: [] } };
    })(),
};

describe('the router over gRPC, to a caller that asks for route calls and to one that does not', () => {
  let server: GrpcServerHandle;
  let client: routerv1.RouterServiceClient;

  beforeAll(async () => {
    const service = new RouterService(engineFor(configWith(TWO_MODELS)), adapters);
    server = await GrpcServerHandle.start('127.0.0.1', 0, [routerGrpcBinding(service, createLogger('router', 'silent'))]);
    client = new routerv1.RouterServiceClient(`127.0.0.1:${server.port}`, credentials.createInsecure(), CHANNEL_OPTIONS);
  });
  afterAll(async () => {
    client.close();
    await server.close(0);
  });

  const request: routerv1.ChatRequest = {
    context: contextFor(),
    request: { model: 'cheap', messages: [{ role: 'user', text: 'hi', contentIsNull: false, toolCalls: [], extraJson: '' }], tools: [], stop: [], stream: false, logitBias: {}, metadata: {}, modalities: [], extraJson: '' } as unknown as chatv1.ChatRequest,
  };
  const kinds = async (metadata: Metadata): Promise<string[][]> => {
    const out: string[][] = [];
    for await (const message of readStream(client.chat(request, metadata), undefined, CHUNKS)) out.push(Object.entries(message).filter(([, v]) => v !== undefined).map(([k]) => k));
    return out;
  };

  it('names the deployment before the call, then sends the decision with the answer, to a caller that asks', async () => {
    expect(await kinds(withFeatures([ROUTE_CALLS_FEATURE], acceptBatches(CHUNKS)))).toEqual([['calling'], ['routed']]);
  });

  it('sends the decision, then the answer, and no announcement, to a caller that does not ask (an older ingress)', async () => {
    expect(await kinds(acceptBatches(CHUNKS))).toEqual([['decision'], ['completion']]);
    expect(await kinds(new Metadata())).toEqual([['decision'], ['completion']]);
  });
});
