import { Controller, Get, Inject, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { evaluateReadiness, type ReadinessCheck } from '@openrouter/observability';

export const SERVICE_NAME = Symbol('SERVICE_NAME');
export const READINESS_CHECKS = Symbol('READINESS_CHECKS');

/** Liveness (`/health`) says the process runs; readiness (`/ready`) checks the service's own dependencies. */
@Controller()
export class HealthHttpController {
  constructor(
    @Inject(SERVICE_NAME) private readonly service: string,
    @Inject(READINESS_CHECKS) private readonly checks: ReadinessCheck[],
  ) {}

  @Get('health')
  health(): { status: 'ok'; service: string } {
    return { status: 'ok', service: this.service };
  }

  @Get('ready')
  async ready(@Res() reply: FastifyReply): Promise<void> {
    const report = await evaluateReadiness(this.checks);
    await reply
      .status(report.ready ? 200 : 503)
      .send({ status: report.ready ? 'ready' : 'not_ready', service: this.service, checks: report.checks, ...(report.details ? { details: report.details } : {}) });
  }
}
