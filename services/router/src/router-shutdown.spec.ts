import { credentials, Metadata } from '@grpc/grpc-js';
import { routerv1, type adapterv1, type chatv1 } from '@openrouter/contracts';
import { acceptBatches, CHANNEL_OPTIONS, chatChunkBatching, readStream } from '@openrouter/grpc';
import { createLogger } from '@openrouter/observability';
import type { AdapterPort } from './router.service';
import { configWith, contextFor, TWO_MODELS } from './routing/test-engine.testing';
import { startRouter, type RouterHandle } from './index';
import { unusedAdapters } from './adapter-port.testing';

const CHUNKS = chatChunkBatching<routerv1.ChatResponse>();

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve: () => void = () => undefined;
  const promise = new Promise<void>((done) => (resolve = done));
  return { promise, resolve };
}

describe('the router stopping', () => {
  let router: RouterHandle | undefined;
  let release = deferred();
  afterEach(async () => {
    release.resolve();
    await router?.close();
  });

  it('is no longer ready while it drains the calls in flight, and still alive, then finishes them', async () => {
    const called = deferred();
    release = deferred();
    // An adapter whose answer waits until the test lets it go: the call is in flight meanwhile.
    const adapter: AdapterPort = {
      ...unusedAdapters(),
      chat: (request) =>
        (async function* (): AsyncGenerator<adapterv1.ChatResponse> {
          called.resolve();
          await release.promise;
          yield { completion: { id: 'c', created: 1, model: request.upstreamModel, choices: [] } };
        })(),
    };
    const config = configWith(TWO_MODELS);
    router = await startRouter({ ...config, router: { ...config.router, grpc: { host: '127.0.0.1', port: 0 }, http: { host: '127.0.0.1', port: 0 } } }, createLogger('router', 'silent'), {}, { adapter });
    const url = `http://127.0.0.1:${router.httpPort}`;
    expect((await fetch(`${url}/ready`)).status).toBe(200);

    const metadata = new Metadata();
    metadata.set('authorization', `Bearer ${config.grpc.auth.token}`);
    const client = new routerv1.RouterServiceClient(`127.0.0.1:${router.grpcPort}`, credentials.createInsecure(), CHANNEL_OPTIONS);
    const request: routerv1.ChatRequest = {
      context: contextFor(),
      request: { model: 'cheap', messages: [{ role: 'user', text: 'hi', contentIsNull: false, toolCalls: [], extraJson: '' }], tools: [], stop: [], stream: false, logitBias: {}, metadata: {}, modalities: [], extraJson: '' } as unknown as chatv1.ChatRequest,
    };
    const answer: Promise<string[]> = (async () => {
      const kinds: string[] = [];
      for await (const message of readStream(client.chat(request, acceptBatches(CHUNKS, metadata)), undefined, CHUNKS)) kinds.push(...Object.keys(message).filter((k) => message[k as keyof routerv1.ChatResponse] !== undefined));
      return kinds;
    })();
    answer.catch(() => undefined);
    await called.promise;

    const closing = router.close();
    const ready = await fetch(`${url}/ready`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ status: 'not_ready', checks: { stopping: 'failing' } });
    expect((await fetch(`${url}/health`)).status).toBe(200);

    release.resolve();
    expect(await answer).toContain('completion');
    await closing;
    client.close();
    router = undefined;
  });
});
