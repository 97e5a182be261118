import { Controller, Delete, Inject, Optional, Param, Req, UseGuards } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { GatewayError } from '@openrouter/errors';
import { AdminGuard, adminOf, Roles } from './admin.guard';
import { parseInput } from './admin-input';
import { ResponsesPurge } from './responses-purge.service';

const tenantId = z.string().min(1).max(256);
const purgePath = z.strictObject({ org: tenantId, team: tenantId, project: tenantId });

/** The answer to a purge; the OpenAPI document's `ResponsesPurge`. */
export const responsesPurgeViewSchema = z.strictObject({
  object: z.literal('responses.purge'),
  org: z.string(),
  team: z.string(),
  project: z.string(),
  responses_deleted: z.number().int().nonnegative().describe('Stored responses deleted'),
  conversations_deleted: z.number().int().nonnegative().describe('Conversations deleted, with their items'),
  chat_completions_deleted: z.number().int().nonnegative().describe('Stored chat completions deleted'),
});
export type ResponsesPurgeView = z.infer<typeof responsesPurgeViewSchema>;

/** A project's stored Responses-API data deleted at once (docs/admin-api.md#purging-a-projects-stored-responses); role `admin`, as every change of a project. */
@Controller('admin/v1/tenants/:org/teams/:team/projects/:project/responses')
@UseGuards(AdminGuard)
@Roles('admin')
export class ResponsesPurgeHttpController {
  constructor(@Optional() @Inject(ResponsesPurge) private readonly purges?: ResponsesPurge) {}

  @Delete()
  async purge(@Req() req: FastifyRequest, @Param() params: unknown): Promise<ResponsesPurgeView> {
    const { org, team, project } = parseInput(purgePath, params);
    if (!this.purges) throw new GatewayError('not_found', 'Neither responses nor chat completions are stored on this gateway (responses.store and chatCompletions.store are false): there is nothing to purge.', { code: 'responses_store_disabled' });
    const deleted = await this.purges.purge(adminOf(req), org, team, project);
    return { object: 'responses.purge', org, team, project, responses_deleted: deleted.responses, conversations_deleted: deleted.conversations, chat_completions_deleted: deleted.chatCompletions };
  }
}
