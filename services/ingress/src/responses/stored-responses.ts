import { Counter, type Registry } from 'prom-client';
import type { Logger } from 'pino';
import type { ResponsesConfig } from '@openrouter/config';
import { GatewayError } from '@openrouter/errors';
import { inputItemView, storedInputItems } from '@openrouter/openai-wire';
import { orStoreUnavailable, type ResponseJson, type ResponseStore, type StoredResponse } from './response-store';

/** What a request continuing a stored response (`previous_response_id`) is translated with, and stored under. */
export interface Conversation {
  /** The earlier turns, oldest first: each one's input items, then its output items. */
  history: ResponseJson[];
  /** Their ids, oldest first: the ancestors of the response this request makes. */
  ancestors: string[];
  /** The size of `history` (UTF-8 bytes of JSON), as the previous response recorded it. */
  bytes: number;
}

/** A conversation with nothing before it. */
export const NEW_CONVERSATION: Omit<Conversation, 'history'> = { ancestors: [], bytes: 0 };

const jsonBytes = (value: unknown): number => Buffer.byteLength(JSON.stringify(value), 'utf8');

/** `GET /v1/responses/{id}/input_items`'s query, validated. */
export interface InputItemsQuery {
  limit: number;
  order: 'asc' | 'desc';
  after?: string | undefined;
}

const notFound = (id: string): GatewayError => new GatewayError('not_found', `Response with id '${id}' not found.`, { code: 'response_not_found' });

/** The items a stored response answered with (as the next turn's input takes them). */
function outputOf(record: StoredResponse): ResponseJson[] {
  const output = record.response['output'];
  return Array.isArray(output) ? output.filter((item): item is ResponseJson => typeof item === 'object' && item !== null) : [];
}

/**
 * The Responses API's stored responses (`responses.store`, docs/responses-api.md#stored-responses):
 * kept for their project, read back by id, listed as input items, and continued by
 * `previous_response_id`. A conversation is a chain of responses, each keeping its own input and
 * output and the ids of the responses before it; a turn keeps its whole conversation alive for
 * `responses.retentionDays` more.
 */
export class StoredResponses {
  private readonly kept: Counter<'outcome'>;

  constructor(
    private readonly store: ResponseStore,
    private readonly config: ResponsesConfig,
    private readonly logger: Logger,
    registry?: Registry,
    private readonly now: () => number = Date.now,
  ) {
    this.kept = new Counter({
      name: 'openrouter_responses_stored_total',
      help: 'Responses of the Responses API asked to be stored, by outcome: stored, or failed (the store was unavailable; answered with store false).',
      labelNames: ['outcome'],
      registers: registry ? [registry] : [],
    });
  }

  /**
   * The conversation `previousId` ends, for the owner's next turn: 404 `previous_response_not_found`
   * when that response, or one before it, is not the owner's to read (never stored, another
   * project's, deleted, expired); 400 `conversation_too_long` when the conversation holds
   * `maxConversationResponses` already, or more than `maxConversationBytes` (seen on the previous
   * response, before the others are loaded); 503 when the store is unavailable.
   */
  async conversation(owner: string, previousId: string): Promise<Conversation> {
    const previous = await orStoreUnavailable(this.store.get(owner, previousId));
    if (!previous) {
      throw new GatewayError('not_found', `Previous response with id '${previousId}' not found.`, { param: 'previous_response_id', code: 'previous_response_not_found' });
    }
    const ancestors = [...previous.ancestors, previous.id];
    if (ancestors.length >= this.config.maxConversationResponses) {
      throw new GatewayError(
        'bad_request',
        `The conversation of '${previousId}' holds ${ancestors.length} responses; one conversation may hold at most ${this.config.maxConversationResponses} (responses.maxConversationResponses). Start a new one.`,
        { param: 'previous_response_id', code: 'conversation_too_long' },
      );
    }
    if (previous.conversationBytes > this.config.maxConversationBytes) {
      throw new GatewayError(
        'bad_request',
        `The conversation of '${previousId}' holds ${previous.conversationBytes} bytes of input and output; one conversation may hold at most ${this.config.maxConversationBytes} (responses.maxConversationBytes). Start a new one.`,
        { param: 'previous_response_id', code: 'conversation_too_long' },
      );
    }
    const earlier = await orStoreUnavailable(this.store.getMany(owner, previous.ancestors));
    const turns: StoredResponse[] = [];
    for (const [i, turn] of earlier.entries()) {
      if (!turn) {
        throw new GatewayError('not_found', `Response with id '${previous.ancestors[i]}', an earlier turn of the conversation of '${previousId}', was deleted or has expired.`, {
          param: 'previous_response_id',
          code: 'previous_response_not_found',
        });
      }
      turns.push(turn);
    }
    turns.push(previous);
    return { history: turns.flatMap((turn) => [...turn.input, ...outputOf(turn)]), ancestors, bytes: previous.conversationBytes };
  }

