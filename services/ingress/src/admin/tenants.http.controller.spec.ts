import { orgSchema, type OrgConfig } from '@openrouter/config';
import { ADMIN_OPENAPI } from './openapi';
import { visibleTenants } from '../access/admin-scope';
import { auditListView, auditListViewSchema, orgView, orgViewSchema, projectView, projectViewSchema, teamView, teamViewSchema } from './tenants.http.controller';

const acme = orgSchema.parse({
  id: 'acme',
  name: 'Acme',
  costCenter: 'CC-100',
  limits: { tpm: 5000 },
  teams: [
    { id: 'platform', costCenter: 'CC-200', limits: { rpm: 600 }, projects: [{ id: 'search', name: 'Search', costCenter: 'CC-300', limits: { tpm: 9000 } }, { id: 'ads' }] },
    { id: 'research', projects: [{ id: 'papers' }] },
  ],
});
const other = orgSchema.parse({ id: 'other', teams: [] });

/** Every key of a JSON value, at any depth. */
function keysOf(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(keysOf);
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([k, v]) => [k, ...keysOf(v)]);
}

describe('tenant views', () => {
  it('show an organisation with snake_case fields, its own cost centre and limits by their admin API names', () => {
    expect(orgView(acme)).toEqual({
      object: 'organization',
      id: 'acme',
      name: 'Acme',
      cost_center: 'CC-100',
      limits: { rpm: null, tpm: 5000 },
      end_user_limits: null,
      policy: null,
      teams: [
        {
          object: 'team',
          id: 'platform',
          name: null,
          cost_center: 'CC-200',
          limits: { rpm: 600, tpm: null },
          end_user_limits: null,
          policy: null,
          projects: [
            { object: 'project', id: 'search', name: 'Search', cost_center: 'CC-300', limits: { rpm: null, tpm: 9000 }, end_user_limits: null, policy: null },
            { object: 'project', id: 'ads', name: null, cost_center: null, limits: { rpm: null, tpm: null }, end_user_limits: null, policy: null },
          ],
        },
        { object: 'team', id: 'research', name: null, cost_center: null, limits: { rpm: null, tpm: null }, end_user_limits: null, policy: null, projects: [{ object: 'project', id: 'papers', name: null, cost_center: null, limits: { rpm: null, tpm: null }, end_user_limits: null, policy: null }] },
      ],
    });
  });

  it("show an entry's own end-user limits, null when it has none", () => {
    const org = orgSchema.parse({ id: 'chatco', endUserLimits: { rpm: 20 }, teams: [{ id: 'app', projects: [{ id: 'bot', endUserLimits: { rpm: 5, tpm: 2000 } }] }] });
    expect(orgView(org)).toMatchObject({ end_user_limits: { rpm: 20, tpm: null }, teams: [{ end_user_limits: null, projects: [{ end_user_limits: { rpm: 5, tpm: 2000 } }] }] });
  });

  it('show only their fixed fields, whatever else the configuration object holds', () => {
    const team = { ...acme.teams[0]!, internalNote: 'not for clients', projects: [{ ...acme.teams[0]!.projects[0]!, allowedModels: ['x'] }] };
    const held: OrgConfig = { ...acme, teams: [team] };
    const keys = new Set(keysOf(orgView(held)));
    expect(keys).toEqual(new Set(['object', 'id', 'name', 'cost_center', 'teams', 'limits', 'end_user_limits', 'rpm', 'tpm', 'policy', 'projects']));
    expect(Object.keys(teamView(team)).sort()).toEqual(['cost_center', 'end_user_limits', 'id', 'limits', 'name', 'object', 'policy', 'projects']);
    expect(Object.keys(projectView(team.projects[0]!)).sort()).toEqual(['cost_center', 'end_user_limits', 'id', 'limits', 'name', 'object', 'policy']);
  });

  it('match the schemas the OpenAPI document gives for the tenants responses', () => {
    expect(orgViewSchema.safeParse(orgView(acme)).success).toBe(true);
    expect(teamViewSchema.safeParse(teamView(acme.teams[0]!)).success).toBe(true);
    expect(projectViewSchema.safeParse(projectView(acme.teams[0]!.projects[0]!)).success).toBe(true);
    const schemas = ADMIN_OPENAPI.components.schemas;
    expect(Object.keys(schemas.Organization.properties ?? {})).toEqual(['object', 'id', 'name', 'cost_center', 'limits', 'end_user_limits', 'policy', 'teams']);
    expect(Object.keys(schemas.Team.properties ?? {})).toEqual(['object', 'id', 'name', 'cost_center', 'limits', 'end_user_limits', 'policy', 'projects']);
    expect(Object.keys(schemas.Project.properties ?? {})).toEqual(['object', 'id', 'name', 'cost_center', 'limits', 'end_user_limits', 'policy']);
    const paths = ADMIN_OPENAPI.paths as Record<string, { get?: unknown; post?: unknown }>;
    expect(JSON.stringify(paths['/admin/v1/tenants'])).toContain('#/components/schemas/Organization');
    expect(JSON.stringify(paths['/admin/v1/tenants/{org}/teams'])).toContain('#/components/schemas/Team');
    expect(JSON.stringify(paths['/admin/v1/tenants/{org}/teams/{team}/projects'])).toContain('#/components/schemas/Project');
  });
});

