import { Metadata } from '@grpc/grpc-js';
import type { adapterv1, routerv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { callUnary, readStream } from '@openrouter/grpc';
import type { AdapterClients } from './adapter-clients';
import type { CatalogModel, Deployment, ModelCatalog } from './model-catalog';

/**
 * Resolves the requested model to a deployment and calls its adapter. The full routing engine
 * (strategies, failover, experiments) builds on `plan`, which returns candidates in order.
 */
export class RouterService {
  constructor(
    private readonly catalog: ModelCatalog,
    private readonly adapters: AdapterClients,
  ) {}

  plan(model: CatalogModel): Deployment[] {
    return model.deployments;
  }

  async *chat(input: routerv1.ChatRequest, signal: AbortSignal): AsyncGenerator<routerv1.ChatResponse> {
    const { context, request } = requiredRequest(input);
    const model = this.catalog.resolve(request.model, 'chat', context.allowedModels);
    const deployment = this.first(model);
    yield { decision: decisionFor(model, deployment, 'requested model') };
    const call = this.adapters.for(deployment.provider).chat(
      { requestId: context.requestId, provider: deployment.provider, upstreamModel: deployment.model, request, timeoutMs: 0 },
      new Metadata(),
    );
    for await (const event of readStream<adapterv1.ChatResponse>(call, signal)) yield event;
  }

  async embed(input: routerv1.EmbedRequest, signal: AbortSignal): Promise<routerv1.EmbedResponse> {
    const { context, request } = requiredRequest(input);
    const model = this.catalog.resolve(request.model, 'embeddings', context.allowedModels);
    const deployment = this.first(model);
    const client = this.adapters.for(deployment.provider);
    const result = await callUnary<adapterv1.EmbedRequest, adapterv1.EmbedResponse>(
      client.embed.bind(client),
      { requestId: context.requestId, provider: deployment.provider, upstreamModel: deployment.model, request, timeoutMs: 0 },
      new Metadata(),
      signal,
    );
    if (!result.response) throw new GatewayError('upstream_error', 'The adapter returned no embeddings.');
    return { decision: decisionFor(model, deployment, 'requested model'), response: result.response };
  }

  listModels(context: routerv1.RequestContext | undefined): routerv1.ListModelsResponse {
    const allowed = context?.allowedModels ?? [];
    return {
      models: this.catalog
        .list()
        .filter((m) => allowed.length === 0 || allowed.includes(m.id))
        .map((m) => ({ id: m.id, created: m.created, ownedBy: m.ownedBy, capabilities: m.capabilities, contextWindow: m.contextWindow })),
    };
  }

  private first(model: CatalogModel): Deployment {
    const deployment = this.plan(model)[0];
    if (!deployment) throw new GatewayError('unavailable', `No deployment can serve \`${model.id}\` right now.`);
    return deployment;
  }
}

function decisionFor(model: CatalogModel, deployment: Deployment, reason: string): routerv1.RouteDecision {
  return { model: model.id, provider: deployment.provider, deployment: deployment.id, upstreamModel: deployment.model, attempts: 1, taskType: '', reason };
}

function requiredRequest<T>(input: { context?: routerv1.RequestContext | undefined; request?: T | undefined }): { context: routerv1.RequestContext; request: T } {
  if (!input.request || !input.context) throw new GatewayError('bad_request', 'The call carries no request or context.');
  return { context: input.context, request: input.request };
}

