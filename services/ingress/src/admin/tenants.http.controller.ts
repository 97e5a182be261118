import { Controller, Get, HttpCode, Inject, Param, Post, Query, Req, UseGuards } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import type { OrgConfig } from '@openrouter/config';
import { AccessService, type TenantEntry } from '../access/access.service';
import type { AdminPrincipal } from './admin-auth';
import { AdminGuard, adminOf, Roles } from './admin.guard';
import { auditQuery, parseInput, tenantBody } from './admin-input';

/** Organisations → teams → projects, extendable at run time; and the audit log of admin changes. */
@Controller('admin/v1')
@UseGuards(AdminGuard)
@Roles('admin')
export class TenantsHttpController {
  constructor(@Inject(AccessService) private readonly access: AccessService) {}

  @Get('tenants')
  @Roles('admin', 'finance')
  list(@Req() req: FastifyRequest) {
    return { object: 'list', data: visibleTenants(this.access.tenants.list(), adminOf(req)) };
  }

  @Post('tenants')
  @HttpCode(201)
  addOrg(@Req() req: FastifyRequest) {
    return this.access.addOrg(adminOf(req), entry(req.body));
  }

  @Post('tenants/:org/teams')
  @HttpCode(201)
  addTeam(@Req() req: FastifyRequest, @Param('org') org: string) {
    return this.access.addTeam(adminOf(req), org, entry(req.body));
  }

  @Post('tenants/:org/teams/:team/projects')
  @HttpCode(201)
  addProject(@Req() req: FastifyRequest, @Param('org') org: string, @Param('team') team: string) {
    return this.access.addProject(adminOf(req), org, team, entry(req.body));
  }

  @Get('audit')
  async audit(@Query() query: unknown) {
    const { limit } = parseInput(auditQuery, query);
    return { object: 'list', data: await this.access.listAudit(limit) };
  }
}

/** A key scoped to an org (and a project) sees only that org (and the team holding that project). */
export function visibleTenants(orgs: OrgConfig[], admin: AdminPrincipal): OrgConfig[] {
  if (admin.org === undefined) return orgs;
  return orgs
    .filter((o) => o.id === admin.org)
    .map((o) => {
      if (admin.project === undefined) return o;
      const teams = o.teams
        .map((t) => ({ ...t, projects: t.projects.filter((p) => p.id === admin.project) }))
        .filter((t) => t.projects.length > 0);
      return { ...o, teams };
    });
}

function entry(body: unknown): TenantEntry {
  const input = parseInput(tenantBody, body);
  return { id: input.id, name: input.name, costCenter: input.cost_center };
}
