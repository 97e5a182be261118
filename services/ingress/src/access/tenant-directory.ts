import type { AccessConfig, Limits, OrgConfig, ProjectConfig, TeamConfig, TenantPolicyConfig } from '@openrouter/config';
import { GatewayError } from '@openrouter/errors';

/** Where a key sits in the organisation, with what it inherits. */
export interface TenantPlacement {
  orgId: string;
  teamId: string;
  projectId: string;
  /** The project's, else the team's, else the organisation's, else the organisation id. */
  costCenter: string;
  teamLimits: Limits;
  projectLimits: Limits;
  orgLimits: Limits;
  /** Each end user's limits within the traffic: the project's `endUserLimits`, else the team's, else the organisation's (unset: the configured default). */
  endUserLimits: Limits | undefined;
  /** The organisation's, team's and project's routing policies, in that order (each may be unset). */
  policies: Array<TenantPolicyConfig | undefined>;
}

/**
 * Organisations → teams → projects from configuration, extended at run time through the admin
 * API. Configuration wins for ids it declares.
 */
export class TenantDirectory {
  private orgs = new Map<string, OrgConfig>();

  constructor(private readonly configured: readonly OrgConfig[]) {
    this.replaceRuntime([]);
  }

  /** Installs the orgs added at run time (from the shared store). */
  replaceRuntime(runtime: readonly OrgConfig[]): void {
    const merged = new Map<string, OrgConfig>();
    for (const org of runtime) merged.set(org.id, org);
    for (const org of this.configured) merged.set(org.id, mergeOrg(merged.get(org.id), org));
    this.orgs = merged;
  }

  list(): OrgConfig[] {
    return [...this.orgs.values()];
  }

  org(id: string): OrgConfig | undefined {
    return this.orgs.get(id);
  }

  /**
   * Whether the configuration file declares this org, or this team or project of it: its fields
   * there win over any stored copy on every start (see `replaceRuntime`), so only the file changes them.
   */
  declares(orgId: string, teamId?: string, projectId?: string): boolean {
    const org = this.configured.find((o) => o.id === orgId);
    if (!org || teamId === undefined) return org !== undefined;
    const team = org.teams.find((t) => t.id === teamId);
    if (!team || projectId === undefined) return team !== undefined;
    return team.projects.some((p) => p.id === projectId);
  }

  /**
   * Places a key. An org not declared anywhere is accepted as a bare tenant (the development key
   * and config keys of small set-ups), but a team or project must exist in its org.
   */
  place(orgId: string, teamId: string | undefined, projectId: string | undefined): TenantPlacement {
    const org = this.orgs.get(orgId);
    const team = teamId ? org?.teams.find((t) => t.id === teamId) : undefined;
    if (teamId && !team) throw new GatewayError('not_found', `The team "${teamId}" does not exist in the organisation "${orgId}".`, { param: 'team' });
    let project: ProjectConfig | undefined;
    let owner: TeamConfig | undefined = team;
    if (projectId) {
      const teams = team ? [team] : (org?.teams ?? []);
      owner = teams.find((t) => t.projects.some((p) => p.id === projectId));
      project = owner?.projects.find((p) => p.id === projectId);
      if (!project) throw new GatewayError('not_found', `The project "${projectId}" does not exist in the organisation "${orgId}".`, { param: 'project' });
    }
    return {
      orgId,
      teamId: owner?.id ?? '',
      projectId: project?.id ?? '',
      costCenter: project?.costCenter ?? owner?.costCenter ?? org?.costCenter ?? orgId,
      teamLimits: owner?.limits ?? {},
      projectLimits: project?.limits ?? {},
      orgLimits: org?.limits ?? {},
      endUserLimits: project?.endUserLimits ?? owner?.endUserLimits ?? org?.endUserLimits,
      policies: [org?.policy, owner?.policy, project?.policy],
    };
  }
}

function mergeOrg(runtime: OrgConfig | undefined, configured: OrgConfig): OrgConfig {
  if (!runtime) return configured;
  const teams = new Map(runtime.teams.map((t) => [t.id, t]));
  for (const team of configured.teams) {
    const extra = teams.get(team.id);
    const projects = new Map((extra?.projects ?? []).map((p) => [p.id, p]));
    for (const p of team.projects) projects.set(p.id, p);
    teams.set(team.id, { ...team, projects: [...projects.values()] });
  }
  return { ...configured, teams: [...teams.values()] };
}

/** The limits a scope uses: its own, else the configured default for that scope. */
export function effectiveLimits(own: Limits, fallback: AccessConfig['rateLimits']['key']): Limits {
  return { rpm: own.rpm ?? fallback.rpm, tpm: own.tpm ?? fallback.tpm };
}
