import { Controller, Get, HttpCode, Inject, Param, Patch, Post, Query, Req, UseGuards } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { Limits, OrgConfig, ProjectConfig, TeamConfig } from '@openrouter/config';
import { AUDIT_ACTIONS, type NumberedAuditEntry } from '../access/access.repository';
import { AccessService, type AuditPage, type TenantEntry, type TenantUpdate } from '../access/access.service';
import { visibleTenants } from '../access/admin-scope';
import { AdminGuard, adminOf, Roles } from './admin.guard';
import { Idempotent } from './idempotency.interceptor';
import { auditQuery, parseInput, policyChange, policyInput, tenantBody, tenantPatchInput } from './admin-input';
import { policyView, policyViewSchema } from './policy-view';

/** Organisations → teams → projects, extendable at run time; and the audit log of admin changes. */
@Controller('admin/v1')
@UseGuards(AdminGuard)
@Roles('admin')
export class TenantsHttpController {
  constructor(@Inject(AccessService) private readonly access: AccessService) {}

  @Get('tenants')
  @Roles('admin', 'finance')
  list(@Req() req: FastifyRequest) {
    return { object: 'list', data: visibleTenants(this.access.tenants.list(), adminOf(req)).map(orgView) };
  }

  @Post('tenants')
  @HttpCode(201)
  @Idempotent()
  async addOrg(@Req() req: FastifyRequest) {
    return orgView(await this.access.addOrg(adminOf(req), entry(req.body)));
  }

  @Post('tenants/:org/teams')
  @HttpCode(201)
  @Idempotent()
  async addTeam(@Req() req: FastifyRequest, @Param('org') org: string) {
    return teamView(await this.access.addTeam(adminOf(req), org, entry(req.body)));
  }

  @Post('tenants/:org/teams/:team/projects')
  @HttpCode(201)
  @Idempotent()
  async addProject(@Req() req: FastifyRequest, @Param('org') org: string, @Param('team') team: string) {
    return projectView(await this.access.addProject(adminOf(req), org, team, entry(req.body)));
  }

  /** Changes an organisation added through the API; every replica applies it at once. */
  @Patch('tenants/:org')
  @Idempotent()
  async updateOrg(@Req() req: FastifyRequest, @Param('org') org: string) {
    return orgView(await this.access.updateOrg(adminOf(req), org, update(req.body)));
  }

  @Patch('tenants/:org/teams/:team')
  @Idempotent()
  async updateTeam(@Req() req: FastifyRequest, @Param('org') org: string, @Param('team') team: string) {
    return teamView(await this.access.updateTeam(adminOf(req), org, team, update(req.body)));
  }

  @Patch('tenants/:org/teams/:team/projects/:project')
  @Idempotent()
  async updateProject(@Req() req: FastifyRequest, @Param('org') org: string, @Param('team') team: string, @Param('project') project: string) {
    return projectView(await this.access.updateProject(adminOf(req), org, team, project, update(req.body)));
  }

  /**
   * The audit log a page at a time, newest first, in OpenAI's list shape; the next page is
   * `?after=<last_id>`, the previous one `?before=<first_id>`, with the same filters.
   */
  @Get('audit')
  async audit(@Req() req: FastifyRequest, @Query() query: unknown) {
    const { action, ...input } = parseInput(auditQuery, query);
    const page = await this.access.auditPage(adminOf(req), { ...input, actions: action });
    return auditListView(page);
  }
}

/** An audit entry's id as the API shows it. */
export function auditId(id: number): string {
  return `audit_${id}`;
}

/** An audit entry as the API shows it; the OpenAPI document's `AuditEntry`. */
export const auditEntryViewSchema = z.strictObject({
  object: z.literal('audit_entry'),
  id: z.string().describe('audit_<n>: n is unique and increases in the order entries were written, on every replica'),
  at: z.string().describe('When the change was made (ISO 8601, UTC), by the clock of the replica that made it'),
  actor: z.string().describe('Who made it: the admin key id, `dev-admin` for the development admin key, or `oidc:<actorClaim>` for a person signed in through the identity provider'),
  action: z.string().describe(`What was done: ${AUDIT_ACTIONS.join(', ')}`),
  target: z.string().describe('The id of what was changed (a key, organisation, team, project or budget)'),
  details: z.record(z.string(), z.unknown()).describe("The org (and team, project) concerned, the actor's role and, for a scoped key, its scope (actor_org, actor_project); what changed"),
});
export const auditListViewSchema = z.strictObject({
  object: z.literal('list'),
  data: z.array(auditEntryViewSchema),
  first_id: z.string().nullable(),
  last_id: z.string().nullable(),
  has_more: z.boolean(),
});
export type AuditEntryView = z.infer<typeof auditEntryViewSchema>;
export type AuditListView = z.infer<typeof auditListViewSchema>;

