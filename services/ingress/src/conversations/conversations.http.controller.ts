import { Body, Controller, Delete, Get, HttpCode, Inject, Optional, Param, Post, Query, Req, UseGuards } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { GatewayError } from '@openrouter/errors';
import { AccessService } from '../access/access.service';
import { ownerOf } from '../access/owner';
import { requestContextOf, UnmeteredApiKeyGuard } from '../auth/api-key.guard';
import type { ResponseJson } from '../responses/response-store';
import { Conversations, type ConversationView, type ItemList } from './conversations';

/** The `include` values the item routes take: the reasoning's `encrypted_content` is the only extra data kept. */
const INCLUDABLE = ['reasoning.encrypted_content', 'message.output_text.logprobs'] as const;

/** Whether `include` (as the SDK sends it, `include[]=…` repeated, or `include=…`) asks for the reasoning's `encrypted_content`; 400 for a value not served. */
function includesReasoning(query: Record<string, unknown>): boolean {
  const raw = query['include[]'] ?? query['include'];
  const values = raw === undefined ? [] : Array.isArray(raw) ? raw : [raw];
  for (const value of values) {
    if (typeof value !== 'string' || !(INCLUDABLE as readonly string[]).includes(value)) {
      throw new GatewayError('bad_request', `Invalid value for 'include': ${JSON.stringify(value)}. An item can include ${INCLUDABLE.map((v) => `'${v}'`).join(' and ')}.`, { param: 'include', code: 'invalid_value' });
    }
  }
  return values.includes('reasoning.encrypted_content');
}

/**
 * OpenAI's Conversations API (docs/responses-api.md#conversations): `/v1/conversations` and its
 * items. A conversation is its project's: every key of that project reads and changes it, no other
 * (another's is not found). Authenticated and charged to the key's request limits; nothing is
 * metered. Off (`responses.store: false`): 404 `conversation_store_disabled`. A key whose own or
 * tenants' policy keeps nothing of its responses (`storeResponses: false`) cannot create a
 * conversation or add to one, and what else it changes (metadata, an item deleted) keeps the
 * conversation no longer than it was kept already.
 */
@Controller('v1/conversations')
@UseGuards(UnmeteredApiKeyGuard)
export class ConversationsHttpController {
  constructor(
    @Inject(AccessService) private readonly access: Pick<AccessService, 'responsesUnstoredBy'>,
    @Optional() @Inject(Conversations) private readonly conversations?: Conversations,
  ) {}

  @Post()
  @HttpCode(200)
  async create(@Req() req: FastifyRequest, @Body() body: unknown): Promise<ConversationView> {
    const conversations = this.enabled();
    await this.refuseUnstored(req);
    return conversations.create(ownerOf(requestContextOf(req)), body);
  }

  @Get(':id')
  retrieve(@Req() req: FastifyRequest, @Param('id') id: string): Promise<ConversationView> {
    return this.enabled().get(ownerOf(requestContextOf(req)), id);
  }

  @Post(':id')
  @HttpCode(200)
  async update(@Req() req: FastifyRequest, @Param('id') id: string, @Body() body: unknown): Promise<ConversationView> {
    const conversations = this.enabled();
    return conversations.update(ownerOf(requestContextOf(req)), id, body, await this.mayKeep(req));
  }

  @Delete(':id')
  remove(@Req() req: FastifyRequest, @Param('id') id: string): Promise<{ id: string; object: 'conversation.deleted'; deleted: true }> {
    return this.enabled().delete(ownerOf(requestContextOf(req)), id);
  }

  @Get(':id/items')
  listItems(@Req() req: FastifyRequest, @Param('id') id: string, @Query() query: Record<string, unknown>): Promise<ItemList> {
    const conversations = this.enabled();
    return conversations.listItems(ownerOf(requestContextOf(req)), id, query, includesReasoning(query));
  }

  @Post(':id/items')
  @HttpCode(200)
  async addItems(@Req() req: FastifyRequest, @Param('id') id: string, @Body() body: unknown, @Query() query: Record<string, unknown>): Promise<ItemList> {
    const conversations = this.enabled();
    const include = includesReasoning(query);
    await this.refuseUnstored(req);
    return conversations.addItems(ownerOf(requestContextOf(req)), id, body, include);
  }

  @Get(':id/items/:itemId')
  item(@Req() req: FastifyRequest, @Param('id') id: string, @Param('itemId') itemId: string, @Query() query: Record<string, unknown>): Promise<ResponseJson> {
    const conversations = this.enabled();
    return conversations.getItem(ownerOf(requestContextOf(req)), id, itemId, includesReasoning(query));
  }

  @Delete(':id/items/:itemId')
  async removeItem(@Req() req: FastifyRequest, @Param('id') id: string, @Param('itemId') itemId: string): Promise<ConversationView> {
    const conversations = this.enabled();
    return conversations.deleteItem(ownerOf(requestContextOf(req)), id, itemId, await this.mayKeep(req));
  }

  private enabled(): Conversations {
    if (!this.conversations) throw new GatewayError('not_found', 'Conversations are not stored on this gateway (responses.store is false).', { code: 'conversation_store_disabled' });
    return this.conversations;
  }

  /** A key whose policy keeps nothing of its responses keeps no conversation either. */
  private async refuseUnstored(req: FastifyRequest): Promise<void> {
    const unstoredBy = await this.unstoredBy(req);
    if (unstoredBy) {
      throw new GatewayError('permission_denied', `Conversations cannot be kept for this key: the policy of its ${unstoredBy} keeps its responses from being stored (store_responses false).`, { code: 'conversations_not_allowed' });
    }
  }

  /**
   * Whether a change the key makes may keep the conversation longer (every change pushes its expiry
   * out): not for a key whose policy keeps nothing, which may keep no conversation, and so none
   * made before its policy or by another key of its project either.
   */
  private async mayKeep(req: FastifyRequest): Promise<boolean> {
    return (await this.unstoredBy(req)) === undefined;
  }

  private async unstoredBy(req: FastifyRequest): Promise<string | undefined> {
    const key = req.apiKeyRecord;
    return key ? this.access.responsesUnstoredBy(key) : undefined;
  }
}
