import type { OrgConfig } from '@openrouter/config';
import { GatewayError } from '@openrouter/errors';

/**
 * The tenant an admin key is confined to: nothing named (every tenant), an org, or one project of
 * an org. Every admin read and write checks it here, so a scoped key can neither see nor change
 * anything outside its org (and project).
 */
export interface AdminScope {
  org?: string | undefined;
  project?: string | undefined;
}

export function isScoped(scope: AdminScope): boolean {
  return scope.org !== undefined;
}

/**
 * Whether an org lies inside the scope, and when `project` is given, that project too (`''`: no
 * project, the whole org, which a project-scoped key does not reach).
 */
export function inScope(scope: AdminScope, org: string, project?: string): boolean {
  if (scope.org === undefined) return true;
  if (org !== scope.org) return false;
  return project === undefined || scope.project === undefined || project === scope.project;
}

/** Anything outside the scope is answered as if it did not exist. */
export function outOfScope(): GatewayError {
  return new GatewayError('not_found', 'No such organisation or project.', { code: 'not_found' });
}

/** Throws a 404 unless the org (and project) lies inside the scope. */
export function requireInScope(scope: AdminScope, org: string, project?: string): void {
  if (!inScope(scope, org, project)) throw outOfScope();
}

/**
 * Throws a 404 unless a query's filters (an org, a project, each optional) stay inside the scope:
 * a scoped key may narrow its view, never widen it.
 */
export function requireFilterInScope(scope: AdminScope, filter: { org?: string | undefined; project?: string | undefined }): void {
  const otherOrg = filter.org !== undefined && scope.org !== undefined && filter.org !== scope.org;
  const otherProject = filter.project !== undefined && scope.project !== undefined && filter.project !== scope.project;
  if (otherOrg || otherProject) throw outOfScope();
}

/** A 403 for an operation wider than the scope (creating an org; a project key adding teams or projects). */
export function scopeTooNarrow(scope: AdminScope, what: string): GatewayError {
  return new GatewayError('permission_denied', `A key scoped to ${scope.project !== undefined ? 'a project' : 'an organisation'} may not ${what}.`, { code: 'insufficient_scope' });
}

/** A key scoped to an org (and a project) sees only that org (and the team holding that project). */
export function visibleTenants(orgs: OrgConfig[], scope: AdminScope): OrgConfig[] {
  if (scope.org === undefined) return orgs;
  return orgs
    .filter((o) => o.id === scope.org)
    .map((o) => {
      if (scope.project === undefined) return o;
      const teams = o.teams
        .map((t) => ({ ...t, projects: t.projects.filter((p) => p.id === scope.project) }))
        .filter((t) => t.projects.length > 0);
      return { ...o, teams };
    });
}
