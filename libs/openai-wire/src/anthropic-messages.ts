import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { chatv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { REQUEST_BOUNDS } from './chat-request';
import { withParamRenamed } from './openai-errors';
import { NO_REASONING, reasoningOf, type ThinkingBlock, unseenBlocks } from './reasoning';
import { badRequest, isObject, type JsonObject, modelName, validate } from './validation';

/**
 * Anthropic's Messages API (`POST /v1/messages`, `POST /v1/messages/count_tokens`), served by the
 * chat path: a request becomes the equivalent Chat Completions body, and the chat answer (whole
 * or streamed) becomes a `message` object or Anthropic's stream events, whichever provider the
 * router picked. What only Anthropic's platform can do (server tools, the Files API, MCP
 * servers, containers) is refused by name. Claude's signed thinking travels as the chat path
 * carries it (`thinking_blocks`), and prompt caching's `cache_control` as the content parts it
 * carries to Claude providers. See docs/anthropic-messages.md.
 */

/** Extra checks for objects whose required fields depend on their `type`; other types pass as they are. */
function byType(shapes: Readonly<Record<string, z.ZodType>>) {
  return (value: { type: string }, ctx: z.RefinementCtx): void => {
    const shape = Object.hasOwn(shapes, value.type) ? shapes[value.type] : undefined;
    const result = shape?.safeParse(value);
    if (result && !result.success) for (const issue of result.error.issues) ctx.addIssue({ ...issue });
  };
}

const IMAGE_MEDIA_TYPES = ['image/jpeg', 'image/png', 'image/gif', 'image/webp'] as const;

/** Prompt caching's breakpoint (`{type: "ephemeral", ttl}`), passed on as the client wrote it where the chat path can carry it. */
const cacheControl = z.looseObject({ type: z.string() }).nullish();

const imageSource = z.looseObject({ type: z.string() }).superRefine(
  byType({
    base64: z.looseObject({ media_type: z.enum(IMAGE_MEDIA_TYPES), data: z.string().min(1) }),
    url: z.looseObject({ url: z.string().min(1) }),
    file: z.looseObject({ file_id: z.string() }),
  }),
);

/** Blocks that may sit inside others (a tool result's content, a document's `content` source). */
const innerBlock = z.looseObject({ type: z.string() }).superRefine(
  byType({
    text: z.looseObject({ text: z.string() }),
    image: z.looseObject({ source: imageSource }),
  }),
);

const documentSource = z.looseObject({ type: z.string() }).superRefine(
  byType({
    base64: z.looseObject({ media_type: z.string(), data: z.string().min(1) }),
    text: z.looseObject({ data: z.string() }),
    url: z.looseObject({ url: z.string() }),
    content: z.looseObject({ content: z.union([z.string(), z.array(innerBlock)]) }),
    file: z.looseObject({ file_id: z.string() }),
  }),
);

const textBlock = z.looseObject({ text: z.string(), cache_control: cacheControl });
const imageBlock = z.looseObject({ source: imageSource, cache_control: cacheControl });
const documentBlock = z.looseObject({ source: documentSource, title: z.string().nullish(), cache_control: cacheControl });
/** A search result the client found (its own retrieval, or a tool's): where it is from, its title and its text. */
const searchResultBlock = z.looseObject({
  source: z.string(),
  title: z.string(),
  content: z.array(z.looseObject({ type: z.literal('text'), text: z.string() })),
  cache_control: cacheControl,
});

/** What a tool result holds, checked as the same blocks of a message are; other types are refused by name when translated. */
const toolResultContent = z.looseObject({ type: z.string() }).superRefine(byType({ text: textBlock, image: imageBlock, document: documentBlock, search_result: searchResultBlock }));

/** Content blocks by `type`; other types are refused by name when translated. */
const block = z.looseObject({ type: z.string() }).superRefine(
  byType({
    text: textBlock,
    image: imageBlock,
    document: documentBlock,
    search_result: searchResultBlock,
    tool_use: z.looseObject({ id: z.string().min(1), name: z.string().min(1), input: z.record(z.string(), z.unknown()), cache_control: cacheControl }),
    tool_result: z.looseObject({
      tool_use_id: z.string().min(1),
      content: z.union([z.string(), z.array(toolResultContent)]).nullish(),
      is_error: z.boolean().nullish(),
      cache_control: cacheControl,
    }),
    thinking: z.looseObject({ thinking: z.string(), signature: z.string() }),
    redacted_thinking: z.looseObject({ data: z.string().min(1) }),
  }),
);
type Block = z.infer<typeof block>;

const ROLES = ['user', 'assistant', 'system'] as const;

const message = z.looseObject({ role: z.enum(ROLES), content: z.union([z.string(), z.array(block)]) });
type Message = z.infer<typeof message>;

const systemPrompt = z.union([z.string(), z.array(z.looseObject({ type: z.literal('text'), text: z.string(), cache_control: cacheControl }))]);

/** A custom tool (`type` absent, null or `custom`); any other type is one of Anthropic's own tools, refused when translated. */
const tool = z.looseObject({ type: z.string().nullish() }).superRefine((t, ctx) => {
  if (t.type != null && t.type !== 'custom') return;
  byType({
    custom: z.looseObject({
      name: z.string().min(1),
      description: z.string().nullish(),
      input_schema: z.record(z.string(), z.unknown()),
      strict: z.boolean().nullish(),
      cache_control: cacheControl,
    }),
  })({ ...t, type: 'custom' }, ctx);
});
type Tool = z.infer<typeof tool>;

const toolChoice = z
  .looseObject({ type: z.enum(['auto', 'any', 'tool', 'none']), disable_parallel_tool_use: z.boolean().nullish() })
  .superRefine(byType({ tool: z.looseObject({ name: z.string().min(1) }) }));

/** Claude's smallest thinking budget. */
const MIN_THINKING_BUDGET = 1024;
const display = z.enum(['summarized', 'omitted']).nullish();

const thinking = z.looseObject({ type: z.enum(['enabled', 'adaptive', 'disabled']) }).superRefine(
  byType({
    enabled: z.strictObject({ type: z.literal('enabled'), budget_tokens: z.int().min(MIN_THINKING_BUDGET), display }),
    adaptive: z.strictObject({ type: z.literal('adaptive'), display }),
    disabled: z.strictObject({ type: z.literal('disabled') }),
  }),
);

const outputFormat = z.strictObject({ type: z.literal('json_schema'), schema: z.record(z.string(), z.unknown()) });

const outputConfig = z.strictObject({
  effort: z.enum(['low', 'medium', 'high', 'xhigh', 'max']).nullish(),
  format: outputFormat.nullish(),
  // Tells Claude the tokens its whole task may take: pacing advice only Claude reads, ignored.
  task_budget: z.looseObject({ type: z.string() }).nullish(),
});

/** Server-side context editing (Claude Code sends it every turn): ignored, the conversation is sent whole. */
const contextManagement = z.looseObject({ edits: z.array(z.looseObject({ type: z.string() })).nullish() });

/** Fields a Messages request and a token count share. */
const shared = {
  model: modelName,
  messages: z.array(message).min(1),
  system: systemPrompt.nullish(),
  tools: z.array(tool).nullish(),
  tool_choice: toolChoice.nullish(),
  thinking: thinking.nullish(),
  output_config: outputConfig.nullish(),
  // Deprecated for `output_config.format`, which it means.
  output_format: outputFormat.nullish(),
  // Anthropic puts it on the last cacheable block; so does the translation, where the chat path can carry it.
  cache_control: cacheControl,
  context_management: contextManagement.nullish(),
  // Anthropic's choices of capacity and placement: accepted and ignored (the router picks the deployment).
  speed: z.string().nullish(),
  // Anthropic's billing: one's own organisation is what the key is charged anyway; another's is refused.
  billing_policy: z.looseObject({ bill_to: z.string().nullish() }).nullish(),
  // Known and refused when set (they need Anthropic's platform, and change what the answer is).
  mcp_servers: z.unknown().optional(),
  container: z.unknown().optional(),
  // A request to summarise the conversation: refused on a message (its answer would be Anthropic's
  // compaction block); a token count ignores it, as Anthropic's does.
  compaction: z.looseObject({ type: z.string() }).nullish(),
  // The gateway's routing extensions (docs/routing.md), passed on as the chat path takes them.
  models: z.unknown().optional(),
  route: z.unknown().optional(),
};

const messagesBody = z.strictObject({
  ...shared,
  // 0 is Anthropic's request to fill the prompt cache without answering: known, and refused by name.
  max_tokens: z.int().min(0).max(REQUEST_BOUNDS.maxTokens),
  stop_sequences: z.array(z.string()).nullish(),
  temperature: z.number().min(0).max(1).nullish(),
  top_p: z.number().min(0).max(1).nullish(),
  top_k: z.int().min(0).nullish(),
  stream: z.boolean().nullish(),
  metadata: z.looseObject({ user_id: z.string().max(256).nullish() }).nullish(),
  // Anthropic's capacity and placement choices: accepted and ignored (the router picks the deployment).
  service_tier: z.string().nullish(),
  inference_geo: z.string().nullish(),
  // Asks for an explanation of a prompt-cache miss, an optional field of the answer: ignored.
  diagnostics: z.looseObject({ previous_message_id: z.string().nullish() }).nullish(),
  // Beta flags as a body field (as the `anthropic-beta` header, ignored).
  betas: z.array(z.string()).nullish(),
  // Anthropic's own fallback models for a refusal, and the billing of its retry: ignored (a refusal
  // stays one, as on Anthropic's models without fallbacks; the gateway's own are `models`).
  fallbacks: z.union([z.literal('default'), z.array(z.looseObject({ model: z.string() }))]).nullish(),
  fallback_credit_token: z.union([z.string(), z.looseObject({ token: z.string() })]).nullish(),
  // Known and refused when set: conversation state held by Anthropic's platform.
  thread: z.unknown().optional(),
});
type MessagesBody = z.infer<typeof messagesBody>;

const countTokensBody = z.strictObject(shared);
type CountTokensBody = z.infer<typeof countTokensBody>;

function unsupported(param: string, why: string): never {
  throw badRequest(`'${param}' is not supported by this gateway: ${why}.`, param, 'unsupported_parameter');
}

function invalid(param: string, why: string): never {
  throw badRequest(`Invalid value for '${param}': ${why}.`, param, 'invalid_value');
}

/** Parameters that need Anthropic's platform and would change the answer. */
function refuseUnsupported(b: CountTokensBody): void {
  if (b.mcp_servers != null) unsupported('mcp_servers', 'MCP servers are connected by Anthropic\'s platform; call the tools yourself and declare them as custom tools');
  if (b.container != null) unsupported('container', "containers belong to Anthropic's code execution tool, which this gateway does not run");
  const billTo = b.billing_policy?.bill_to;
  if (billTo != null && billTo !== 'self') unsupported('billing_policy.bill_to', `requests are charged to the gateway key that sent them, not to '${billTo}'`);
}

/**
 * A client's Messages request, validated, as the equivalent Chat Completions body. Unknown
 * parameters are refused (`unknown_parameter`); Anthropic's server tools and what needs its
 * platform are refused by name (`unsupported_parameter`).
 */
export function messagesToChatBody(body: unknown): JsonObject {
  const b = validate(messagesBody, body);
  if (b.max_tokens === 0) {
    // Only Anthropic's own API writes the cache without answering; the router may pick any provider (docs/anthropic-messages.md#refused).
    throw badRequest(
      "max_tokens: 0 (filling the prompt cache without an answer) is not supported by this gateway: the request may be served by a provider that cannot do it. Send max_tokens: 1 to write the cache with an answer of at most one token.",
      'max_tokens',
      'unsupported_parameter',
    );
  }
  if (b.compaction != null) unsupported('compaction', "a compaction request is answered with a summary block by Anthropic's platform; summarise the conversation with an ordinary request");
  if (b.thread != null) unsupported('thread', 'conversations are not held here; send the whole conversation in messages');
  // As Anthropic's API: the thinking budget is part of the output limit, so it must leave room for the answer.
  if (b.thinking?.type === 'enabled') {
    const budget = Number(b.thinking['budget_tokens']);
    if (budget >= b.max_tokens) invalid('thinking.budget_tokens', `the thinking budget (${budget}) must be less than max_tokens (${b.max_tokens})`);
  }
  const chat = conversation(b);
  chat['max_completion_tokens'] = b.max_tokens;
  if (b.stop_sequences && b.stop_sequences.length > 0) chat['stop'] = b.stop_sequences;
  if (b.temperature != null) chat['temperature'] = b.temperature;
  if (b.top_p != null) chat['top_p'] = b.top_p;
  // The chat path's carrier for it: Claude and Gemini providers take it.
  if (b.top_k != null) chat['top_k'] = b.top_k;
  const user = b.metadata?.user_id;
  if (user != null && user !== '') chat['user'] = user;
  if (b.stream === true) chat['stream'] = true;
  return chat;
}

/** A token-count request (`/v1/messages/count_tokens`), validated, as the chat body its prompt would be. */
export function countTokensToChatBody(body: unknown): JsonObject {
  return conversation(validate(countTokensBody, body));
}

/** What a Messages request and a token count both translate: the prompt, tools and thinking. */
function conversation(b: CountTokensBody): JsonObject {
  refuseUnsupported(b);
  const messages: JsonObject[] = [];
  const system = systemMessage(b.system);
  if (system) messages.push(system);
  const given = b.cache_control ? withLastBlockCached(b.messages, b.cache_control) : b.messages;
  given.forEach((m, i) => addMessage(messages, m, i));
  const chat: JsonObject = { model: b.model, messages };
  const tools = (b.tools ?? []).map(toChatTool);
  if (tools.length > 0) chat['tools'] = tools;
  if (b.tool_choice != null) applyToolChoice(chat, b.tool_choice, b.tools ?? []);
  // The client's own thinking object, which Claude providers take as it is (docs/providers/anthropic.md).
  const thought = b.thinking ? chatThinking(b.thinking) : undefined;
  if (thought) chat['thinking'] = thought;
  const effort = b.output_config?.effort;
  if (effort != null) chat['reasoning_effort'] = effort;
  if (b.output_format != null && b.output_config?.format != null) invalid('output_format', 'it is the deprecated form of output_config.format; send one of them');
  const format = b.output_config?.format ?? b.output_format;
  if (format != null) chat['response_format'] = { type: 'json_schema', json_schema: { name: 'response', schema: format.schema } };
  if (b.models !== undefined) chat['models'] = b.models;
  if (b.route !== undefined) chat['route'] = b.route;
  return chat;
}

/** The thinking object as Claude providers take it (no nulls); none when it is off, as when it is absent. */
function chatThinking(t: z.infer<typeof thinking>): JsonObject | undefined {
  if (t.type === 'disabled') return undefined;
  const out: JsonObject = t.type === 'enabled' ? { type: 'enabled', budget_tokens: t['budget_tokens'] } : { type: t.type };
  if (typeof t['display'] === 'string') out['display'] = t['display'];
  return out;
}

/**
 * The request's `cache_control` where Anthropic puts it: on the last block of the last message
 * (unless that block has its own, or is empty text). The translation then carries it as it
 * carries a block's own.
 */
function withLastBlockCached(messages: Message[], cacheControl: JsonObject): Message[] {
  const last = messages[messages.length - 1];
  if (!last) return messages;
  const content: Block[] = typeof last.content === 'string' ? [{ type: 'text', text: last.content }] : last.content;
  const end = content[content.length - 1];
  if (!end || end['cache_control'] != null || (end.type === 'text' && end['text'] === '')) return messages;
  return [...messages.slice(0, -1), { ...last, content: [...content.slice(0, -1), { ...end, cache_control: cacheControl }] }];
}

/**
 * `part` (a content part, a tool, a tool message) with the block's `cache_control`: the chat path
 * keeps it as an extra key and the Claude adapters send it on the block it came from
 * (docs/providers/anthropic.md); others drop it.
 */
function cached(part: JsonObject, b: Readonly<Record<string, unknown>>): JsonObject {
  const cacheControl = b['cache_control'];
  if (isObject(cacheControl)) part['cache_control'] = cacheControl;
  return part;
}

const isCached = (part: JsonObject | undefined): boolean => part?.['cache_control'] !== undefined;

function systemMessage(system: MessagesBody['system']): JsonObject | undefined {
  if (system == null || system === '') return undefined;
  if (typeof system === 'string') return { role: 'system', content: system };
  const parts = system.map((b) => cached({ type: 'text', text: b.text }, b));
  const only = parts.length === 1 ? parts[0] : undefined;
  if (parts.length === 0) return undefined;
  // One block is the plain prompt, unless it carries cache_control, which only a part can.
  return { role: 'system', content: only && !isCached(only) ? only['text'] : parts };
}

/** One Anthropic message as chat messages, in order: a user turn's tool results become `tool` messages ahead of its other content. */
function addMessage(messages: JsonObject[], m: Message, i: number): void {
  const param = `messages[${i}]`;
  if (typeof m.content === 'string') {
    messages.push({ role: m.role, content: m.content });
    return;
  }
  switch (m.role) {
    case 'assistant':
      messages.push(assistantMessage(m.content, param));
      return;
    case 'system': {
      const parts = m.content.map((b, j) => (b.type === 'text' ? cached({ type: 'text', text: b['text'] }, b) : invalid(`${param}.content[${j}].type`, `a system message carries text blocks, not '${b.type}'`)));
      messages.push({ role: 'system', content: parts });
      return;
    }
    case 'user': {
      const parts: JsonObject[] = [];
      m.content.forEach((b, j) => {
        if (b.type === 'tool_result') messages.push(toolMessage(b, `${param}.content[${j}]`));
        else parts.push(userPart(b, `${param}.content[${j}]`));
      });
      const only = parts.length === 1 ? parts[0] : undefined;
      if (parts.length > 0) messages.push({ role: 'user', content: only?.['type'] === 'text' && !isCached(only) ? only['text'] : parts });
      else if (m.content.length === 0) messages.push({ role: 'user', content: '' });
      return;
    }
  }
}

/** Blocks no chat model can be given: Anthropic's server tool calls and their results, and the like. */
function refuseBlock(b: Block, param: string, role: keyof typeof CARRIERS): never {
  if (b.type === 'server_tool_use' || b.type.endsWith('_tool_result') || b.type === 'mcp_tool_use' || b.type === 'container_upload') {
    return unsupported(`${param}.type`, `'${b.type}' blocks belong to Anthropic's server tools, which this gateway does not run`);
  }
  return invalid(`${param}.type`, `${CARRIERS[role]} blocks, not '${b.type}'`);
}

/** What a place of blocks may hold, as the refusal of another kind says it. */
const CARRIERS: Readonly<Record<'user' | 'assistant' | 'tool result', string>> = {
  user: "a user message carries 'text', 'image', 'document', 'search_result' and 'tool_result'",
  assistant: "an assistant message carries 'text', 'tool_use', 'thinking' and 'redacted_thinking'",
  'tool result': "a tool result carries 'text', 'image', 'document' and 'search_result'",
};

/** A block of a user turn (or of a tool result's content) as a chat content part, with its `cache_control`. */
function userPart(b: Block, param: string, role: 'user' | 'tool result' = 'user'): JsonObject {
  switch (b.type) {
    case 'text':
      return cached({ type: 'text', text: b['text'] }, b);
    case 'image':
      return cached(imagePart(b['source'] as JsonObject & { type: string }, `${param}.source`), b);
    case 'document':
      // A PDF's `file` part carries it as a text part does: the Claude adapters send it on the document block.
      return cached(documentPart(b, param), b);
    case 'search_result':
      return cached({ type: 'text', text: searchResultText(b) }, b);
  }
  return refuseBlock(b, param, role);
}

/**
 * A search result as the text a chat model reads: its title and source above its text. (Anthropic
 * can cite it by its blocks; a chat answer has no such citations, so none come back.)
 */
function searchResultText(b: Block): string {
  const texts = (b['content'] as Array<{ text: string }>).map((t) => t.text);
  return [`Search result: ${String(b['title'])}`, `Source: ${String(b['source'])}`, '', ...texts].join('\n');
}

function imagePart(source: JsonObject & { type: string }, param: string): JsonObject {
  switch (source.type) {
    case 'base64':
      return { type: 'image_url', image_url: { url: `data:${String(source['media_type'])};base64,${String(source['data'])}` } };
    case 'url':
      return { type: 'image_url', image_url: { url: source['url'] } };
    case 'file':
      return unsupported(`${param}.type`, "files are not stored here (no Files API); send the image as a 'base64' or 'url' source");
  }
  return invalid(`${param}.type`, `expected 'base64' or 'url', but got '${source.type}' instead`);
}

/** A document: a base64 PDF as the chat path's file part, plain text (or content blocks) as text. */
function documentPart(b: Block, param: string): JsonObject {
  const source = b['source'] as JsonObject & { type: string };
  const title = typeof b['title'] === 'string' && b['title'] !== '' ? b['title'] : undefined;
  switch (source.type) {
    case 'base64': {
      const mediaType = String(source['media_type']);
      if (mediaType !== 'application/pdf') invalid(`${param}.source.media_type`, `a base64 document is a PDF ('application/pdf'), not '${mediaType}'; send text as a 'text' source`);
      const file: JsonObject = { file_data: `data:application/pdf;base64,${String(source['data'])}` };
      if (title) file['filename'] = title;
      return { type: 'file', file };
    }
    case 'text':
      return { type: 'text', text: source['data'] };
    case 'content': {
      const content = source['content'] as string | Array<JsonObject & { type: string }>;
      if (typeof content === 'string') return { type: 'text', text: content };
      const texts = content.map((inner, k) => (inner.type === 'text' ? String(inner['text']) : invalid(`${param}.source.content[${k}].type`, `a document's content is given to chat models as text, so '${inner.type}' blocks cannot be sent in one`)));
      return { type: 'text', text: texts.join('\n\n') };
    }
    case 'url':
      return unsupported(`${param}.source.type`, "documents are not fetched by URL; send the PDF as a 'base64' source");
    case 'file':
      return unsupported(`${param}.source.type`, "files are not stored here (no Files API); send the PDF as a 'base64' source");
  }
  return invalid(`${param}.source.type`, `expected 'base64', 'text' or 'content', but got '${source.type}' instead`);
}

/**
 * A tool result as a chat `tool` message; `is_error` is said in the content, which is all a chat
 * model reads. The block's own `cache_control` rides on the message, where the Claude adapters
 * read it back onto the `tool_result` block (other providers drop it, or get it as written).
 */
function toolMessage(b: Block, param: string): JsonObject {
  const content = b['content'] as string | Array<JsonObject & { type: string }> | null | undefined;
  const failed = b['is_error'] === true;
  let out: string | JsonObject[];
  // No blocks is no content: OpenAI's API refuses an empty content array.
  if (content == null || content.length === 0) out = '';
  else if (typeof content === 'string') out = content;
  else out = content.map((inner, k) => userPart(inner as Block, `${param}.content[${k}]`, 'tool result'));
  if (failed) out = typeof out === 'string' ? `${TOOL_ERROR}${out === '' ? '' : ` ${out}`}` : [{ type: 'text', text: TOOL_ERROR }, ...out];
  return cached({ role: 'tool', tool_call_id: b['tool_use_id'], content: out }, b);
}

/** How a failed tool result (`is_error: true`) reads to the model. */
export const TOOL_ERROR = 'Error: the tool call failed.';

/**
 * An assistant turn: its text joined (its text parts when one carries `cache_control`), its tool
 * calls, and its thinking as `thinking_blocks` (the Claude adapters hand them back first in that
 * turn). Thinking without a signature (reasoning a model of another family wrote, returned as a
 * thinking block) is left out: no model takes it back.
 */
function assistantMessage(blocks: Block[], param: string): JsonObject {
  const texts: JsonObject[] = [];
  const calls: JsonObject[] = [];
  const thought: JsonObject[] = [];
  blocks.forEach((b, j) => {
    switch (b.type) {
      case 'text':
        texts.push(cached({ type: 'text', text: b['text'] }, b));
        return;
      case 'tool_use':
        calls.push({ id: b['id'], type: 'function', function: { name: b['name'], arguments: JSON.stringify(b['input']) } });
        return;
      case 'thinking':
        if (b['signature'] !== '') thought.push({ type: 'thinking', thinking: b['thinking'], signature: b['signature'] });
        return;
      case 'redacted_thinking':
        thought.push({ type: 'redacted_thinking', data: b['data'] });
        return;
    }
    refuseBlock(b, `${param}.content[${j}]`, 'assistant');
  });
  const text = texts.map((t) => String(t['text'])).join('');
  // Text blocks stay parts only when one carries cache_control: every chat model reads joined text.
  const content = texts.some(isCached) ? texts : text === '' && calls.length > 0 ? null : text;
  const out: JsonObject = { role: 'assistant', content };
  if (calls.length > 0) out['tool_calls'] = calls;
  if (thought.length > 0) out['thinking_blocks'] = thought;
  return out;
}

function toChatTool(t: Tool, i: number): JsonObject {
  if (t.type != null && t.type !== 'custom') {
    const name = typeof t['name'] === 'string' ? ` ('${t['name']}')` : '';
    return unsupported(
      `tools[${i}]`,
      `'${t.type}'${name} is one of Anthropic's own tools (web search, web fetch, code execution, computer use, bash, text editor, memory, tool search), which only Claude on Anthropic's platform knows; declare the tool as a custom tool with an input_schema and run it yourself`,
    );
  }
  const fn: JsonObject = { name: t['name'], parameters: t['input_schema'] };
  if (typeof t['description'] === 'string' && t['description'] !== '') fn['description'] = t['description'];
  if (typeof t['strict'] === 'boolean') fn['strict'] = t['strict'];
  // Beside `function`, where the chat path keeps a tool's extra keys and the Claude adapters read it.
  return cached({ type: 'function', function: fn }, t);
}

function applyToolChoice(chat: JsonObject, c: z.infer<typeof toolChoice>, tools: readonly Tool[]): void {
  if (tools.length === 0) {
    // With no tools, `auto` and `none` mean what no tool choice means.
    if (c.type === 'auto' || c.type === 'none') return;
    invalid('tool_choice', `'${c.type}' needs tools to choose from, and the request declares none`);
  }
  switch (c.type) {
    case 'auto':
      chat['tool_choice'] = 'auto';
      break;
    case 'none':
      chat['tool_choice'] = 'none';
      return;
    case 'any':
      chat['tool_choice'] = 'required';
      break;
    case 'tool': {
      const name = String(c['name']);
      if (!tools.some((t) => t['name'] === name)) invalid('tool_choice.name', `'${name}' is not among the tools`);
      chat['tool_choice'] = { type: 'function', function: { name } };
      break;
    }
  }
  if (c.disable_parallel_tool_use === true) chat['parallel_tool_calls'] = false;
}

/**
 * A chat-shaped error parameter in the Messages request's words (an error of the chat path,
 * raised after the body was translated, names what the client sent).
 */
export function toMessagesParam(param: string): string {
  if (param === 'max_completion_tokens' || param === 'max_tokens') return 'max_tokens';
  if (param === 'stop') return 'stop_sequences';
  if (param === 'user') return 'metadata.user_id';
  if (param === 'reasoning_effort') return 'output_config.effort';
  if (param === 'response_format' || param.startsWith('response_format.')) return 'output_config.format';
  // A chat message's index is not the client's (a system prompt and tool results are messages of their own).
  if (param.startsWith('messages[') || param.startsWith('messages.')) return 'messages';
  const fn = /^tools\[(\d+)\]\.function\.(name|description|strict)$/.exec(param);
  if (fn) return `tools[${fn[1]}].${fn[2]}`;
  const schema = /^tools\[(\d+)\]\.function\.parameters(.*)$/.exec(param);
  if (schema) return `tools[${schema[1]}].input_schema${schema[2]}`;
  if (param === 'tool_choice.function.name') return 'tool_choice.name';
  return param;
}

// ---- the answer ----

/** A Messages API id (`msg_…`, `toolu_…`): random, since nothing is stored under it. */
export function messageId(prefix: 'msg' | 'toolu'): string {
  return `${prefix}_${randomBytes(12).toString('hex')}`;
}


type StopReason = 'end_turn' | 'max_tokens' | 'stop_sequence' | 'tool_use' | 'refusal';

/**
 * Anthropic's stop reasons, from the chat finish reason: an answer that calls tools stops for them;
 * one the model declined (`refused`: OpenAI's `refusal`, which finishes with `stop`) is a refusal,
 * as Claude's own are; one the provider says a stop sequence ended (`stopSequence`) stopped on it.
 * Chat answers that do not say (OpenAI's family) end their turn, whether at a stop sequence or not.
 */
export function toStopReason(finishReason: string | undefined, calledTools: boolean, stopSequence?: string, refused = false): StopReason {
  switch (finishReason) {
    case 'length':
      return 'max_tokens';
    case 'content_filter':
      return 'refusal';
    case 'tool_calls':
    case 'function_call':
      return 'tool_use';
  }
  if (calledTools) return 'tool_use';
  if (refused) return 'refusal';
  return stopSequence !== undefined ? 'stop_sequence' : 'end_turn';
}

/**
 * Canonical usage in Anthropic's words: its `input_tokens` leave out the cached prompt, which it
 * counts apart (chat usage counts cache reads and writes in the prompt, and also apart).
 */
export function toAnthropicUsage(u: chatv1.Usage): JsonObject {
  return {
    input_tokens: Math.max(0, u.promptTokens - u.cachedReadTokens - u.cacheWriteTokens),
    cache_creation_input_tokens: u.cacheWriteTokens,
    cache_read_input_tokens: u.cachedReadTokens,
    output_tokens: u.completionTokens,
  };
}

/** A tool call's arguments as `input`: a JSON object, or `{}` when a model wrote something else. */
function toolInput(args: string): JsonObject {
  if (args.trim() === '') return {};
  try {
    const value: unknown = JSON.parse(args);
    return isObject(value) ? value : {};
  } catch {
    return {};
  }
}

/**
 * The Messages API's `message` for a whole chat completion (its first choice), under the public
 * model id. Claude's thinking blocks come first; reasoning text another family wrote comes as one
 * thinking block without a signature. `usage` (the request's, as billed: the gateway's estimate
 * when the provider reported none) wins over the completion's, as at the end of a stream.
 */
export function toAnthropicMessage(completion: chatv1.ChatCompletion, model: string, usage?: chatv1.Usage): JsonObject {
  const choice = completion.choices.find((c) => c.index === 0) ?? completion.choices[0];
  const m = choice?.message;
  const content: JsonObject[] = [];
  const reasoning = m ? reasoningOf(m.extraJson) : NO_REASONING;
  if (reasoning.blocks.length > 0) content.push(...reasoning.blocks);
  else if (reasoning.text) content.push({ type: 'thinking', thinking: reasoning.text, signature: '' });
  const text = `${m?.content ?? ''}${m?.refusal ?? ''}`;
  if (text) content.push({ type: 'text', text });
  const calls = m?.toolCalls ?? [];
  for (const c of calls) content.push({ type: 'tool_use', id: c.id || messageId('toolu'), name: c.function?.name ?? '', input: toolInput(c.function?.arguments ?? '') });
  const stopReason = toStopReason(choice?.finishReason || undefined, calls.length > 0, choice?.stopSequence, !!m?.refusal);
  return {
    id: messageId('msg'),
    type: 'message',
    role: 'assistant',
    model,
    content,
    stop_reason: stopReason,
    stop_sequence: stopReason === 'stop_sequence' ? (choice?.stopSequence ?? null) : null,
    usage: toAnthropicUsage(usage ?? completion.usage ?? ZERO_USAGE),
  };
}

const ZERO_USAGE: chatv1.Usage = { promptTokens: 0, completionTokens: 0, totalTokens: 0, cachedReadTokens: 0, cacheWriteTokens: 0, reasoningTokens: 0, estimated: false };

// ---- the stream ----

/** One stream event: written as `event: <type>` and `data: <the event as JSON>`. */
export type AnthropicStreamEvent = JsonObject & { type: string };

type OpenBlock = { kind: 'text' | 'redacted_thinking' } | { kind: 'thinking'; streamed: boolean } | { kind: 'tool_use'; call: number; args: string };

/**
 * Translates one streamed chat answer (its first choice) into Anthropic's stream events:
 * `message_start`, then each content block as `content_block_start`, its deltas and
 * `content_block_stop` (blocks follow one another, numbered from 0), and at the end
 * `message_delta` (stop reason and usage) and `message_stop`; or an `error` event for a failure
 * after the stream opened. Reasoning text streams as `thinking_delta`; a signed thinking block
 * (the Claude adapters send it whole at its end, after the blocks before it) closes the thinking
 * block with its `signature_delta`; redacted thinking is a block of its own.
 */
export class AnthropicStream {
  private readonly id = messageId('msg');
  private next = 0;
  private open: OpenBlock | undefined;
  /** Tool calls by their chat index, and the block each opened. */
  private readonly calls = new Map<number, number>();
  /** Every thinking block the stream brought so far, in order (a delta may repeat them, see `unseenBlocks`). */
  private readonly blocks: ThinkingBlock[] = [];
  private finishReason: string | undefined;
  /** The stop sequence that ended the answer, when the provider said which (it comes with the finish reason). */
  private stopSequence: string | undefined;
  private usage: chatv1.Usage | undefined;
  /** Whether the model declined (a `refusal` delta): the message stops with `refusal`. */
  private refused = false;

  /** `inputTokens`: the prompt's estimate, told in `message_start` (`message_delta` has the real count). */
  constructor(
    private readonly model: string,
    private readonly inputTokens: number,
  ) {}

  /** `message_start`: the message with no content yet. */
  start(): AnthropicStreamEvent[] {
    const message = {
      id: this.id,
      type: 'message',
      role: 'assistant',
      model: this.model,
      content: [],
      stop_reason: null,
      stop_sequence: null,
      usage: { input_tokens: this.inputTokens, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 0 },
    };
    return [{ type: 'message_start', message }];
  }

  /** The events of one chat chunk (none for a usage-only chunk, whose usage is kept for the end). */
  chunk(chunk: chatv1.ChatChunk): AnthropicStreamEvent[] {
    const events: AnthropicStreamEvent[] = [];
    if (chunk.usage) this.usage = chunk.usage;
    for (const choice of chunk.choices) {
      if (choice.index !== 0) continue;
      const d = choice.delta;
      if (d) {
        const reasoning = d.extraJson ? reasoningOf(d.extraJson) : NO_REASONING;
        if (reasoning.text) this.thinkingDelta(reasoning.text, events);
        const blocks = unseenBlocks(this.blocks, reasoning.blocks);
        this.blocks.push(...blocks);
        for (const b of blocks) this.thinkingBlock(b, events);
        if (d.content) this.textDelta(d.content, events);
        if (d.refusal) {
          this.refused = true;
          this.textDelta(d.refusal, events);
        }
        for (const t of d.toolCalls) this.toolDelta(t, events);
      }
      if (choice.finishReason) this.finishReason = choice.finishReason;
      if (choice.stopSequence !== undefined) this.stopSequence = choice.stopSequence;
    }
    return events;
  }

  /** Ends the open block and the message; `usage` wins over the usage the chunks carried. */
  complete(usage?: chatv1.Usage): AnthropicStreamEvent[] {
    const events: AnthropicStreamEvent[] = [];
    this.close(events);
    const tokens = toAnthropicUsage(usage ?? this.usage ?? ZERO_USAGE);
    const stopReason = toStopReason(this.finishReason, this.calls.size > 0, this.stopSequence, this.refused);
    const stopSequence = stopReason === 'stop_sequence' ? (this.stopSequence ?? null) : null;
    events.push({ type: 'message_delta', delta: { stop_reason: stopReason, stop_sequence: stopSequence }, usage: tokens });
    events.push({ type: 'message_stop' });
    return events;
  }

  /** A failure after the stream opened: Anthropic's `error` event (its error body). */
  fail(error: AnthropicErrorBody): AnthropicStreamEvent[] {
    return [{ ...error }];
  }

  private begin(block: JsonObject, open: OpenBlock, events: AnthropicStreamEvent[]): number {
    this.close(events);
    const index = this.next++;
    this.open = open;
    events.push({ type: 'content_block_start', index, content_block: block });
    return index;
  }

  private close(events: AnthropicStreamEvent[]): void {
    const open = this.open;
    if (!open) return;
    // A tool call's input once its arguments are whole, as a whole answer has it (see `toolDelta`).
    if (open.kind === 'tool_use' && open.args.trim() !== '') this.delta({ type: 'input_json_delta', partial_json: JSON.stringify(toolInput(open.args)) }, events);
    this.open = undefined;
    events.push({ type: 'content_block_stop', index: this.next - 1 });
  }

  private delta(delta: JsonObject, events: AnthropicStreamEvent[]): void {
    events.push({ type: 'content_block_delta', index: this.next - 1, delta });
  }

  private thinkingDelta(text: string, events: AnthropicStreamEvent[]): void {
    if (this.open?.kind !== 'thinking') this.begin({ type: 'thinking', thinking: '', signature: '' }, { kind: 'thinking', streamed: false }, events);
    if (this.open?.kind === 'thinking') this.open.streamed = true;
    this.delta({ type: 'thinking_delta', thinking: text }, events);
  }

  /** A whole signed block: it closes the thinking streamed so far (or stands alone, its text sent at once). */
  private thinkingBlock(b: ThinkingBlock, events: AnthropicStreamEvent[]): void {
    if (b.type === 'redacted_thinking') {
      this.begin({ type: 'redacted_thinking', data: b.data }, { kind: 'redacted_thinking' }, events);
      this.close(events);
      return;
    }
    const open = this.open;
    if (open?.kind !== 'thinking') this.begin({ type: 'thinking', thinking: '', signature: '' }, { kind: 'thinking', streamed: false }, events);
    if (open?.kind !== 'thinking' || !open.streamed) {
      if (b.thinking) this.delta({ type: 'thinking_delta', thinking: b.thinking }, events);
    }
    this.delta({ type: 'signature_delta', signature: b.signature }, events);
    this.close(events);
  }

  private textDelta(text: string, events: AnthropicStreamEvent[]): void {
    if (this.open?.kind !== 'text') this.begin({ type: 'text', text: '' }, { kind: 'text' }, events);
    this.delta({ type: 'text_delta', text }, events);
  }

  /**
   * Tool calls stream one after the other (as every family sends them): a new call index opens
   * a `tool_use` block; arguments for an earlier call, once another has begun, cannot be placed
   * in Anthropic's stream (its blocks do not interleave) and are left out. A call's arguments are
   * held until it ends and sent as one `input_json_delta`, `{}` when they are not a JSON object:
   * the SDKs parse the deltas of a block as one JSON value and fail the whole stream on anything
   * else, which some models write.
   */
  private toolDelta(t: chatv1.ToolCallDelta, events: AnthropicStreamEvent[]): void {
    if (!this.calls.has(t.index)) {
      const index = this.begin({ type: 'tool_use', id: t.id || messageId('toolu'), name: t.name ?? '', input: {} }, { kind: 'tool_use', call: t.index, args: '' }, events);
      this.calls.set(t.index, index);
    }
    const open = this.open;
    if (open?.kind === 'tool_use' && open.call === t.index && t.arguments) open.args += t.arguments;
  }
}

// ---- errors ----

/** Anthropic's error types, by the HTTP status they come with. */
export type AnthropicErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'billing_error'
  | 'permission_error'
  | 'not_found_error'
  | 'request_too_large'
  | 'rate_limit_error'
  | 'api_error'
  | 'timeout_error'
  | 'overloaded_error';

export interface AnthropicErrorBody {
  type: 'error';
  error: { type: AnthropicErrorType; message: string };
}

export interface AnthropicErrorResponse {
  status: number;
  headers: Record<string, string>;
  body: AnthropicErrorBody;
}

const GENERIC_INTERNAL_MESSAGE = 'The gateway failed to process the request.';

/** Client errors HTTP has a status of its own for (as the OpenAI mapping answers them). */
const BAD_REQUEST_STATUS: ReadonlyMap<string, number> = new Map([
  ['request_timeout', 408],
  ['request_too_large', 413],
  ['url_too_long', 414],
  ['headers_too_large', 431],
]);

function anthropicResponse(status: number, type: AnthropicErrorType, message: string, headers: Record<string, string> = {}): AnthropicErrorResponse {
  return { status, headers, body: { type: 'error', error: { type, message } } };
}

/** `retry-after` (whole seconds, as Anthropic sends it) and the gateway's `retry-after-ms`, when known. */
function retryAfter(e: GatewayError): Record<string, string> {
  if (e.retryAfterMs === undefined) return {};
  return { 'retry-after': String(Math.max(0, Math.ceil(e.retryAfterMs / 1000))), 'retry-after-ms': String(Math.max(0, Math.ceil(e.retryAfterMs))) };
}

/**
 * The canonical error as Anthropic's error response, for the Messages API routes: the statuses
 * and types the Anthropic SDKs map to their error classes. Client mistakes are 4xx; an overloaded
 * provider is Anthropic's 529 `overloaded_error`.
 */
export function toAnthropicError(e: GatewayError): AnthropicErrorResponse {
  const kind = e.kind;
  switch (kind) {
    case 'bad_request': {
      const status = (e.code !== undefined && BAD_REQUEST_STATUS.get(e.code)) || 400;
      return anthropicResponse(status, status === 413 ? 'request_too_large' : 'invalid_request_error', e.message);
    }
    case 'context_length_exceeded':
    case 'content_filtered':
      return anthropicResponse(400, 'invalid_request_error', e.message);
    case 'auth_failed':
      // A provider refusing the gateway's own credentials is the gateway's fault, not a bad key of the client's.
      if (e.upstreamStatus !== undefined) return anthropicResponse(502, 'api_error', e.message);
      return anthropicResponse(401, 'authentication_error', e.message);
    case 'budget_exceeded':
      return anthropicResponse(402, 'billing_error', e.message);
    case 'permission_denied':
      if (e.upstreamStatus !== undefined) return anthropicResponse(502, 'api_error', e.message);
      return anthropicResponse(403, 'permission_error', e.message);
    case 'not_found':
      if (e.upstreamStatus !== undefined) return anthropicResponse(502, 'api_error', e.message);
      return anthropicResponse(404, 'not_found_error', e.message);
    case 'conflict':
      return anthropicResponse(409, 'invalid_request_error', e.message);
    case 'rate_limited':
      return anthropicResponse(429, 'rate_limit_error', e.message, retryAfter(e));
    case 'cancelled':
      return anthropicResponse(499, 'invalid_request_error', e.message);
    case 'internal':
      return anthropicResponse(500, 'api_error', GENERIC_INTERNAL_MESSAGE);
    case 'upstream_error':
      return anthropicResponse(502, 'api_error', e.message);
    case 'overloaded':
      return anthropicResponse(529, 'overloaded_error', e.message, retryAfter(e));
    case 'unavailable':
      return anthropicResponse(503, 'overloaded_error', e.message, retryAfter(e));
    case 'timeout':
      return anthropicResponse(504, 'timeout_error', e.message);
    default: {
      const unhandled: never = kind;
      throw new Error(`Unhandled error kind ${String(unhandled)}`);
    }
  }
}

/**
 * An error of the chat path (raised after the body was translated) in the words of the Messages
 * request the client sent: `max_completion_tokens` is its `max_tokens`.
 */
export function inMessagesTerms<E>(error: E): E | GatewayError {
  return withParamRenamed(error, toMessagesParam);
}