export function auditEntryView(entry: NumberedAuditEntry): AuditEntryView {
  return { object: 'audit_entry', id: auditId(entry.id), at: entry.at, actor: entry.actor, action: entry.action, target: entry.target, details: entry.details };
}

export function auditListView(page: AuditPage): AuditListView {
  const id = (n: number | undefined): string | null => (n === undefined ? null : auditId(n));
  return { object: 'list', data: page.data.map(auditEntryView), first_id: id(page.firstId), last_id: id(page.lastId), has_more: page.hasMore };
}

/*
 * How tenants are shown: the admin API's snake_case names and a fixed set of fields, whatever
 * else the configuration objects hold. These schemas also describe the responses in the OpenAPI
 * document.
 */
const limitsViewSchema = z
  .strictObject({ rpm: z.number().int().nullable(), tpm: z.number().int().nullable() })
  .describe("The entry's own requests and tokens per minute; null: the configured default for its scope (access.rateLimits)");
const entryFields = {
  id: z.string(),
  name: z.string().nullable(),
  cost_center: z.string().nullable().describe("The entry's own cost centre; null: inherited (project → team → organisation → the organisation id)"),
};
const endUserLimitsField = z
  .strictObject({ rpm: z.number().int().nullable(), tpm: z.number().int().nullable() })
  .nullable()
  .describe("Each end user's own requests and tokens per minute within the entry's traffic (docs/access.md#end-user-limits); null: none of its own (the level above's, else access.rateLimits.endUser)");
const policyField = policyViewSchema.describe("The entry's own routing policy (docs/access.md#routing-policies); null: none of its own (those of the tenants above it still apply)");
export const projectViewSchema = z.strictObject({ object: z.literal('project'), ...entryFields, limits: limitsViewSchema, end_user_limits: endUserLimitsField, policy: policyField });
export const teamViewSchema = z.strictObject({ object: z.literal('team'), ...entryFields, limits: limitsViewSchema, end_user_limits: endUserLimitsField, policy: policyField, projects: z.array(projectViewSchema) });
export const orgViewSchema = z.strictObject({ object: z.literal('organization'), ...entryFields, limits: limitsViewSchema, end_user_limits: endUserLimitsField, policy: policyField, teams: z.array(teamViewSchema) });
export type ProjectView = z.infer<typeof projectViewSchema>;
export type TeamView = z.infer<typeof teamViewSchema>;
export type OrgView = z.infer<typeof orgViewSchema>;
type LimitsView = z.infer<typeof limitsViewSchema>;

export function orgView(org: OrgConfig): OrgView {
  return { object: 'organization', id: org.id, name: org.name ?? null, cost_center: org.costCenter ?? null, limits: limitsView(org.limits), end_user_limits: org.endUserLimits ? limitsView(org.endUserLimits) : null, policy: policyView(org.policy), teams: org.teams.map(teamView) };
}

export function teamView(team: TeamConfig): TeamView {
  return { object: 'team', id: team.id, name: team.name ?? null, cost_center: team.costCenter ?? null, limits: limitsView(team.limits), end_user_limits: team.endUserLimits ? limitsView(team.endUserLimits) : null, policy: policyView(team.policy), projects: team.projects.map(projectView) };
}

export function projectView(project: ProjectConfig): ProjectView {
  return { object: 'project', id: project.id, name: project.name ?? null, cost_center: project.costCenter ?? null, limits: limitsView(project.limits), end_user_limits: project.endUserLimits ? limitsView(project.endUserLimits) : null, policy: policyView(project.policy) };
}

function limitsView(limits: Limits): LimitsView {
  return { rpm: limits.rpm ?? null, tpm: limits.tpm ?? null };
}

function entry(body: unknown): TenantEntry {
  const input = parseInput(tenantBody, body);
  return { id: input.id, name: input.name, costCenter: input.cost_center, limits: input.limits, endUserLimits: input.end_user_limits, policy: policyInput(input.policy) };
}

function update(body: unknown): TenantUpdate {
  const input = tenantPatchInput(body);
  return { name: input.name, costCenter: input.cost_center, limits: input.limits, endUserLimits: input.end_user_limits, policy: policyChange(input.policy) };
}
