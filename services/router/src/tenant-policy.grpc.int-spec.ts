import { credentials, Metadata } from '@grpc/grpc-js';
import { routerv1, type adapterv1, type chatv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { acceptBatches, callUnary, CHANNEL_OPTIONS, chatChunkBatching, fromGrpcError, GrpcServerHandle, readStream } from '@openrouter/grpc';
import { createLogger } from '@openrouter/observability';
import { routerGrpcBinding } from './router.grpc.controller';
import { RouterService, type AdapterPort } from './router.service';
import { policyConfig } from './routing/policy-config.testing';
import { contextFor, engineFor } from './routing/test-engine.testing';
import { unusedAdapters } from './adapter-port.testing';

const CHUNKS = chatChunkBatching<routerv1.ChatResponse>();

describe('tenant policies over the router gRPC API', () => {
  let server: GrpcServerHandle;
  let client: routerv1.RouterServiceClient;
  /** The upstream model of every deployment called, in order. */
  const called: string[] = [];
  /** Upstream models that fail every call. */
  const failing = new Set<string>();
  const adapters: AdapterPort = {
    ...unusedAdapters(),
    chat: (request) => {
      called.push(request.upstreamModel);
      const fails = failing.has(request.upstreamModel);
      return (async function* (): AsyncGenerator<adapterv1.ChatResponse> {
        if (fails) throw new GatewayError('upstream_error', 'boom', { upstreamStatus: 500 });
        yield { completion: { id: 'c', created: 1, model: request.upstreamModel, choices: [] } };
      })();
    },
  };

  beforeAll(async () => {
    const service = new RouterService(engineFor(policyConfig({ defaults: { strategy: 'cost' }, retry: { baseDelayMs: 0, maxDelayMs: 0, maxAttempts: 10 } })), adapters);
    server = await GrpcServerHandle.start('127.0.0.1', 0, [routerGrpcBinding(service, createLogger('router', 'silent'))]);
    client = new routerv1.RouterServiceClient(`127.0.0.1:${server.port}`, credentials.createInsecure(), CHANNEL_OPTIONS);
  });
  afterAll(async () => {
    client.close();
    await server.close(0);
  });
  beforeEach(() => {
    called.length = 0;
    failing.clear();
  });

  const chat = (model: string, policy?: routerv1.TenantPolicy): routerv1.ChatRequest => ({
    context: contextFor(policy ? { policy } : {}),
    request: { model, messages: [{ role: 'user', text: 'hi', contentIsNull: false, toolCalls: [], extraJson: '' }], tools: [], stop: [], stream: false, logitBias: {}, metadata: {}, modalities: [], extraJson: '' } as unknown as chatv1.ChatRequest,
  });
  const decisionOf = async (request: routerv1.ChatRequest): Promise<routerv1.RouteDecision | undefined> => {
    let decision: routerv1.RouteDecision | undefined;
    for await (const message of readStream(client.chat(request, acceptBatches(CHUNKS)), undefined, CHUNKS)) decision ??= message.decision;
    return decision;
  };
  const EU: routerv1.TenantPolicy = { excludeProviders: [], guardrails: [], residency: { values: ['eu'] } };

  it('carries the policy from the caller: the cheaper US deployment serves without one, an EU one with it', async () => {
    expect(await decisionOf(chat('gpt'))).toMatchObject({ deployment: 'gpt-us', provider: 'us' });
    const eu = await decisionOf(chat('gpt', EU));
    expect(eu?.provider).toMatch(/^eu-/);
    expect(called.slice(1).every((m) => m !== 'gpt-us')).toBe(true);
  });

  it('fails over from a failing EU deployment to the other EU one, never to the US', async () => {
    failing.add('gpt-eu');
    failing.add('gpt-eu2');
    const decision = await decisionOf(chat('gpt', EU));
    // Both EU deployments of `gpt` failed; its fallback `other` served from the EU.
    expect(decision).toMatchObject({ model: 'other', deployment: 'other-eu' });
    expect(called).toEqual(expect.arrayContaining(['gpt-eu', 'gpt-eu2', 'other-eu']));
    expect(called.filter((m) => m.endsWith('-us') || m === 'gpt-plain')).toEqual([]);
  });

  it('refuses a model with no permitted deployment before any call, as not found with its own code', async () => {
    const error = await decisionOf(chat('us-only', EU)).then(
      () => undefined,
      (e: unknown) => fromGrpcError(e),
    );
    expect(error).toMatchObject({ kind: 'not_found', code: 'no_permitted_deployment', param: 'model' });
    expect(error?.message).toContain('data-residency policy (allowed residency: eu)');
    expect(called).toEqual([]);
  });

  it('explains the deployments the policy left out, and lists only the models it permits', async () => {
    const explained = await callUnary(client.explain.bind(client), { context: contextFor({ policy: EU }), request: chat('gpt').request }, new Metadata());
    const us = explained.candidates.find((c) => c.deployment === 'gpt-us');
    expect(us).toMatchObject({ eligible: false, filteredReason: 'excluded by policy: provider us has residency us (allowed residency: eu)' });
    const listed = await callUnary(client.listModels.bind(client), { context: contextFor({ policy: EU }), includeRetired: false }, new Metadata());
    expect(listed.models.map((m) => m.id)).not.toContain('us-only');
  });
});
