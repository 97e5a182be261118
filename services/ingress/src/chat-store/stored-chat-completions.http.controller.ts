import { Body, Controller, Delete, Get, HttpCode, Inject, Optional, Param, Post, Query, Req, UseGuards } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { GatewayError } from '@openrouter/errors';
import { parseInput } from '../admin/admin-input';
import { ownerOf } from '../access/owner';
import { requestContextOf, UnmeteredApiKeyGuard } from '../auth/api-key.guard';
import type { ChatJson } from './chat-completion-store';
import { chatMetadata as metadata, completionView, StoredChatCompletions, type ChatList } from './stored-chat-completions';

const page = {
  limit: z.coerce.number().int().min(1).max(100).default(20),
  order: z.enum(['asc', 'desc']).default('asc'),
  after: z.string().min(1).max(256).optional(),
};
const listQuery = z.looseObject({ ...page, model: z.string().min(1).max(256).optional() });
const messagesQuery = z.looseObject(page);
const updateBody = z.strictObject({ metadata: metadata.nullable() });

/** The `metadata[key]=value` pairs of a list's query (as the SDK sends them), each key once. */
function metadataFilters(query: Record<string, unknown>): Record<string, string> {
  const filters: Record<string, string> = {};
  for (const [name, value] of Object.entries(query)) {
    if (!name.startsWith('metadata')) continue;
    const key = /^metadata\[(.+)\]$/.exec(name)?.[1];
    if (key === undefined || typeof value !== 'string') {
      throw new GatewayError('bad_request', `Invalid value for '${name}': filter by metadata as metadata[key]=value, each key once.`, { param: name, code: 'invalid_value' });
    }
    // No request body may hold this key (it is refused as a prototype change), so no completion does; as a filter it would vanish and match every one.
    if (key === '__proto__') throw new GatewayError('bad_request', `Invalid value for '${name}': '__proto__' is not a metadata key.`, { param: name, code: 'invalid_value' });
    filters[key] = value;
  }
  return parseInput(z.object({ metadata }), { metadata: filters }).metadata;
}

/**
 * OpenAI's stored Chat Completions, kept by the gateway for any provider
 * (docs/chat-completions-store.md): `GET /v1/chat/completions` (filtered by `model` and
 * `metadata[key]=value`), `GET|POST|DELETE /v1/chat/completions/{id}` and
 * `GET /v1/chat/completions/{id}/messages`. A completion is its project's: every key of that
 * project reads it, no other (another's is not found). Authenticated and charged to the key's
 * request limits; nothing is metered. Off (`chatCompletions.store: false`): 404
 * `chat_completion_store_disabled`.
 */
@Controller('v1/chat/completions')
@UseGuards(UnmeteredApiKeyGuard)
export class StoredChatCompletionsHttpController {
  constructor(@Optional() @Inject(StoredChatCompletions) private readonly stored?: StoredChatCompletions) {}

  @Get()
  async list(@Req() req: FastifyRequest, @Query() query: Record<string, unknown>): Promise<ChatList> {
    const stored = this.enabled();
    const { limit, order, after, model } = parseInput(listQuery, query);
    return stored.list(ownerOf(requestContextOf(req)), { limit, order, after, model, metadata: metadataFilters(query) });
  }

  @Get(':id')
  async retrieve(@Req() req: FastifyRequest, @Param('id') id: string): Promise<ChatJson> {
    return completionView(await this.enabled().get(ownerOf(requestContextOf(req)), id));
  }

  @Post(':id')
  @HttpCode(200)
  async update(@Req() req: FastifyRequest, @Param('id') id: string, @Body() body: unknown): Promise<ChatJson> {
    const stored = this.enabled();
    const { metadata: next } = parseInput(updateBody, body);
    return completionView(await stored.update(ownerOf(requestContextOf(req)), id, next));
  }

  @Delete(':id')
  async remove(@Req() req: FastifyRequest, @Param('id') id: string): Promise<{ object: 'chat.completion.deleted'; id: string; deleted: true }> {
    await this.enabled().delete(ownerOf(requestContextOf(req)), id);
    return { object: 'chat.completion.deleted', id, deleted: true };
  }

  @Get(':id/messages')
  async messages(@Req() req: FastifyRequest, @Param('id') id: string, @Query() query: Record<string, unknown>): Promise<ChatList> {
    const stored = this.enabled();
    const { limit, order, after } = parseInput(messagesQuery, query);
    return stored.messages(ownerOf(requestContextOf(req)), id, { limit, order, after });
  }

  private enabled(): StoredChatCompletions {
    if (!this.stored) throw new GatewayError('not_found', 'Chat completions are not stored on this gateway (chatCompletions.store is false).', { code: 'chat_completion_store_disabled' });
    return this.stored;
  }
}
