import { Controller, Get, Req, UseGuards } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import type { routerv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { ApiKeyGuard, requestContextOf } from '../auth/api-key.guard';
import { RouterPort } from '../router.port';

interface OpenAIModel {
  id: string;
  object: 'model';
  created: number;
  owned_by: string;
  /** What the model can be asked for (`chat`, `embeddings`, `transcription`, …); an alias or `auto`: its models' together. */
  capabilities: string[];
  /** Its context window in tokens (an alias or `auto`: its models' largest); absent when unknown. */
  context_window?: number;
  /** A deprecated model's lifecycle (Unix seconds) and the model to move to; absent otherwise (clients ignore unknown fields). */
  deprecated_at?: number;
  retires_at?: number;
  replacement?: string;
}

function toOpenAIModel(m: routerv1.ModelInfo): OpenAIModel {
  const model: OpenAIModel = { id: m.id, object: 'model', created: m.created, owned_by: m.ownedBy, capabilities: m.capabilities };
  if (m.contextWindow > 0) model.context_window = m.contextWindow;
  if (m.deprecatedAt > 0) model.deprecated_at = m.deprecatedAt;
  if (m.retiresAt > 0) model.retires_at = m.retiresAt;
  if (m.replacement) model.replacement = m.replacement;
  return model;
}

@Controller('v1/models')
@UseGuards(ApiKeyGuard)
export class ModelsHttpController {
  constructor(private readonly router: RouterPort) {}

  @Get()
  async list(@Req() req: FastifyRequest): Promise<{ object: 'list'; data: OpenAIModel[] }> {
    const { models } = await this.router.listModels(requestContextOf(req));
    return { object: 'list', data: models.map(toOpenAIModel) };
  }

  // Model ids may hold slashes (`vendor/model`), so the id is the rest of the path. Fastify has
  // already percent-decoded it once; decoding again would misread an id holding `%`.
  @Get('*')
  async retrieve(@Req() req: FastifyRequest): Promise<OpenAIModel> {
    const id = (req.params as Record<string, string>)['*'] ?? '';
    const { models } = await this.router.listModels(requestContextOf(req));
    const model = models.find((m) => m.id === id);
    if (!model) throw new GatewayError('not_found', `The model '${id}' does not exist`, { param: 'model', code: 'model_not_found' });
    return toOpenAIModel(model);
  }
}
