import { Body, Controller, HttpCode, Post, Req, UseGuards } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { requireFilterInScope } from '../access/admin-scope';
import { UsageRecorder } from '../usage/usage-recorder';
import { AdminGuard, adminOf, Roles } from './admin.guard';
import { parseInput } from './admin-input';

/** The body of `POST /admin/v1/end-users/lookup`: the id is in the body, never in a URL that logs and proxies keep. */
export const endUserLookupBody = z.strictObject({
  org: z.string().min(1).max(256),
  end_user: z.string().min(1).max(1024).describe('The end-user id a client sends (`x-openrouter-user`, `user` or `safety_identifier`)'),
});

/** The answer of the lookup; the OpenAPI document's `EndUserId`. */
export const endUserIdViewSchema = z.strictObject({
  object: z.literal('end_user_id'),
  org: z.string(),
  end_users: z.enum(['raw', 'pseudonymized', 'dropped']).describe('`usage.endUsers`: what usage records keep of end users'),
  end_user_id: z.string().describe("The id this user's usage records carry: the pseudonym, the id as sent (raw), or '' (dropped)"),
});
export type EndUserIdView = z.infer<typeof endUserIdViewSchema>;

/**
 * Which id an end user's usage records carry (docs/usage-pipeline.md#end-users-in-usage-records):
 * with `usage.endUsers: pseudonymized` only the gateway, holding the secret, can tell, so a data
 * subject's request (what do you hold on me, erase it) starts here.
 */
@Controller('admin/v1/end-users')
@UseGuards(AdminGuard)
export class EndUsersHttpController {
  constructor(private readonly usage: UsageRecorder) {}

  @Post('lookup')
  @HttpCode(200)
  @Roles('finance')
  lookup(@Req() req: FastifyRequest, @Body() body: unknown): EndUserIdView {
    const { org, end_user } = parseInput(endUserLookupBody, body);
    // A scoped key asks for its own organisation only; another is answered as if it did not exist.
    requireFilterInScope(adminOf(req), { org });
    return { object: 'end_user_id', org, end_users: this.usage.endUsers, end_user_id: this.usage.endUserId(org, end_user) };
  }
}