  /**
   * Keeps a response the owner was answered (`request`: the Responses request as the client sent
   * it, for its input items), for `retentionDays`, with the conversation it continues. False when
   * the store failed: the answer goes out all the same, saying `store: false` (logged and counted),
   * since it has been served and billed.
   */
  async keep(owner: string, response: ResponseJson, request: unknown, conversation: Omit<Conversation, 'history'>): Promise<boolean> {
    const id = String(response['id']);
    const createdAt = typeof response['created_at'] === 'number' ? response['created_at'] : Math.floor(this.now() / 1000);
    const input = storedInputItems(request);
    const conversationBytes = conversation.bytes + jsonBytes(input) + jsonBytes(response['output'] ?? []);
    const record: StoredResponse = { id, owner, createdAt, response, input, ancestors: [...conversation.ancestors], conversationBytes };
    try {
      await this.store.put(record, this.now() + this.config.retentionDays * 86_400_000);
      this.kept.inc({ outcome: 'stored' });
      return true;
    } catch (error) {
      this.kept.inc({ outcome: 'failed' });
      this.logger.warn({ err: error, responseId: id }, 'a response asked to be stored could not be; it was answered with store false');
      return false;
    }
  }

  /** The owner's stored response, or 404. */
  async get(owner: string, id: string): Promise<StoredResponse> {
    const record = await orStoreUnavailable(this.store.get(owner, id));
    if (!record) throw notFound(id);
    return record;
  }

  /** Deletes the owner's stored response (later turns that continue it can no longer be continued), or 404. */
  async delete(owner: string, id: string): Promise<void> {
    if (!(await orStoreUnavailable(this.store.delete(owner, id)))) throw notFound(id);
  }

  /**
   * The input items of the owner's response `id`, as OpenAI lists them: the whole conversation
   * it answered (the earlier turns' input and output items, then its own input), newest first by
   * default, a page of `limit` after the item `after`. An earlier turn that is gone leaves its items out.
   */
  async inputItems(owner: string, id: string, query: InputItemsQuery): Promise<{ data: ResponseJson[]; hasMore: boolean }> {
    const record = await this.get(owner, id);
    const earlier = await orStoreUnavailable(this.store.getMany(owner, record.ancestors));
    const items = [...earlier.flatMap((turn) => (turn ? [...turn.input, ...outputOf(turn)] : [])), ...record.input].map(inputItemView);
    if (query.order === 'desc') items.reverse();
    let start = 0;
    if (query.after !== undefined) {
      const at = items.findIndex((item) => item['id'] === query.after);
      if (at < 0) throw new GatewayError('bad_request', `Invalid value for 'after': no input item with id '${query.after}' in response '${id}'.`, { param: 'after', code: 'invalid_value' });
      start = at + 1;
    }
    return { data: items.slice(start, start + query.limit), hasMore: items.length > start + query.limit };
  }
}
