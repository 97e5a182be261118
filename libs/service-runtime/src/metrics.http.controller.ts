import { Controller, Get, Inject, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import type { Registry } from '@openrouter/observability';

export const METRICS_REGISTRY = Symbol('METRICS_REGISTRY');

/** `/metrics`: the service's own registry in the Prometheus text format. */
@Controller()
export class MetricsHttpController {
  constructor(@Inject(METRICS_REGISTRY) private readonly registry: Registry) {}

  @Get('metrics')
  async metrics(@Res() reply: FastifyReply): Promise<void> {
    const body = await this.registry.metrics();
    await reply.status(200).header('content-type', this.registry.contentType).send(body);
  }
}
