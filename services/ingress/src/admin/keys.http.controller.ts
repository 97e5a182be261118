import { Controller, Delete, Get, HttpCode, Inject, Param, Patch, Post, Query, Req, UseGuards } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { AccessService } from '../access/access.service';
import type { PublicApiKey } from '../access/key-record';
import { unmapped } from '../access/network';
import { AdminGuard, adminOf, Roles } from './admin.guard';
import { Idempotent } from './idempotency.interceptor';
import { issueKeyBody, keyListQuery, networkCheckQuery, parseInput, policyChange, policyInput, rotateKeyBody, updateKeyInput } from './admin-input';
import { policyView, policyViewSchema } from './policy-view';

/** Issuing, listing, changing, rotating and revoking traffic keys (role `admin`; a scoped key only within its org and project). */
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
      policy: policyInput(input.policy),
      limits: input.limits,
      expiresAt: input.expires_at,
      metadata: input.metadata,
      tags: input.tags,
    });
    // The only time the key itself is shown; not used yet.
    return { ...view(record, null), key };
  }

  /** Keys as the API shows them, with when each was last used (left out when that cannot be read: the answer stands). */
  private async views(keys: readonly PublicApiKey[]): Promise<ApiKeyView[]> {
    const used = await this.access.keysLastUsed(keys.map((k) => k.id)).catch(() => undefined);
    return keys.map((key) => view(key, used && (used.get(key.id) ?? null)));
  }

  /**
   * One page of keys, oldest first, in OpenAI's list shape: `has_more`, and `first_id`/`last_id`
   * (`null` on an empty page); the next page is `?after=<last_id>`.
   */
  @Get()
  async list(@Req() req: FastifyRequest, @Query() query: unknown) {
    const page = await this.access.listKeys(adminOf(req), parseInput(keyListQuery, query));
    const data = await this.views(page.data);
    return { object: 'list', data, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null, has_more: page.hasMore };
  }

  @Get(':id')
  async get(@Req() req: FastifyRequest, @Param('id') id: string) {
    const [shown] = await this.views([await this.access.getKey(adminOf(req), id)]);
    return shown;
  }

  /**
   * Whether the key may be used from an address, by its allow lists and its tenants' as they stand
   * (docs/access.md#network-allow-lists): to check a list before a client is moved, or why one is refused.
   */
  @Get(':id/network')
  async network(@Req() req: FastifyRequest, @Param('id') id: string, @Query() query: unknown): Promise<NetworkCheckView> {
    const { ip } = parseInput(networkCheckQuery, query);
    const { refusing, levels } = await this.access.networkCheck(adminOf(req), id, ip);
    return {
      object: 'network_check',
      key: id,
      ip: unmapped(ip),
      allowed: refusing === undefined,
      refused_by: refusing?.level ?? null,
      allowed_ips: levels.map((l) => ({ level: l.level, ranges: [...l.ranges.ranges] })),
    };
  }

  @Patch(':id')
  @Idempotent()
  async update(@Req() req: FastifyRequest, @Param('id') id: string) {
    const input = updateKeyInput(req.body);
    const record = await this.access.updateKey(adminOf(req), id, {
      name: input.name,
      allowedModels: input.allowed_models,
      policy: policyChange(input.policy),
      limits: input.limits,
      expiresAt: input.expires_at,
      metadata: input.metadata,
      tags: input.tags,
    });
    const [shown] = await this.views([record]);
    return shown;
  }

  @Post(':id/rotate')
  @HttpCode(200)
  @Idempotent()
  async rotate(@Req() req: FastifyRequest, @Param('id') id: string) {
    const input = parseInput(rotateKeyBody, req.body);
    const { key, record } = await this.access.rotateKey(adminOf(req), id, input.grace_seconds);
    // The only time the new key is shown.
    const [shown] = await this.views([record]);
    return { ...shown, key };
  }

  @Post(':id/revoke')
  @HttpCode(200)
  async revoke(@Req() req: FastifyRequest, @Param('id') id: string) {
    const [shown] = await this.views([await this.access.revokeKey(adminOf(req), id)]);
    return shown;
  }

  @Delete(':id')
  async remove(@Req() req: FastifyRequest, @Param('id') id: string) {
    const [shown] = await this.views([await this.access.revokeKey(adminOf(req), id)]);
    return shown;
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
  policy: policyViewSchema.describe("The key's own routing policy, within its tenants' (docs/access.md#routing-policies); null: none of its own"),
  limits: z.strictObject({ rpm: z.number().int().optional(), tpm: z.number().int().optional() }),
  metadata: z.record(z.string(), z.string()),
  tags: z.record(z.string(), z.string()),
  created_at: z.string(),
  expires_at: z.string().nullable(),
  revoked_at: z.string().nullable(),
  status: z.enum(['active', 'expired', 'revoked']),
  previous_key_expires_at: z.string().optional().describe("After a rotation: when the replaced secret stops working (absent when it already has or there is none)"),
  last_used_at: z
    .string()
    .nullable()
    .optional()
    .describe('When a request last authenticated with it, to within access.keyUseFlushMs (default 30 s); null: not used since uses are recorded; absent when that cannot be read right now'),
  key: z.string().optional().describe('The key itself: in the answer to its issue or rotation only'),
});
export type ApiKeyView = z.infer<typeof apiKeyViewSchema>;

/** The answer of `GET /admin/v1/keys/{id}/network`; the OpenAPI document's `NetworkCheck`. */
export const networkCheckViewSchema = z.strictObject({
  object: z.literal('network_check'),
  key: z.string(),
  ip: z.string().describe('The address checked (an IPv4-mapped IPv6 address as IPv4)'),
  allowed: z.boolean().describe("Whether the key's requests from that address would be admitted, by the allow lists as they stand now"),
  refused_by: z.enum(['org', 'team', 'project', 'key']).nullable().describe('The level whose allowed_ips leave the address out; null when allowed'),
  allowed_ips: z.array(z.strictObject({ level: z.enum(['org', 'team', 'project', 'key']), ranges: z.array(z.string()) })).describe('Every list the key must pass, by the level that set it; empty: any address'),
});
export type NetworkCheckView = z.infer<typeof networkCheckViewSchema>;

/** `lastUsed`: ms since the epoch, null for never; undefined leaves `last_used_at` out (unknown, or a view that has no use for it). */
export function view(key: PublicApiKey, lastUsed?: number | null): ApiKeyView {
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
    policy: policyView(key.policy),
    limits: key.limits,
    metadata: key.metadata,
    tags: key.tags,
    created_at: key.createdAt,
    expires_at: key.expiresAt ?? null,
    revoked_at: key.revokedAt ?? null,
    status: key.revokedAt ? 'revoked' : key.expiresAt && Date.parse(key.expiresAt) <= Date.now() ? 'expired' : 'active',
    ...(key.previousExpiresAt !== undefined && Date.parse(key.previousExpiresAt) > Date.now() && !key.revokedAt && { previous_key_expires_at: key.previousExpiresAt }),
    ...(lastUsed !== undefined && { last_used_at: lastUsed === null ? null : new Date(lastUsed).toISOString() }),
  };
}
