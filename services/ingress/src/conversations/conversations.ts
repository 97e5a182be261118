import { randomBytes } from 'node:crypto';
import { Counter, type Registry } from 'prom-client';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { ResponsesConfig } from '@openrouter/config';
import { GatewayError } from '@openrouter/errors';
import { inputItemView, itemView, responsesToChatBody, storedInputItems, withParamRenamed } from '@openrouter/openai-wire';
import { parseInput } from '../admin/admin-input';
import type { ResponseJson } from '../responses/response-store';
import { itemBytes, orConversationStoreUnavailable, type ConversationLimits, type ConversationRecord, type ConversationStore } from './conversation-store';

/** Items one request may create a conversation with, or add to one (as OpenAI). */
const MAX_ITEMS_PER_REQUEST = 20;

const metadata = z
  .record(z.string().min(1).max(64), z.string().max(512))
  .refine((m) => Object.keys(m).length <= 16, 'at most 16 pairs');

const createBody = z.strictObject({ items: z.array(z.unknown()).max(MAX_ITEMS_PER_REQUEST).nullish(), metadata: metadata.nullish() });
// Null as the SDK types it (`Metadata | null`): no metadata, as stored chat completions take it.
const updateBody = z.strictObject({ metadata: metadata.nullable() });
const addBody = z.strictObject({ items: z.array(z.unknown()).min(1).max(MAX_ITEMS_PER_REQUEST) });
const listQuery = z.looseObject({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  order: z.enum(['asc', 'desc']).default('desc'),
  after: z.string().min(1).max(128).optional(),
});

/** OpenAI's Conversation object. */
export interface ConversationView {
  id: string;
  object: 'conversation';
  created_at: number;
  metadata: Record<string, string>;
}

/** A list of a conversation's items, as OpenAI answers it. */
export interface ItemList {
  object: 'list';
  data: ResponseJson[];
  first_id: string | null;
  last_id: string | null;
  has_more: boolean;
}

const view = (record: ConversationRecord): ConversationView => ({ id: record.id, object: 'conversation', created_at: record.createdAt, metadata: record.metadata });

const notFound = (id: string, param?: string): GatewayError =>
  new GatewayError('not_found', `Conversation with id '${id}' not found.`, { code: 'conversation_not_found', ...(param ? { param } : {}) });

const idOf = (item: ResponseJson | undefined): string | null => (item && typeof item['id'] === 'string' ? item['id'] : null);

/**
 * An item id a conversation holds already, or that comes twice in one request: 400 `invalid_value`
 * naming the item (its index in the request's `items`, the later one of two), and nothing of the
 * request is added. An item's id is unique in its conversation, so that one retrieved or deleted by
 * id is the one meant.
 */
const duplicateItem = (items: readonly ResponseJson[], itemId: string, conversationId: string | undefined, inRequest: boolean): GatewayError => {
  const first = items.findIndex((item) => item['id'] === itemId);
  const at = inRequest ? items.findIndex((item, i) => i > first && item['id'] === itemId) : first;
  const where = inRequest ? 'appears more than once in items' : `is already in conversation '${conversationId ?? ''}'`;
  return new GatewayError('bad_request', `Invalid value for 'items[${at}].id': an item with id '${itemId}' ${where}.`, { param: `items[${at}].id`, code: 'invalid_value' });
};

/** The id that comes twice in `items` (the second time), or undefined. */
function repeatedId(items: readonly ResponseJson[]): string | undefined {
  const seen = new Set<string>();
  for (const item of items) {
    const id = String(item['id']);
    if (seen.has(id)) return id;
    seen.add(id);
  }
  return undefined;
}

/**
 * The input items of a Responses request that its turn adds to a conversation: not one the client
 * sent again with the id of one of the conversation's (`held`), nor one twice.
 */
function freshInputItems(request: unknown, held: ReadonlySet<string>): ResponseJson[] {
  const seen = new Set(held);
  return storedInputItems(request).filter((item) => {
    const itemId = String(item['id']);
    if (seen.has(itemId)) return false;
    seen.add(itemId);
    return true;
  });
}

/** An item as the client sees it: in the input items' shape, its reasoning's `encrypted_content` only when included. */
const itemOut = (item: ResponseJson, includeReasoning: boolean): ResponseJson => itemView(inputItemView(item), includeReasoning);

/**
 * Items a client hands in (at creation or added), validated as a Responses request's `input`
 * would be (the same item types, the same refusals, named `items[i]…`), each with an id and a type.
 */
function clientItems(items: readonly unknown[]): ResponseJson[] {
  if (items.length === 0) return [];
  try {
    // Checked as the start of an input: items that make no message of their own (reasoning alone)
    // are a conversation's as any others, and a later turn's input follows them.
    responsesToChatBody({ model: 'conversation', input: [...items, { role: 'user', content: 'next' }] });
  } catch (error) {
    throw withParamRenamed(error, (param) => param.replace(/^input/, 'items'));
  }
  return storedInputItems({ input: items });
}

