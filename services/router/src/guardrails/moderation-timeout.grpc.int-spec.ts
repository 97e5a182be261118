import { credentials } from '@grpc/grpc-js';
import { chatv1, routerv1, type adapterv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { acceptBatches, CHANNEL_OPTIONS, chatChunkBatching, GrpcServerHandle, readStream, ROUTE_CALLS_FEATURE, withFeatures } from '@openrouter/grpc';
import { createLogger } from '@openrouter/observability';
import { toOpenAIError } from '@openrouter/openai-wire';
import { unusedAdapters } from '../adapter-port.testing';
import { routerGrpcBinding } from '../router.grpc.controller';
import { RouterService, type AdapterPort } from '../router.service';
import { POLICY_MODELS, policyConfig } from '../routing/policy-config.testing';
import { contextFor, engineFor } from '../routing/test-engine.testing';
import { Guardrails, GUARDRAILS_UNAVAILABLE } from './guardrails';

const CHUNKS = chatChunkBatching<routerv1.ChatResponse>();
const MODELS = [...POLICY_MODELS, { id: 'mod', capabilities: ['moderation'], pricing: { input: '0' }, deployments: [{ id: 'mod-eu', provider: 'eu-1', model: 'omni-moderation-latest' }] }];

// The defaults scaled down: a moderation budget, the router's deadline, a whole answer's attempt
// timeout far beyond the test's own, and the margin the ingress adds (grpc.callTimeoutMs).
const MODERATION_TIMEOUT_MS = 200;
const DEADLINE_MS = 2_000;
const CALL_TIMEOUT_MS = 1_000;
/** How long the ingress waits for a streamed chat's first answer (`routerTimeouts`). */
const FIRST_STREAMED_MS = MODERATION_TIMEOUT_MS + DEADLINE_MS + CALL_TIMEOUT_MS;

/** Adapters whose moderation model never answers (its call ends only when aborted) and whose chat model answers at once. */
function adapters(chats: chatv1.ChatRequest[]): AdapterPort {
  return {
    ...unusedAdapters(),
    chat: (request) => {
      if (request.request) chats.push(request.request);
      return (async function* (): AsyncGenerator<adapterv1.ChatResponse> {
        yield { chunk: chatv1.ChatChunk.fromPartial({ id: 'c', model: request.upstreamModel, choices: [{ index: 0, delta: { content: 'hi' } }] }) };
      })();
    },
    moderate: (_request, signal) => new Promise((_, reject) => signal.addEventListener('abort', () => reject(new GatewayError('cancelled', 'The call was cancelled.')), { once: true })),
  };
}

describe.each(['open', 'closed'] as const)('a moderation model that hangs, over the router gRPC API (fail mode %s)', (failMode) => {
  let server: GrpcServerHandle;
  let client: routerv1.RouterServiceClient;
  const chats: chatv1.ChatRequest[] = [];

  beforeAll(async () => {
    const guardrails = new Guardrails({ rules: [{ id: 'unsafe', moderation: { model: 'mod' }, action: 'block' }], moderationFailMode: failMode, moderationTimeoutMs: MODERATION_TIMEOUT_MS });
    const config = policyConfig({ retry: { baseDelayMs: 0, maxDelayMs: 0, deadlineMs: DEADLINE_MS, completionTimeoutMs: 600_000 } }, MODELS);
    const service = new RouterService(engineFor(config), adapters(chats), guardrails);
    server = await GrpcServerHandle.start('127.0.0.1', 0, [routerGrpcBinding(service, createLogger('router', 'silent'))]);
    client = new routerv1.RouterServiceClient(`127.0.0.1:${server.port}`, credentials.createInsecure(), CHANNEL_OPTIONS);
  });
  afterAll(async () => {
    client.close();
    await server.close(0);
  });

  /** A streamed chat read as the ingress reads it: the first answer awaited at most `FIRST_STREAMED_MS`. */
  const streamedChat = async (): Promise<routerv1.ChatResponse[]> => {
    const request: routerv1.ChatRequest = {
      context: contextFor({ policy: { excludeProviders: [], guardrails: ['unsafe'] } }),
      request: chatv1.ChatRequest.fromPartial({ model: 'other', messages: [{ role: 'user', text: 'hello' }], stream: true }),
    };
    const metadata = withFeatures([ROUTE_CALLS_FEATURE], acceptBatches(CHUNKS));
    const events: routerv1.ChatResponse[] = [];
    const answers = (m: routerv1.ChatResponse): boolean => m.calling === undefined;
    for await (const event of readStream(() => client.chat(request, metadata), new AbortController().signal, CHUNKS, { peer: 'router', timeoutMs: FIRST_STREAMED_MS, answers })) events.push(event);
    return events;
  };

  it(failMode === 'open' ? 'serves the chat unscreened before the ingress gives up on the router' : 'refuses the chat with the documented 503 guardrails_unavailable before the ingress gives up on the router', async () => {
    if (failMode === 'open') {
      const events = await streamedChat();
      expect(events.find((e) => e.routed)?.routed?.decision?.unscreened).toBe(true);
      expect(chats).toHaveLength(1);
      return;
    }
    const refused = await streamedChat().then(
      () => undefined,
      (error: unknown) => GatewayError.from(error),
    );
    expect(refused).toMatchObject({ kind: 'unavailable', retryable: true, code: GUARDRAILS_UNAVAILABLE });
    expect(refused && toOpenAIError(refused).status).toBe(503);
    expect(chats).toEqual([]);
  });
});
