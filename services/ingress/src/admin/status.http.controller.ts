import { Controller, Get, Inject, Req, UseGuards } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { evaluateReadiness, type ReadinessCheck } from '@openrouter/observability';
import { AdminGuard, adminOf, Roles } from './admin.guard';
import { ADMIN_OPENAPI } from './openapi';

export const ADMIN_READINESS = Symbol('ADMIN_READINESS');

/** Who am I, is the gateway healthy, and the API's own description. */
@Controller('admin/v1')
export class AdminStatusHttpController {
  constructor(@Inject(ADMIN_READINESS) private readonly checks: ReadinessCheck[]) {}

  @Get('openapi.json')
  openapi() {
    return ADMIN_OPENAPI;
  }

  @Get('whoami')
  @UseGuards(AdminGuard)
  @Roles('finance', 'viewer', 'project')
  whoami(@Req() req: FastifyRequest) {
    const admin = adminOf(req);
    return { id: admin.id, role: admin.role, org: admin.org ?? null, project: admin.project ?? null };
  }

  @Get('health')
  @UseGuards(AdminGuard)
  @Roles('viewer')
  health() {
    return evaluateReadiness(this.checks);
  }
}
