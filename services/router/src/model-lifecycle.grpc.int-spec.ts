import { credentials, Metadata } from '@grpc/grpc-js';
import { routerv1, type adapterv1, type chatv1 } from '@openrouter/contracts';
import { acceptBatches, callUnary, ROUTE_CALLS_FEATURE, withFeatures, CHANNEL_OPTIONS, chatChunkBatching, fromGrpcError, GrpcServerHandle, readStream } from '@openrouter/grpc';
import { createLogger } from '@openrouter/observability';
import { routerGrpcBinding } from './router.grpc.controller';
import { RouterService, type AdapterPort } from './router.service';
import { configWith, contextFor, engineFor, ManualClock } from './routing/test-engine.testing';
import { unusedAdapters } from './adapter-port.testing';

const CHUNKS = chatChunkBatching<routerv1.ChatResponse>();
const seconds = (iso: string): number => Date.parse(iso) / 1000;

/** The lifecycle fields of the route decision and the model list, over the router's real gRPC API. */
describe('model lifecycle over the router gRPC API', () => {
  let server: GrpcServerHandle;
  let client: routerv1.RouterServiceClient;
  const clock = new ManualClock(Date.parse('2025-08-01T00:00:00Z'));
  const adapters: AdapterPort = {
    ...unusedAdapters(),
    chat: (request) =>
      (async function* (): AsyncGenerator<adapterv1.ChatResponse> {
        yield { completion: { id: 'c', created: 1, model: request.upstreamModel, choices: [] } };
      })(),
    embed: (request) => Promise.resolve({ response: { model: request.upstreamModel, data: [] } }),
  };
  const model = (id: string, extra: Record<string, unknown> = {}) => ({ id, deployments: [{ id: `${id}-a`, provider: 'a', model: `up-${id}` }], ...extra });
  const config = configWith([
    model('old', { lifecycle: { deprecatedAt: '2025-07-01', retiresAt: '2025-09-01', replacement: 'new' } }),
    model('new'),
    model('emb-old', { capabilities: ['embeddings'], lifecycle: { deprecatedAt: '2025-07-01', retiresAt: '2025-09-01', replacement: 'emb-new' } }),
    model('emb-new', { capabilities: ['embeddings'] }),
  ]);

  beforeAll(async () => {
    const service = new RouterService(engineFor(config, clock), adapters);
    server = await GrpcServerHandle.start('127.0.0.1', 0, [routerGrpcBinding(service, createLogger('router', 'silent'))]);
    client = new routerv1.RouterServiceClient(`127.0.0.1:${server.port}`, credentials.createInsecure(), CHANNEL_OPTIONS);
  });
  afterAll(async () => {
    client.close();
    await server.close(0);
  });

  const chat = (model: string): routerv1.ChatRequest => ({
    context: contextFor(),
    request: { model, messages: [{ role: 'user', text: 'hi', contentIsNull: false, toolCalls: [], extraJson: '' }], tools: [], stop: [], stream: false, logitBias: {}, metadata: {}, modalities: [], extraJson: '' } as unknown as chatv1.ChatRequest,
  });
  const decisionOf = async (model: string): Promise<routerv1.RouteDecision | undefined> => {
    let decision: routerv1.RouteDecision | undefined;
    // As ingress calls it: the decision travels with the first answer event.
    const metadata = acceptBatches(CHUNKS, withFeatures([ROUTE_CALLS_FEATURE]));
    for await (const message of readStream(client.chat(chat(model), metadata), undefined, CHUNKS)) decision ??= message.routed?.decision;
    return decision;
  };
  const embed = (model: string) =>
    callUnary<routerv1.EmbedRequest, routerv1.EmbedResponse>(client.embed.bind(client), { context: contextFor(), request: { model, texts: ['x'], tokenInputs: [], extraJson: '' } }, new Metadata());

  it('carries a deprecated model’s dates and replacement in the decision of chat and embeddings', async () => {
    clock.time = Date.parse('2025-08-01T00:00:00Z');
    const deprecation = { model: 'old', deprecatedAt: seconds('2025-07-01'), retiresAt: seconds('2025-09-01'), replacement: 'new' };
    expect(await decisionOf('old')).toMatchObject({ model: 'old', deprecation });
    expect((await decisionOf('old'))?.replacedModel).toBeUndefined();
    expect((await decisionOf('new'))?.deprecation).toBeUndefined();
    expect((await embed('emb-old')).decision).toMatchObject({ model: 'emb-old', deprecation: { model: 'emb-old', replacement: 'emb-new' } });
  });

  it('names the retired model its replacement served, and lists the models with their lifecycle', async () => {
    clock.time = Date.parse('2025-08-01T00:00:00Z');
    const list = await callUnary<routerv1.ListModelsRequest, routerv1.ListModelsResponse>(client.listModels.bind(client), { context: contextFor(), includeRetired: false }, new Metadata());
    expect(list.models.find((m) => m.id === 'old')).toMatchObject({ deprecatedAt: seconds('2025-07-01'), retiresAt: seconds('2025-09-01'), replacement: 'new' });
    clock.time = Date.parse('2025-09-01T00:00:00Z');
    expect(await decisionOf('old')).toMatchObject({ model: 'new', replacedModel: 'old', deprecation: { model: 'old', replacement: 'new' } });
    expect((await embed('emb-old')).decision).toMatchObject({ model: 'emb-new', replacedModel: 'emb-old' });
    const after = await callUnary<routerv1.ListModelsRequest, routerv1.ListModelsResponse>(client.listModels.bind(client), { context: contextFor(), includeRetired: false }, new Metadata());
    expect(after.models.map((m) => m.id)).toEqual(['new', 'emb-new', 'auto']);
    // Asked for (count_tokens takes any name a request could): the retired names still served too,
    // each with its replacement, under the retired name's own permission.
    const named = await callUnary<routerv1.ListModelsRequest, routerv1.ListModelsResponse>(client.listModels.bind(client), { context: contextFor(), includeRetired: true }, new Metadata());
    expect(named.models.filter((m) => m.id === 'old' || m.id === 'emb-old')).toEqual([
      expect.objectContaining({ id: 'old', retiresAt: seconds('2025-09-01'), replacement: 'new' }),
      expect.objectContaining({ id: 'emb-old', replacement: 'emb-new' }),
    ]);
    const onlyOld = await callUnary<routerv1.ListModelsRequest, routerv1.ListModelsResponse>(client.listModels.bind(client), { context: { ...contextFor(), allowedModels: ['old'] }, includeRetired: true }, new Metadata());
    expect(onlyOld.models.map((m) => m.id)).toEqual(['old']);
  });

  it('refuses a retired model nothing replaces as not found, over the wire', async () => {
    clock.time = Date.parse('2026-01-01T00:00:00Z');
    const lone = configWith([model('lone', { lifecycle: { retiresAt: '2025-12-31' } }), model('other')]);
    const service = new RouterService(engineFor(lone, clock), adapters);
    const own = await GrpcServerHandle.start('127.0.0.1', 0, [routerGrpcBinding(service, createLogger('router', 'silent'))]);
    const ownClient = new routerv1.RouterServiceClient(`127.0.0.1:${own.port}`, credentials.createInsecure(), CHANNEL_OPTIONS);
    try {
      const error = await (async () => {
        for await (const message of readStream(ownClient.chat(chat('lone'), acceptBatches(CHUNKS)), undefined, CHUNKS)) void message;
      })().then(
        () => undefined,
        (e: unknown) => fromGrpcError(e),
      );
      expect(error).toMatchObject({ kind: 'not_found', code: 'model_not_found', param: 'model', message: 'The model `lone` was retired on 2025-12-31; name another model.' });
    } finally {
      ownClient.close();
      await own.close(0);
    }
  });
});