describe('tenant changes in the OpenAPI document', () => {
  it('describe a PATCH per level, answering the object changed, taking the change schema', () => {
    const paths = ADMIN_OPENAPI.paths as Record<string, { patch?: { requestBody: unknown; responses: Record<string, unknown> } }>;
    const levels: Array<[string, string]> = [
      ['/admin/v1/tenants/{org}', 'Organization'],
      ['/admin/v1/tenants/{org}/teams/{team}', 'Team'],
      ['/admin/v1/tenants/{org}/teams/{team}/projects/{project}', 'Project'],
    ];
    for (const [path, schema] of levels) {
      const patch = paths[path]?.patch;
      expect(JSON.stringify(patch?.responses['200'])).toContain(`#/components/schemas/${schema}`);
      expect(JSON.stringify(patch?.requestBody)).toContain('#/components/schemas/TenantChange');
      expect(Object.keys(patch?.responses ?? {})).toEqual(expect.arrayContaining(['400', '403', '404', '409']));
    }
    expect(Object.keys(ADMIN_OPENAPI.components.schemas.TenantChange.properties ?? {})).toEqual(['name', 'cost_center', 'limits', 'end_user_limits', 'policy']);
  });
});

describe('visibleTenants', () => {
  const orgs = [acme, other];

  it('shows every org to an unscoped key', () => {
    expect(visibleTenants(orgs, {}).map((o) => o.id)).toEqual(['acme', 'other']);
  });

  it('shows an org-scoped key its org only, whole', () => {
    expect(visibleTenants(orgs, { org: 'acme' })).toEqual([acme]);
  });

  it('shows a project-scoped key its org with only the team and project it holds', () => {
    const [seen, ...rest] = visibleTenants(orgs, { org: 'acme', project: 'search' }).map(orgView);
    expect(rest).toEqual([]);
    expect(seen?.teams.map((t) => [t.id, t.projects.map((p) => p.id)])).toEqual([['platform', ['search']]]);
  });
});

describe('audit views', () => {
  const entry = { id: 42, at: '2025-06-14T12:00:00.000Z', actor: 'ops', action: 'key.issue', target: 'key_1', details: { org: 'acme', project: 'search', role: 'admin' } };

  it("show a page in OpenAI's list shape, each entry with its id, as the OpenAPI document describes them", () => {
    const page = auditListView({ data: [entry, { ...entry, id: 41 }], firstId: 42, lastId: 41, hasMore: true });
    expect(page).toEqual({
      object: 'list',
      data: [
        { object: 'audit_entry', id: 'audit_42', at: entry.at, actor: 'ops', action: 'key.issue', target: 'key_1', details: entry.details },
        { object: 'audit_entry', id: 'audit_41', at: entry.at, actor: 'ops', action: 'key.issue', target: 'key_1', details: entry.details },
      ],
      first_id: 'audit_42',
      last_id: 'audit_41',
      has_more: true,
    });
    expect(auditListViewSchema.safeParse(page).success).toBe(true);
    const schemas = ADMIN_OPENAPI.components.schemas;
    expect(Object.keys(schemas.AuditEntry.properties ?? {})).toEqual(Object.keys(page.data[0]!));
    expect(Object.keys(schemas.AuditList.properties)).toEqual(Object.keys(page));
    expect(JSON.stringify((ADMIN_OPENAPI.paths as Record<string, unknown>)['/admin/v1/audit'])).toContain('#/components/schemas/AuditList');
  });

  it('show an empty page with null ids, and the ids of a page that stopped at the scan bound with no entry', () => {
    expect(auditListView({ data: [], firstId: undefined, lastId: undefined, hasMore: false })).toEqual({ object: 'list', data: [], first_id: null, last_id: null, has_more: false });
    expect(auditListView({ data: [], firstId: undefined, lastId: 9_001, hasMore: true })).toMatchObject({ first_id: null, last_id: 'audit_9001', has_more: true });
  });
});
