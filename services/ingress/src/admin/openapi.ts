import { z } from 'zod';
import { budgetBody, budgetPatchBody, issueKeyBody, rotateKeyBody, tenantBody, tenantPatchBody, updateKeyBody } from './admin-input';
import { budgetViewSchema } from './budgets.http.controller';
import { apiKeyViewSchema, networkCheckViewSchema } from './keys.http.controller';
import { endUserIdViewSchema, endUserLookupBody } from './end-users.http.controller';
import { AUDIT_ACTIONS } from '../access/access.repository';
import { alertViewSchema } from './alerts.http.controller';
import { adminBatchViewSchema } from './batches.http.controller';
import { responsesPurgeViewSchema } from './responses-purge.http.controller';
import { auditEntryViewSchema, orgViewSchema, projectViewSchema, teamViewSchema } from './tenants.http.controller';

const json = (schema: z.ZodType) => z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' });
const ok = (description: string) => ({ description, content: { 'application/json': { schema: { type: 'object' } } } });
const returns = (description: string, schema: string) => ({ description, content: { 'application/json': { schema: { $ref: `#/components/schemas/${schema}` } } } });
const listOf = (description: string, schema: string) => ({
  description,
  content: { 'application/json': { schema: { type: 'object', properties: { object: { const: 'list' }, data: { type: 'array', items: { $ref: `#/components/schemas/${schema}` } } } } } },
});
const error = { description: "An error in OpenAI's shape", content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } };
const roles = (...r: string[]) => ({ 'x-roles': r });
const idParam = (name: string) => ({ name, in: 'path', required: true, schema: { type: 'string' } });
/** The header of the admin writes that replay (creating POSTs, rotation, PATCHes), and the answers it adds to theirs. */
export const IDEMPOTENCY_KEY_PARAMETER = {
  name: 'Idempotency-Key',
  in: 'header',
  required: false,
  schema: { type: 'string', minLength: 1, maxLength: 255, pattern: '^[\\x20-\\x7E]+$' },
  description:
    'Makes a retry safe: the same key, caller and request (method, path, body) within 24 h answers the first answer again, status and body (an issued key included), with `Idempotent-Replayed: true`. The same key with another request is 422 `idempotency_key_reused`; while the first is in progress, 409 `idempotency_key_in_use`. A refused or failed request frees its key. Invalid (empty, over 255 characters, not printable ASCII): 400 `invalid_idempotency_key`',
};
const replayed = {
  headers: { 'Idempotent-Replayed': { description: '`true` when this is the stored answer to an earlier request with the same Idempotency-Key', schema: { const: 'true' } } },
};
const idempotent = {
  409: { ...error, description: '`already_exists`: the id is taken; `idempotency_key_in_use`: a request with this Idempotency-Key is in progress' },
  422: { ...error, description: '`idempotency_key_reused`: this Idempotency-Key was used with another request' },
};

/** A PATCH of an organisation, team or project. */
function tenantChange(what: string, schema: string, parameters: unknown[]) {
  return {
    summary: `Change a${what === 'organisation' ? 'n' : ''} ${what} added through the API: \`name\`, \`cost_center\`, \`limits\`, \`policy\` (each left out stays; \`null\` clears it: the inherited cost centre, the default limits, no routing policy of its own; \`limits\` and \`policy\` replace the ${what}'s own whole; an unknown provider id, a residency label no provider has or an unknown guardrail rule id is 400 \`invalid_value\`; \`policy.guardrails\` adds input guardrail rules to the requests, see docs/guardrails.md). Applied by every ingress replica at once, to requests from then on: usage recorded before keeps the cost centre it was recorded with. Audited as \`${what === 'organisation' ? 'org' : what}.update\` with each changed field's \`from\` and \`to\`. An org-scoped key changes only its own org (another is 404), a project-scoped key nothing (403 insufficient_scope). One declared in the configuration file is 409 \`configured_tenant\` (change it there); an \`id\` in the body is 400 \`immutable_field\``,
    ...roles('admin'),
    parameters: [...parameters, IDEMPOTENCY_KEY_PARAMETER],
    requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/TenantChange' } } } },
    responses: {
      200: { ...returns(`The ${what} as changed`, schema), ...replayed },
      400: error,
      401: error,
      403: error,
      404: error,
      409: { ...error, description: '`configured_tenant`: declared in the configuration file, which is what the gateway uses for it; `idempotency_key_in_use`: a request with this Idempotency-Key is in progress' },
      422: idempotent[422],
      503: error,
    },
  };
}

