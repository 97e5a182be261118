import { Controller, Delete, Get, HttpCode, Inject, Optional, Param, Post, Query, Req, Res, UseGuards } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { GatewayError } from '@openrouter/errors';
import { itemView, responseView } from '@openrouter/openai-wire';
import { parseInput } from '../admin/admin-input';
import { requestContextOf, UnmeteredApiKeyGuard } from '../auth/api-key.guard';
import { ownerOf } from '../access/owner';
import { REQUEST_BOUNDS, type RequestBounds } from '../routes/request-bounds';
import type { ResponseJson } from './response-store';
import { serveResponseStream } from './response-stream';
import { StoredResponses } from './stored-responses';

/** The `include` values a retrieval takes: the reasoning's `encrypted_content` is the only extra data kept. */
const INCLUDABLE = ['reasoning.encrypted_content', 'message.output_text.logprobs'] as const;

/** `include` as the SDK sends it (`include[]=…`, repeated) or as `include=…`. */
function includeOf(query: Record<string, unknown>): string[] {
  const raw = query['include[]'] ?? query['include'];
  const values = raw === undefined ? [] : Array.isArray(raw) ? raw : [raw];
  for (const value of values) {
    if (typeof value !== 'string' || !(INCLUDABLE as readonly string[]).includes(value)) {
      throw new GatewayError('bad_request', `Invalid value for 'include': ${JSON.stringify(value)}. A stored response can include ${INCLUDABLE.map((v) => `'${v}'`).join(' and ')}.`, {
        param: 'include',
        code: 'invalid_value',
      });
    }
  }
  return values as string[];
}

const retrieveQuery = z.looseObject({
  stream: z.enum(['true', 'false']).optional(),
  // A number written out: an empty value would coerce to 0.
  starting_after: z.string().regex(/^\d+$/).transform(Number).pipe(z.number().int().max(Number.MAX_SAFE_INTEGER)).optional(),
  include_obfuscation: z.enum(['true', 'false']).optional(),
});

const inputItemsQuery = z.looseObject({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  order: z.enum(['asc', 'desc']).default('desc'),
  after: z.string().min(1).max(128).optional(),
});

/**
 * The stored responses of OpenAI's Responses API (docs/responses-api.md#stored-responses):
 * `GET /v1/responses/{id}`, `DELETE /v1/responses/{id}`, `GET /v1/responses/{id}/input_items`, and
 * `POST /v1/responses/{id}/cancel` (a background response's). A response is
 * its project's: every key of that project reads it, no other (another's is not found).
 * Authenticated and charged to the key's request limits; nothing is metered. Off
 * (`responses.store: false`): 404 `response_store_disabled`.
 */
@Controller('v1/responses')
@UseGuards(UnmeteredApiKeyGuard)
export class StoredResponsesHttpController {
  constructor(
    @Inject(REQUEST_BOUNDS) private readonly bounds: RequestBounds,
    @Optional() @Inject(StoredResponses) private readonly stored?: StoredResponses,
  ) {}

  /**
   * The response as it stands; with `stream=true`, the stream of a background response created
   * with `stream: true`, from its start or after the event numbered `starting_after`.
   */
  @Get(':id')
  async retrieve(@Req() req: FastifyRequest, @Res() reply: FastifyReply, @Param('id') id: string, @Query() query: Record<string, unknown>): Promise<void> {
    const stored = this.enabled();
    const include = includeOf(query);
    const { stream, starting_after: after } = parseInput(retrieveQuery, query);
    const owner = ownerOf(requestContextOf(req));
    if (stream === 'true') return serveResponseStream(reply, stored, owner, id, after ?? -1, this.bounds.streamStallMs);
    const record = await stored.get(owner, id);
    await reply.status(200).send(responseView(record.response, { include }));
  }

  @Delete(':id')
  async remove(@Req() req: FastifyRequest, @Param('id') id: string): Promise<{ id: string; object: 'response'; deleted: true }> {
    await this.enabled().delete(ownerOf(requestContextOf(req)), id);
    return { id, object: 'response', deleted: true };
  }

  @Get(':id/input_items')
  async inputItems(
    @Req() req: FastifyRequest,
    @Param('id') id: string,
    @Query() query: Record<string, unknown>,
  ): Promise<{ object: 'list'; data: ResponseJson[]; first_id: string | null; last_id: string | null; has_more: boolean }> {
    const stored = this.enabled();
    const include = includeOf(query);
    const { limit, order, after } = parseInput(inputItemsQuery, query);
    const page = await stored.inputItems(ownerOf(requestContextOf(req)), id, { limit, order, after });
    const data = page.data.map((item) => itemView(item, include.includes('reasoning.encrypted_content')));
    return { object: 'list', data, first_id: idOf(data[0]), last_id: idOf(data.at(-1)), has_more: page.hasMore };
  }

  @Post(':id/cancel')
  @HttpCode(200)
  async cancel(@Req() req: FastifyRequest, @Param('id') id: string): Promise<ResponseJson> {
    const record = await this.enabled().cancel(ownerOf(requestContextOf(req)), id);
    return responseView(record.response, { include: [] });
  }

  private enabled(): StoredResponses {
    if (!this.stored) throw new GatewayError('not_found', 'Responses are not stored on this gateway (responses.store is false).', { code: 'response_store_disabled' });
    return this.stored;
  }
}

const idOf = (item: ResponseJson | undefined): string | null => (item && typeof item['id'] === 'string' ? item['id'] : null);