/**
 * OpenAI's Conversations API (docs/responses-api.md#conversations): conversations of items kept for
 * their project, read and changed through `/v1/conversations`, and the `conversation` of a
 * Responses request, whose items are sent before its input and which its input and output items are
 * added to once it is answered. Kept with the stored responses (`responses.store`), for
 * `responses.retentionDays` after their last change.
 */
export class Conversations {
  private readonly recorded: Counter<'outcome'>;

  constructor(
    private readonly store: ConversationStore,
    private readonly config: ResponsesConfig,
    private readonly logger: Logger,
    registry?: Registry,
    private readonly now: () => number = Date.now,
  ) {
    this.recorded = new Counter({
      name: 'openrouter_conversation_turns_total',
      help: "Responses made with a conversation, by what became of their items: added, or failed (the store was unavailable, or the conversation full; the answer went out).",
      labelNames: ['outcome'],
      registers: registry ? [registry] : [],
    });
  }

  private get limits(): ConversationLimits {
    return { maxItems: this.config.maxConversationItems, maxBytes: this.config.maxConversationBytes };
  }

  /**
   * The expiry a change gives its conversation: `retentionDays` from now; or, when the change is
   * made with a key whose policy keeps nothing of its responses (`lengthen` false), the one it has
   * (a store only lengthens an expiry, so 0 leaves it): such a key may not keep a conversation,
   * so it may not keep one longer either.
   */
  private expiry(lengthen = true): number {
    return lengthen ? this.now() + this.config.retentionDays * 86_400_000 : 0;
  }

  async create(owner: string, body: unknown): Promise<ConversationView> {
    const parsed = parseInput(createBody, body);
    const items = clientItems(parsed.items ?? []);
    const repeated = repeatedId(items);
    if (repeated !== undefined) throw duplicateItem(items, repeated, undefined, true);
    this.refuseTooLong(items, { items: 0, bytes: 0 }, 'items');
    const record: ConversationRecord = { id: `conv_${randomBytes(24).toString('hex')}`, owner, createdAt: Math.floor(this.now() / 1000), metadata: parsed.metadata ?? {} };
    await orConversationStoreUnavailable(this.store.create(record, items, this.expiry()));
    return view(record);
  }

  async get(owner: string, id: string): Promise<ConversationView> {
    const state = await orConversationStoreUnavailable(this.store.get(owner, id));
    if (!state) throw notFound(id);
    return view(state.record);
  }

  /** Replaces its metadata (null: none); `lengthen` false keeps its expiry as it is (`expiry`). */
  async update(owner: string, id: string, body: unknown, lengthen = true): Promise<ConversationView> {
    const { metadata: next } = parseInput(updateBody, body);
    const record = await orConversationStoreUnavailable(this.store.setMetadata(owner, id, next ?? {}, this.expiry(lengthen)));
    if (!record) throw notFound(id);
    return view(record);
  }

  async delete(owner: string, id: string): Promise<{ id: string; object: 'conversation.deleted'; deleted: true }> {
    if (!(await orConversationStoreUnavailable(this.store.delete(owner, id)))) throw notFound(id);
    return { id, object: 'conversation.deleted', deleted: true };
  }

  async listItems(owner: string, id: string, query: Record<string, unknown>, includeReasoning: boolean): Promise<ItemList> {
    const { limit, order, after } = parseInput(listQuery, query);
    const page = await orConversationStoreUnavailable(this.store.page(owner, id, { limit, order, after }));
    if (page === undefined) throw notFound(id);
    if (page === 'after_not_found') throw new GatewayError('bad_request', `Invalid value for 'after': no item with id '${after}' in conversation '${id}'.`, { param: 'after', code: 'invalid_value' });
    const data = page.data.map((item) => itemOut(item, includeReasoning));
    return { object: 'list', data, first_id: idOf(data[0]), last_id: idOf(data.at(-1)), has_more: page.hasMore };
  }

  async addItems(owner: string, id: string, body: unknown, includeReasoning: boolean): Promise<ItemList> {
    const items = clientItems(parseInput(addBody, body).items);
    const repeated = repeatedId(items);
    if (repeated !== undefined) throw duplicateItem(items, repeated, id, true);
    const outcome = await orConversationStoreUnavailable(this.store.append(owner, id, items, this.limits, this.expiry()));
    if (outcome === 'not_found') throw notFound(id);
    if (outcome === 'too_long') throw this.tooLong(id, 'items');
    if (typeof outcome === 'object') throw duplicateItem(items, outcome.duplicate, id, false);
    const data = items.map((item) => itemOut(item, includeReasoning));
    return { object: 'list', data, first_id: idOf(data[0]), last_id: idOf(data.at(-1)), has_more: false };
  }

