import { Controller, Delete, Get, HttpCode, Inject, Param, Post, Query, Req, UseGuards } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { AccessService } from '../access/access.service';
import type { PublicApiKey } from '../access/key-record';
import { AdminGuard, adminOf, Roles } from './admin.guard';
import { Idempotent } from './idempotency.interceptor';
import { issueKeyBody, keyListQuery, parseInput } from './admin-input';

/** Issuing, listing and revoking traffic keys (role `admin`; a scoped key only within its org and project). */
@Controller('admin/v1/keys')
@UseGuards(AdminGuard)
@Roles('admin')
export class KeysHttpController {
  constructor(@Inject(AccessService) private readonly access: AccessService) {}

  @Post()
  @HttpCode(201)
  @Idempotent()
  async issue(@Req() req: FastifyRequest) {
    const input = parseInput(issueKeyBody, req.body);
    const { key, record } = await this.access.issueKey(adminOf(req), {
      name: input.name,
      org: input.org,
      team: input.team,
      project: input.project,
      app: input.app,
      allowedModels: input.allowed_models,
      limits: input.limits,
      expiresAt: input.expires_at,
      metadata: input.metadata,
      tags: input.tags,
    });
    // The only time the key itself is shown.
    return { ...view(record), key };
  }

  /**
   * One page of keys, oldest first, in OpenAI's list shape: `has_more`, and `first_id`/`last_id`
   * (`null` on an empty page); the next page is `?after=<last_id>`.
   */
  @Get()
  async list(@Req() req: FastifyRequest, @Query() query: unknown) {
    const page = await this.access.listKeys(adminOf(req), parseInput(keyListQuery, query));
    const data = page.data.map(view);
    return { object: 'list', data, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null, has_more: page.hasMore };
  }

  @Get(':id')
  async get(@Req() req: FastifyRequest, @Param('id') id: string) {
    return view(await this.access.getKey(adminOf(req), id));
  }

  @Post(':id/revoke')
  @HttpCode(200)
  async revoke(@Req() req: FastifyRequest, @Param('id') id: string) {
    return view(await this.access.revokeKey(adminOf(req), id));
  }

  @Delete(':id')
  async remove(@Req() req: FastifyRequest, @Param('id') id: string) {
    return view(await this.access.revokeKey(adminOf(req), id));
  }
}

/** A key as the API shows it (never its secret, but at issue: `key`); the OpenAPI document's `ApiKey`. */
export const apiKeyViewSchema = z.strictObject({
  object: z.literal('api_key'),
  id: z.string(),
  name: z.string(),
  prefix: z.string().describe('The first characters of the key, to recognise it'),
  org: z.string(),
  team: z.string().nullable(),
  project: z.string().nullable(),
  app: z.string().nullable(),
  allowed_models: z.array(z.string()).describe('Empty: every model'),
  limits: z.strictObject({ rpm: z.number().int().optional(), tpm: z.number().int().optional() }),
  metadata: z.record(z.string(), z.string()),
  tags: z.record(z.string(), z.string()),
  created_at: z.string(),
  expires_at: z.string().nullable(),
  revoked_at: z.string().nullable(),
  status: z.enum(['active', 'expired', 'revoked']),
  key: z.string().optional().describe('The key itself: in the answer to its issue only'),
});
export type ApiKeyView = z.infer<typeof apiKeyViewSchema>;

export function view(key: PublicApiKey): ApiKeyView {
  return {
    object: 'api_key',
    id: key.id,
    name: key.name,
    prefix: key.prefix,
    org: key.orgId,
    team: key.teamId || null,
    project: key.projectId || null,
    app: key.appId || null,
    allowed_models: key.allowedModels,
    limits: key.limits,
    metadata: key.metadata,
    tags: key.tags,
    created_at: key.createdAt,
    expires_at: key.expiresAt ?? null,
    revoked_at: key.revokedAt ?? null,
    status: key.revokedAt ? 'revoked' : key.expiresAt && Date.parse(key.expiresAt) <= Date.now() ? 'expired' : 'active',
  };
}
