import { Controller, Get, Inject, Optional, Req, UseGuards } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { evaluateReadiness, type ReadinessCheck } from '@openrouter/observability';
import { BillingClient } from '../billing.client';
import { AdminGuard, adminOf, Roles } from './admin.guard';
import { ADMIN_OPENAPI } from './openapi';

export const ADMIN_READINESS = Symbol('ADMIN_READINESS');

/** How long the admin health waits for billing's channel to connect. */
const BILLING_CHECK_MS = 500;

/** Who am I, is the gateway healthy, and the API's own description. */
@Controller('admin/v1')
export class AdminStatusHttpController {
  /** Billing's check: the reports behind /admin/v1/usage, invoices, chargeback and exports. */
  private readonly reports: ReadinessCheck | undefined;

  constructor(
    @Inject(ADMIN_READINESS) private readonly checks: ReadinessCheck[],
    @Optional() @Inject(BillingClient) billing?: BillingClient,
  ) {
    this.reports = billing && {
      name: 'billing',
      check: () => billing.isReachable(BILLING_CHECK_MS),
      details: async () => ({ serves: 'reports: usage, invoices, chargeback, exports', partOfIngressReadiness: false }),
    };
  }

  @Get('openapi.json')
  openapi() {
    return ADMIN_OPENAPI;
  }

  @Get('whoami')
  @UseGuards(AdminGuard)
  @Roles('finance', 'viewer', 'project')
  whoami(@Req() req: FastifyRequest) {
    const admin = adminOf(req);
    return { id: admin.id, role: admin.role, org: admin.org ?? null, project: admin.project ?? null, client_ip: admin.address ?? null };
  }

  @Get('health')
  @UseGuards(AdminGuard)
  @Roles('viewer')
  health() {
    // The ingress's own checks, and billing's here only, never in the ingress's /ready: chat does
    // not need billing, and a load balancer must not take an ingress out because of it.
    return evaluateReadiness(this.reports ? [...this.checks, this.reports] : this.checks);
  }
}