  async getItem(owner: string, id: string, itemId: string, includeReasoning: boolean): Promise<ResponseJson> {
    const item = await orConversationStoreUnavailable(this.store.item(owner, id, itemId));
    if (!item) throw await this.itemNotFound(owner, id, itemId);
    return itemOut(item, includeReasoning);
  }

  /** Removes an item; answers the conversation, as OpenAI does. `lengthen` false keeps its expiry as it is (`expiry`). */
  async deleteItem(owner: string, id: string, itemId: string, lengthen = true): Promise<ConversationView> {
    if (!(await orConversationStoreUnavailable(this.store.deleteItem(owner, id, itemId, this.expiry(lengthen))))) throw await this.itemNotFound(owner, id, itemId);
    return this.get(owner, id);
  }

  /**
   * The items `request` (a Responses request with `conversation`) sends before its input: 404
   * `conversation_not_found` naming `conversation` (unknown, another project's, deleted, expired),
   * 400 `conversation_too_long` when the turn would not fit in it (`turnFits`), 503 when the store
   * is unavailable.
   */
  async history(owner: string, id: string, request: unknown): Promise<ResponseJson[]> {
    const state = await orConversationStoreUnavailable(this.store.get(owner, id));
    if (!state) throw notFound(id, 'conversation');
    // A conversation no turn fits in is refused before its items are loaded.
    if (!this.turnFits(state, [])) throw this.tooLong(id, 'conversation');
    const items = await orConversationStoreUnavailable(this.store.items(owner, id));
    if (!items) throw notFound(id, 'conversation');
    if (!this.turnFits(state, freshInputItems(request, new Set(items.map((item) => String(item['id'])))))) throw this.tooLong(id, 'conversation');
    return items;
  }

  /**
   * Whether a turn adding `input` and its answer (at least one output item, of at least a byte) to
   * a conversation holding `held` stays within the limits. One that would not is refused before it
   * is served: served, it would be billed for the whole conversation and then not be added to it,
   * nor would any turn after it. The answer's own size is not known beforehand: an answer larger
   * than the room left, or a conversation filled meanwhile by another request, is the failure
   * `record` counts.
   */
  private turnFits(held: { items: number; bytes: number }, input: readonly ResponseJson[]): boolean {
    const bytes = input.reduce((sum, item) => sum + itemBytes(item), 0);
    return held.items + input.length + 1 <= this.limits.maxItems && held.bytes + bytes < this.limits.maxBytes;
  }

  /**
   * Adds a Responses request's input items and its response's output items to its conversation,
   * once it has been answered; an input item the client sent again with the id of one of the
   * conversation's (`held`, as the request read it), or twice in the request, is not added twice
   * (nor one added to the conversation meanwhile, which the store refuses: the rest is added without
   * it). False when they could not be added (logged and counted): the answer goes out all the same,
   * since it has been served and billed.
   */
  async record(owner: string, id: string, request: unknown, output: readonly ResponseJson[], held: ReadonlySet<string> = new Set()): Promise<boolean> {
    let items = [...freshInputItems(request, held), ...output];
    try {
      let outcome = await this.store.append(owner, id, items, this.limits, this.expiry());
      // An input item added to the conversation since the request read it (a concurrent request): left out, once per such id.
      for (let retries = items.length; typeof outcome === 'object' && retries > 0; retries -= 1) {
        const duplicate = outcome.duplicate;
        items = items.filter((item) => item['id'] !== duplicate);
        outcome = await this.store.append(owner, id, items, this.limits, this.expiry());
      }
      if (outcome !== 'added') throw new Error(`the conversation is ${outcome === 'too_long' ? 'full' : outcome === 'not_found' ? 'gone' : 'holding an item id again'}`);
      this.recorded.inc({ outcome: 'added' });
      return true;
    } catch (error) {
      this.recorded.inc({ outcome: 'failed' });
      this.logger.warn({ err: error, conversationId: id }, "a response's items could not be added to its conversation");
      return false;
    }
  }

  private refuseTooLong(items: readonly ResponseJson[], held: { items: number; bytes: number }, param: string): void {
    const bytes = items.reduce((sum, item) => sum + itemBytes(item), 0);
    if (held.items + items.length > this.limits.maxItems || held.bytes + bytes > this.limits.maxBytes) throw this.tooLong(undefined, param);
  }

  private tooLong(id: string | undefined, param: string): GatewayError {
    return new GatewayError(
      'bad_request',
      `${id ? `Conversation '${id}'` : 'The conversation'} would hold more than ${this.limits.maxItems} items (responses.maxConversationItems) or ${this.limits.maxBytes} bytes of items (responses.maxConversationBytes). Start a new one.`,
      { param, code: 'conversation_too_long' },
    );
  }

  private async itemNotFound(owner: string, id: string, itemId: string): Promise<GatewayError> {
    await this.get(owner, id);
    return new GatewayError('not_found', `Item with id '${itemId}' not found in conversation '${id}'.`, { code: 'item_not_found' });
  }
}