/** The admin API's description, served at /admin/v1/openapi.json. */
export const ADMIN_OPENAPI = {
  openapi: '3.1.0',
  info: {
    title: 'Open-Router admin API',
    version: '1.0.0',
    description: 'Tenants, API keys, audit log, routing state and usage reports. Authenticate with `Authorization: Bearer <admin key>`; each operation lists the roles (`x-roles`) that may call it — `admin` may call all. A key that names an org (and a project) reads and changes only that org (and project): anything outside it is 404 `not_found`, as if it did not exist, and creating what is wider than it is 403 `insufficient_scope`. Every 404 has the code `not_found`; a create whose id exists is 409 `already_exists` (`invalid_request_error`). Creating writes, key rotation and every PATCH take an `Idempotency-Key` header, which makes a retry answer the first answer again.',
  },
  servers: [{ url: '/' }],
  security: [{ adminKey: [] }],
  components: {
    securitySchemes: { adminKey: { type: 'http', scheme: 'bearer', description: 'An admin key, or with `access.admin.oidc` a JWT of the organisation\'s identity provider (single sign-on).' } },
    schemas: {
      Error: {
        type: 'object',
        properties: { error: { type: 'object', properties: { message: { type: 'string' }, type: { type: 'string' }, param: { type: ['string', 'null'] }, code: { type: ['string', 'null'] } } } },
      },
      IssueKey: json(issueKeyBody),
      UpdateKey: json(updateKeyBody),
      RotateKey: json(rotateKeyBody),
      ApiKey: z.toJSONSchema(apiKeyViewSchema),
      NetworkCheck: z.toJSONSchema(networkCheckViewSchema),
      EndUserLookup: json(endUserLookupBody),
      EndUserId: z.toJSONSchema(endUserIdViewSchema),
      Tenant: json(tenantBody),
      TenantChange: json(tenantPatchBody),
      Organization: z.toJSONSchema(orgViewSchema),
      Team: z.toJSONSchema(teamViewSchema),
      Project: z.toJSONSchema(projectViewSchema),
      Budget: z.toJSONSchema(budgetViewSchema),
      CreateBudget: json(budgetBody),
      BudgetChange: json(budgetPatchBody),
      AuditEntry: z.toJSONSchema(auditEntryViewSchema),
      Alert: z.toJSONSchema(alertViewSchema),
      Batch: z.toJSONSchema(adminBatchViewSchema),
      ResponsesPurge: z.toJSONSchema(responsesPurgeViewSchema),
      AlertList: { type: 'object', properties: { object: { const: 'list' }, data: { type: 'array', items: { $ref: '#/components/schemas/Alert' } } } },
      AuditList: {
        type: 'object',
        properties: {
          object: { const: 'list' },
          data: { type: 'array', items: { $ref: '#/components/schemas/AuditEntry' } },
          first_id: { type: ['string', 'null'], description: 'The newest entry of the page (null: empty); with `before`, a page that stopped at the scan bound gives the newest entry examined' },
          last_id: { type: ['string', 'null'], description: 'The oldest entry of the page (null: empty); a page that stopped at the scan bound gives the oldest entry examined, where `after` goes on' },
          has_more: { type: 'boolean', description: 'More entries may match further in the direction read' },
        },
        required: ['object', 'data', 'first_id', 'last_id', 'has_more'],
      },
    },
  },
  paths: {
    '/admin/v1/end-users/lookup': {
      post: {
        summary:
          "Which id an end user's usage records carry under `usage.endUsers`: with `pseudonymized`, the keyed digest only the gateway can compute (for a data subject's access or erasure request). The id goes in the body, never in a URL. A key scoped to an org asks for its own org only; another is 404",
        ...roles('admin', 'finance'),
        requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/EndUserLookup' } } } },
        responses: { 200: returns('The id the records carry', 'EndUserId'), 400: error, 401: error, 403: error, 404: error },
      },
    },
    '/admin/v1/whoami': { get: { summary: 'The calling admin key', ...roles('admin', 'finance', 'viewer', 'project'), responses: { 200: ok('The principal'), 401: error } } },
    '/admin/v1/health': { get: { summary: 'Readiness of the gateway', ...roles('admin', 'viewer'), responses: { 200: ok('Readiness report'), 401: error, 403: error } } },
    '/admin/v1/keys': {
      post: {
        summary: 'Issue a traffic key (the key is shown once); a scoped key issues only for its org (and project: naming none means its own), another is 404',
        ...roles('admin'),
        parameters: [IDEMPOTENCY_KEY_PARAMETER],
        requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/IssueKey' } } } },
        responses: { 201: { ...returns('The key record and the key (`key`, shown this once, and again to a retry with its Idempotency-Key)', 'ApiKey'), ...replayed }, 400: error, 401: error, 403: error, 404: error, ...idempotent, 503: error },
      },
      get: {
        summary:
          'List issued keys (no secrets), oldest first, a page at a time: `{object: "list", data, first_id, last_id, has_more}`; the next page is `?after=<last_id>`. A scoped key sees only its org (and project), and asking for another is 404',
        ...roles('admin'),
        parameters: [
          { name: 'org', in: 'query', schema: { type: 'string' } },
          { name: 'project', in: 'query', schema: { type: 'string' } },
          { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } },
          { name: 'after', in: 'query', schema: { type: 'string' }, description: 'The id of the last key of the previous page (its `last_id`)' },
        ],
        responses: { 200: listOf('A page of keys, with `first_id`, `last_id` and `has_more`', 'ApiKey'), 400: error, 401: error, 403: error, 404: error },
      },
    },
    '/admin/v1/keys/{id}': {
      get: { summary: 'One key; another org\'s (or project\'s) key is 404 to a scoped key', ...roles('admin'), parameters: [idParam('id')], responses: { 200: returns('The key record', 'ApiKey'), 401: error, 403: error, 404: error } },
      patch: {
        summary:
          "Change an issued key's name, allowed_models, policy (null removes it; its `guardrails` add input guardrail rules, an unknown rule id is 400 invalid_value), limits, expires_at (null removes it), metadata or tags, keeping its id and secret; effective on every replica at once. org, team, project, app are 400 immutable_field; a revoked key is 409 key_revoked; a configured key, or another org's (or project's) key to a scoped key, is 404",
        ...roles('admin'),
        parameters: [idParam('id'), IDEMPOTENCY_KEY_PARAMETER],
        requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/UpdateKey' } } } },
        responses: {
          200: { ...returns('The key as changed', 'ApiKey'), ...replayed },
          400: error,
          401: error,
          403: error,
          404: error,
          409: { ...error, description: '`key_revoked`: a revoked key cannot be changed; `idempotency_key_in_use`: a request with this Idempotency-Key is in progress' },
          422: idempotent[422],
          503: error,
        },
      },
      delete: { summary: 'Revoke a key; another org\'s (or project\'s) key is 404 to a scoped key', ...roles('admin'), parameters: [idParam('id')], responses: { 200: returns('The revoked key', 'ApiKey'), 401: error, 403: error, 404: error, 503: error } },
    },
    '/admin/v1/keys/{id}/rotate': {
      post: {
        summary:
          'Give a key a new secret under the same id (usage, budgets, rate limits and audit trail go on); the old secret keeps working for grace_seconds (default 86400, at most 604800; 0: refused at once), then is an unknown key (401). Rotating again during a grace ends the earlier grace at once. A revoked key is 409 key_revoked; a rotation overtaken by another one of the same key (it no longer has the secret read) is 409 key_changed, nothing written: read the key again and retry if it still needs a new secret; a configured key, or another org\'s (or project\'s) key to a scoped key, is 404',
        ...roles('admin'),
        parameters: [idParam('id'), IDEMPOTENCY_KEY_PARAMETER],
        requestBody: { required: false, content: { 'application/json': { schema: { $ref: '#/components/schemas/RotateKey' } } } },
        responses: {
          200: { ...returns('The key record with the new key (`key`, shown this once, and again to a retry with its Idempotency-Key) and `previous_key_expires_at`', 'ApiKey'), ...replayed },
          400: error,
          401: error,
          403: error,
          404: error,
          409: { ...error, description: '`key_revoked`: a revoked key cannot be rotated; `key_changed`: another rotation of the key was made meanwhile; `idempotency_key_in_use`: a request with this Idempotency-Key is in progress' },
          422: idempotent[422],
          503: error,
        },
      },
    },
    '/admin/v1/keys/{id}/network': {
      get: {
        summary: "Whether the key may be used from a client address (`?ip=`), by its own allowed_ips and its organisation's, team's and project's as they stand; which level refuses it. Another org's (or project's) key is 404 to a scoped key; a malformed ip is 400",
        ...roles('admin'),
        parameters: [idParam('id'), { name: 'ip', in: 'query', required: true, schema: { type: 'string' } }],
        responses: { 200: returns('The verdict and the lists', 'NetworkCheck'), 400: error, 401: error, 403: error, 404: error, 503: error },
      },
    },
    '/admin/v1/keys/{id}/revoke': { post: { summary: 'Revoke a key; another org\'s (or project\'s) key is 404 to a scoped key', ...roles('admin'), parameters: [idParam('id')], responses: { 200: returns('The revoked key', 'ApiKey'), 401: error, 403: error, 404: error, 503: error } } },
    '/admin/v1/tenants': {
      get: {
        summary: 'Organisations, teams and projects; a key scoped to an org (and a project) sees only that org (and the team holding that project)',
        ...roles('admin', 'finance'),
        responses: { 200: listOf('Organisations with their teams and projects', 'Organization'), 401: error, 403: error },
      },
      post: {
        summary: 'Add an organisation; a key scoped to an org is refused (403 insufficient_scope); an id that exists is 409 already_exists',
        ...roles('admin'),
        parameters: [IDEMPOTENCY_KEY_PARAMETER],
        requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/Tenant' } } } },
        responses: { 201: { ...returns('The new organisation', 'Organization'), ...replayed }, 400: error, 401: error, 403: error, ...idempotent, 503: error },
      },
    },
    '/admin/v1/tenants/{org}/teams': {
      post: {
        summary: 'Add a team; an org-scoped key only to its org (another is 404), a project-scoped key never (403 insufficient_scope); an id that exists is 409 already_exists',
        ...roles('admin'),
        parameters: [idParam('org'), IDEMPOTENCY_KEY_PARAMETER],
        requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/Tenant' } } } },
        responses: { 201: { ...returns('The new team', 'Team'), ...replayed }, 400: error, 401: error, 403: error, 404: error, ...idempotent, 503: error },
      },
    },
    '/admin/v1/tenants/{org}/teams/{team}/projects': {
      post: {
        summary: 'Add a project; an org-scoped key only to its org (another is 404), a project-scoped key never (403 insufficient_scope); an id that exists in the org is 409 already_exists',
        ...roles('admin'),
        parameters: [idParam('org'), idParam('team'), IDEMPOTENCY_KEY_PARAMETER],
        requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/Tenant' } } } },
        responses: { 201: { ...returns('The new project', 'Project'), ...replayed }, 400: error, 401: error, 403: error, 404: error, ...idempotent, 503: error },
      },
    },
    '/admin/v1/tenants/{org}': {
      patch: tenantChange('organisation', 'Organization', [idParam('org')]),
    },
    '/admin/v1/tenants/{org}/teams/{team}': {
      patch: tenantChange('team', 'Team', [idParam('org'), idParam('team')]),
    },
    '/admin/v1/tenants/{org}/teams/{team}/projects/{project}': {
      patch: tenantChange('project', 'Project', [idParam('org'), idParam('team'), idParam('project')]),
    },
    '/admin/v1/tenants/{org}/teams/{team}/projects/{project}/responses': {
      delete: {
        summary:
          "Purge the project's stored Responses-API data and stored chat completions at once (offboarding, a request to delete its data): every stored response, every conversation with its items and every stored chat completion, whatever their expiry, in bounded batches. Answers how many of each were deleted. A response still running in the background is not touched: it is stored when it ends (cancel it first). Audited as `project.responses_purge` with the counts once done; a store failure midway is 503 (`response_store_unavailable`, `conversation_store_unavailable`, `chat_completion_store_unavailable`; what was deleted stays deleted, a retry deletes the rest). An unknown project (or team, org), or one outside an org-scoped key's org, is 404; a project-scoped key may not purge (403 insufficient_scope); with both `responses.store` and `chatCompletions.store` off, 404 `responses_store_disabled`",
        ...roles('admin'),
        parameters: [idParam('org'), idParam('team'), idParam('project')],
        responses: { 200: returns('What was deleted', 'ResponsesPurge'), 400: error, 401: error, 403: error, 404: error, 503: error },
      },
    },
    '/admin/v1/budgets': {
      get: {
        summary:
          'Budgets (configured and created through the API) with their current period, spent, reserved and remaining as decimal strings and the spend forecast to the period end (`forecast`, null early in the period), by id, a page at a time: `{object: "list", data, first_id, last_id, has_more}`; the next page is `?after=<last_id>`. Filters match the scope fields exactly. A scoped key sees only budgets whose scope lies inside its own (a project key: those of its project), and asking for another org or project is 404',
        ...roles('admin', 'finance', 'project'),
        parameters: [
          ...['org', 'team', 'project', 'key'].map((name) => ({ name, in: 'query', schema: { type: 'string' }, description: `Budgets whose scope's ${name} is this` })),
          { name: 'source', in: 'query', schema: { enum: ['config', 'api'] } },
          { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } },
          { name: 'after', in: 'query', schema: { type: 'string' }, description: 'The id of the last budget of the previous page (its `last_id`)' },
        ],
        responses: { 200: listOf('A page of budgets', 'Budget'), 400: error, 401: error, 403: error, 404: error, 503: { ...error, description: 'The budget store (Redis) cannot be reached: `budget_store_unavailable`' } },
      },
      post: {
        summary:
          'Create a budget, enforced on every ingress replica at once; validated as budgets.list entries are (its currency must be that of every price). The id must be new among configured and created budgets of every org (409 already_exists, the same answer whoever holds it); an org holds at most budgets.maxPerOrg created budgets (400 budget_limit_reached). A budget created under the id of a deleted one starts from nothing. A scoped key creates budgets inside its scope only (a project key: of its project, naming none means it; another is 404)',
        ...roles('admin'),
        parameters: [IDEMPOTENCY_KEY_PARAMETER],
        requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/CreateBudget' } } } },
        responses: { 201: { ...returns('The new budget', 'Budget'), ...replayed }, 400: error, 401: error, 403: error, 404: error, ...idempotent, 503: error },
      },
    },
    '/admin/v1/budgets/{id}': {
      get: { summary: "One budget and where it stands; another scope's budget is 404 to a scoped key", ...roles('admin', 'finance', 'project'), parameters: [idParam('id')], responses: { 200: returns('The budget', 'Budget'), 401: error, 403: error, 404: error, 503: error } },
      patch: {
        summary:
          "Change a created budget's amount, enforcement, alert_thresholds or forecast_thresholds, applied from the next request on every replica. Its id, scope, period, timezone and currency cannot change (400 immutable_field: the period's spend would be orphaned); a configured budget is changed only in the configuration (403 budget_in_configuration)",
        ...roles('admin'),
        parameters: [idParam('id'), IDEMPOTENCY_KEY_PARAMETER],
        requestBody: { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/BudgetChange' } } } },
        responses: {
          200: { ...returns('The budget as changed', 'Budget'), ...replayed },
          400: error,
          401: error,
          403: error,
          404: error,
          409: { ...error, description: '`idempotency_key_in_use`: a request with this Idempotency-Key is in progress' },
          422: idempotent[422],
          503: error,
        },
      },
      delete: {
        summary: 'Delete a created budget (a configured one is 403 budget_in_configuration): requests stop counting against it at once. Its period spend stays in the ledger until it expires; a budget created again under its id starts from nothing',
        ...roles('admin'),
        parameters: [idParam('id')],
        responses: { 200: ok('`{object: "budget", id, deleted: true}`'), 401: error, 403: error, 404: error, 503: error },
      },
    },
    '/admin/v1/route/explain': {
      post: {
        summary:
          "How a chat request would be routed: task type, every candidate with why it was filtered or how it scored (a deployment a routing policy leaves out: `excluded by policy: …`), and the decision; no provider is called. Routed as an issued key's request (`?key=<id>`: its allowed models and policies) or a tenant's (`?org=&team=&project=`: their policies); by default the caller's own scope. Another scope's key or tenant is 404",
        ...roles('admin'),
        parameters: [
          { name: 'key', in: 'query', required: false, schema: { type: 'string' }, description: 'An issued key id: explain as its request would be routed' },
          { name: 'org', in: 'query', required: false, schema: { type: 'string' } },
          { name: 'team', in: 'query', required: false, schema: { type: 'string' } },
          { name: 'project', in: 'query', required: false, schema: { type: 'string' } },
        ],
        requestBody: { required: true, content: { 'application/json': { schema: { type: 'object', description: 'A POST /v1/chat/completions body, with `models` and `route` if wanted' } } } },
        responses: { 200: ok('The explanation'), 400: error, 404: error },
      },
    },
    '/admin/v1/providers/health': { get: { summary: 'Circuit state, latency, errors and load per provider and deployment, across every router replica (`replicas` names each, and those that did not answer)', ...roles('admin', 'viewer'), responses: { 200: ok('Health') } } },
    '/admin/v1/routing/gray-releases': { get: { summary: 'Every gray release: step, shares, canary and baseline statistics, rollback, across every router replica', ...roles('admin', 'viewer'), responses: { 200: ok('Gray releases') } } },
    '/admin/v1/usage': {
      get: {
        summary: 'Usage grouped by any dimensions and filtered by any of them over [from, to); a project key sees only its project (another one is 404)',
        ...roles('admin', 'finance', 'project'),
        parameters: [
          { name: 'from', in: 'query', schema: { type: 'string' }, description: 'Date or ISO instant; default the first of this month (UTC)' },
          { name: 'to', in: 'query', schema: { type: 'string' }, description: 'Date or ISO instant (exclusive); default the end of today (UTC)' },
          { name: 'group_by', in: 'query', schema: { type: 'string' }, description: 'Comma-separated: org, project, team, app, cost_center, key, model, requested_model, provider, deployment, operation, status, experiment, experiment_arm, day, month, tag:<name>' },
          ...['org', 'project', 'team', 'app', 'cost_center', 'key', 'model', 'provider', 'operation', 'status', 'experiment'].map((name) => ({ name, in: 'query', schema: { type: 'string' } })),
          { name: 'format', in: 'query', schema: { enum: ['json', 'csv'] } },
        ],
        responses: { 200: ok('Rows and a total, each with requests, errors, tokens, cost, cache_hits (requests the response cache answered, at cost 0) and cache_saved_cost (the spend they avoided, never part of cost); the total has cost_by_currency and cache_saved_cost_by_currency, and its cost and cache_saved_cost are null when rows are in several currencies; money as decimal strings'), 400: error, 401: error, 403: error, 404: error, 503: error },
      },
    },
    '/admin/v1/invoices/{org}/{month}': {
      get: {
        summary: "An organisation's invoice for a calendar month (UTC), one line per model",
        ...roles('admin', 'finance', 'project'),
        parameters: [idParam('org'), { ...idParam('month'), description: 'YYYY-MM' }, { name: 'format', in: 'query', schema: { enum: ['json', 'csv'] } }],
        responses: { 200: ok('The invoice: lines per model with amount, and cache_hits and cache_saved_cost for information (never billed), totals per currency'), 400: error, 404: error },
      },
    },
    '/admin/v1/chargeback': {
      get: {
        summary: 'Spend per cost centre for a month, with shared and untagged spend allocated (proportional to direct spend, or fixed shares)',
        ...roles('admin', 'finance', 'project'),
        parameters: [
          { name: 'month', in: 'query', required: true, schema: { type: 'string' } },
          { name: 'org', in: 'query', schema: { type: 'string' } },
          { name: 'allocation', in: 'query', schema: { enum: ['proportional', 'fixed'] } },
          { name: 'format', in: 'query', schema: { enum: ['json', 'csv'] } },
        ],
        responses: { 200: ok('Lines per org and cost centre (direct, allocated, total, and the cost centre\'s own requests, cache_hits and cache_saved_cost), unallocated rest, totals'), 400: error, 404: error },
      },
    },
    '/admin/v1/exports/focus': {
      get: {
        summary: 'A month of usage as FOCUS cost and usage rows',
        ...roles('admin', 'finance', 'project'),
        parameters: [
          { name: 'month', in: 'query', required: true, schema: { type: 'string' } },
          { name: 'org', in: 'query', schema: { type: 'string' } },
          { name: 'format', in: 'query', schema: { enum: ['json', 'csv'] } },
        ],
        responses: { 200: ok('FOCUS rows'), 400: error, 404: error },
      },
    },
    '/admin/v1/experiments/{id}/report': {
      get: {
        summary: 'The arms of an A/B experiment or gray release compared: requests, error rate, p50/p95 latency and TTFT, tokens and cost per request',
        ...roles('admin', 'finance', 'project'),
        parameters: [
          idParam('id'),
          {
            name: 'from',
            in: 'query',
            schema: { type: 'string' },
            description:
              'Date or ISO instant; before the oldest raw event kept (usage.clickhouse.retentionDays) is 400 `invalid_value`. Default: 30 days before `to`, or the oldest raw event kept when that is later',
          },
          { name: 'to', in: 'query', schema: { type: 'string' }, description: 'Date or ISO instant (exclusive); default now' },
          { name: 'format', in: 'query', schema: { enum: ['json', 'csv'] } },
        ],
        responses: {
          200: ok(
            '`object` (`experiment_report`), `experiment`, `from` (the start read from), `to` and `arms`, one entry per arm with `arm`, `requests`, `errors`, `error_rate`, `latency_p50_ms`, `latency_p95_ms`, `ttft_p50_ms`, `ttft_p95_ms`, `prompt_tokens_per_request`, `completion_tokens_per_request` over all its requests, and `cost_by_currency`: per currency its `requests`, `cost` and `cost_per_request`; `currency`, `cost` and `cost_per_request` are `null` unless all its requests are in one currency (costs in different currencies are never added up). The CSV has one line per arm and currency, the arm\'s figures on each, `cost` and `cost_per_request` of that currency and `currency_requests`, its requests priced in it (an arm priced in none has one line, its money cells empty); money as decimal strings',
          ),
          400: error,
          401: error,
          403: error,
          503: error,
        },
      },
    },
    '/admin/v1/batches': {
      get: {
        summary:
          'A project\'s batches, or those of a key in no project (docs/batches.md), newest first, a page at a time: `{object: "list", data, first_id, last_id, has_more}`; the next page is `?after=<last_id>`. A scoped key asks for its own org (and project) only; another is 404',
        ...roles('admin', 'viewer', 'project'),
        parameters: [
          { name: 'org', in: 'query', required: true, schema: { type: 'string' } },
          { name: 'project', in: 'query', schema: { type: 'string' }, description: 'The project (or `key`, not both)' },
          { name: 'key', in: 'query', schema: { type: 'string' }, description: 'A key in no project, which owns its batches alone (or `project`, not both)' },
          { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 100, default: 20 } },
          { name: 'after', in: 'query', schema: { type: 'string' }, description: 'The id of the last batch of the previous page (its `last_id`)' },
        ],
        responses: { 200: listOf('A page of batches, with `first_id`, `last_id` and `has_more`', 'Batch'), 400: error, 401: error, 403: error, 404: error, 503: error },
      },
    },
    '/admin/v1/batches/active': {
      get: {
        summary: 'Every batch running, waiting to run or being cancelled now, over all replicas, oldest first; a scoped key sees its own org\'s (and project\'s) only',
        ...roles('admin', 'viewer', 'project'),
        responses: { 200: listOf('The active batches', 'Batch'), 401: error, 403: error, 404: error, 503: error },
      },
    },
    '/admin/v1/batches/{id}': {
      get: { summary: "One batch, whoever's it is; another org's (or project's) batch is 404 to a scoped key", ...roles('admin', 'viewer', 'project'), parameters: [idParam('id')], responses: { 200: returns('The batch', 'Batch'), 401: error, 403: error, 404: error, 503: error } },
    },
    '/admin/v1/batches/{id}/cancel': {
      post: {
        summary:
          'Cancel a batch that has not ended, as its project\'s keys can: no line starts after, the lines in flight finish, and it ends `cancelled` with the answers it has. Again on a cancelled batch: the same answer; on one that ended otherwise, 409 `batch_ended`. Another org\'s (or project\'s) batch is 404 to a scoped key',
        ...roles('admin', 'project'),
        parameters: [idParam('id')],
        responses: { 200: returns('The batch, `cancelling` (or `cancelled`)', 'Batch'), 401: error, 403: error, 404: error, 409: error, 503: error },
      },
    },
    '/admin/v1/alerts': {
      get: {
        summary: 'Alert history (fired and resolved), newest first; keys scoped to an organisation see its alerts only',
        ...roles('admin', 'viewer', 'finance'),
        parameters: [
          { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 1000 } },
          { name: 'status', in: 'query', schema: { type: 'string', enum: ['firing', 'resolved'] } },
          { name: 'rule', in: 'query', schema: { type: 'string' } },
          { name: 'since', in: 'query', schema: { type: 'string', format: 'date-time' } },
        ],
        responses: { 200: { description: 'Alert history entries', content: { 'application/json': { schema: { $ref: '#/components/schemas/AlertList' } } } }, 400: error, 401: error, 403: error, 503: error },
      },
    },
    '/admin/v1/audit': {
      get: {
        summary:
          'Admin changes, newest first, a page at a time: `{object: "list", data, first_id, last_id, has_more}`; the next (older) page is `?after=<last_id>`, the previous (newer) one `?before=<first_id>`, with the same filters. One page examines at most 10,000 entries of the log: a filtered page that stops there has fewer entries than `limit` (maybe none), `has_more: true`, and the id of the last entry examined as `last_id` (`first_id` with `before`). A scoped key sees only the entries naming its org (and project) in `details`; naming another org or project is 404',
        ...roles('admin'),
        parameters: [
          { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } },
          { name: 'after', in: 'query', schema: { type: 'string', pattern: '^audit_[0-9]+$' }, description: 'Entries older than this id: the `last_id` of the previous page' },
          { name: 'before', in: 'query', schema: { type: 'string', pattern: '^audit_[0-9]+$' }, description: 'Entries newer than this id, the closest to it first in line (`audit_0`: from the oldest); not with `after`' },
          {
            name: 'action',
            in: 'query',
            style: 'form',
            explode: true,
            schema: { type: 'array', items: { enum: [...AUDIT_ACTIONS] } },
            description: 'Any of these actions: repeated (`action=key.issue&action=key.revoke`) or comma-separated',
          },
          { name: 'actor', in: 'query', schema: { type: 'string' }, description: 'Who made the change, exactly: an admin key id, `dev-admin`, or `oidc:<actorClaim>` for a person signed in through the identity provider' },
          { name: 'target', in: 'query', schema: { type: 'string' }, description: 'The id of what was changed, exactly' },
          { name: 'since', in: 'query', schema: { type: 'string' }, description: 'Entries at or after this instant (ISO 8601 with a zone, or a date: midnight UTC)' },
          { name: 'until', in: 'query', schema: { type: 'string' }, description: 'Entries before this instant (exclusive); after `since`' },
          { name: 'org', in: 'query', schema: { type: 'string' }, description: 'Entries whose `details.org` is this' },
          { name: 'project', in: 'query', schema: { type: 'string' }, description: 'Entries whose `details.project` is this' },
        ],
        responses: {
          200: returns('A page of audit entries, newest first', 'AuditList'),
          400: error,
          401: error,
          403: error,
          404: error,
          503: { ...error, description: 'The access store (Redis) cannot be reached: `access_store_unavailable`' },
        },
      },
    },
  } as Record<string, unknown>,
};
