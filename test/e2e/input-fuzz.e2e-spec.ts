import WebSocket from 'ws';
import { PROVIDER_TYPES, type ProviderType } from '@openrouter/config';
import { SIMULATED_PROVIDERS } from '../support/simulated-providers';
import { SIM_KEY } from '../support/test-config';
import { startTestGateway, type TestGateway } from '../support/test-gateway';

/**
 * Malformed and unusual client input through the whole gateway, for every provider family: each
 * value of a rich valid body of each public endpoint is replaced in turn by each of a fixed list of
 * values, and a list of odd-but-valid bodies goes to every family. Validation passing is not the
 * end of it: the router (classifier, token estimate), each adapter's translation and the answer's
 * translation back see what validation let through. Every answer must be a success or a 4xx in
 * OpenAI's error shape, within a timeout, and telling nothing of the gateway's insides.
 */

type Family = ProviderType;
type Endpoint = 'chat' | 'completions' | 'embeddings' | 'responses' | 'ws';
type PathKey = string | number;

const PIXEL = 'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';
const CITY_SCHEMA = { type: 'object', properties: { city: { type: 'string', description: 'City' }, days: { type: 'integer', minimum: 1 } }, required: ['city'], additionalProperties: false };
const ANSWER_SCHEMA = { type: 'object', properties: { reply: { type: 'string' }, tags: { type: 'array', items: { type: 'string' } } }, required: ['reply', 'tags'], additionalProperties: false };

/** What replaces each value in turn; `undefined` removes it (a key is deleted, an array item taken out). */
const VALUES: readonly unknown[] = [
  undefined,
  null,
  0,
  -1,
  1.5,
  1e308,
  2 ** 53 + 1,
  '',
  'x',
  '\ud800',
  'a\u0000b',
  true,
  false,
  [],
  [null],
  [{}],
  ['a', 'b'],
  {},
  { type: 'x' },
  { type: 'text' },
  { type: 'function' },
  { type: 'image_url', image_url: 'https://example.invalid/a.png' },
  // Names every plain object inherits: a lookup table read with a client's value must not find them.
  'constructor',
  '__proto__',
  // 21,000 characters: a long run without spaces, then words (a tokenizer's cost grows faster than a run's length).
  `${'x'.repeat(1_000)} ${'word '.repeat(4_000)}`,
  // 100 levels: within the body's depth limit at the top, beyond it deeper down.
  JSON.parse(`${'['.repeat(100)}${']'.repeat(100)}`),
];

const chatModel = (family: Family): string => `${family}-chat`;
/** Families with an embeddings API (Anthropic has none). */
const EMBEDDING_FAMILIES = PROVIDER_TYPES.filter((type) => SIMULATED_PROVIDERS[type].embeddingModel !== undefined);

/** `logit_bias`, where the family takes it (token ids are tokenizer-specific; the others refuse it by name). */
const tokenBias = (family: Family): Record<string, unknown> => (family === 'openai' || family === 'azure' ? { logit_bias: { '50256': -100 } } : {});

function chatBody(family: Family): Record<string, unknown> {
  return {
    model: chatModel(family),
    messages: [
      { role: 'system', content: 'Be brief.' },
      { role: 'developer', content: [{ type: 'text', text: 'Answer in English.' }] },
      { role: 'user', name: 'ann', content: [{ type: 'text', text: 'What is in this picture?' }, { type: 'image_url', image_url: { url: PIXEL, detail: 'low' } }] },
      { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Oslo"}' } }] },
      { role: 'tool', tool_call_id: 'call_1', content: '{"temperature":4}' },
      { role: 'assistant', content: 'It is 4 degrees in Oslo.' },
      { role: 'user', content: 'And tomorrow?' },
    ],
    tools: [{ type: 'function', function: { name: 'get_weather', description: 'Weather for a city', parameters: CITY_SCHEMA, strict: false } }],
    tool_choice: 'auto',
    parallel_tool_calls: true,
    response_format: { type: 'json_schema', json_schema: { name: 'answer', schema: ANSWER_SCHEMA, strict: true } },
    temperature: 0.7,
    top_p: 0.9,
    stop: ['END'],
    max_tokens: 64,
    n: 1,
    seed: 42,
    logprobs: false,
    user: 'user-1',
    presence_penalty: 0.1,
    frequency_penalty: 0.1,
    ...tokenBias(family),
    metadata: { purpose: 'fuzz' },
    store: false,
  };
}

function completionsBody(family: Family): Record<string, unknown> {
  return {
    model: chatModel(family),
    prompt: ['Say hello', 'Say goodbye'],
    max_tokens: 16,
    temperature: 0.5,
    top_p: 1,
    n: 1,
    stop: 'END',
    seed: 7,
    user: 'user-1',
    presence_penalty: 0,
    frequency_penalty: 0,
    ...tokenBias(family),
    echo: false,
    best_of: 1,
  };
}

function embeddingsBody(family: Family): Record<string, unknown> {
  return { model: `${family}-embed`, input: ['first text', 'second text'], dimensions: 256, encoding_format: 'float', user: 'user-1' };
}

function responsesBody(family: Family): Record<string, unknown> {
  return {
    model: chatModel(family),
    instructions: 'Be brief.',
    input: [
      { role: 'user', content: [{ type: 'input_text', text: 'What is in this picture?' }, { type: 'input_image', image_url: PIXEL, detail: 'low' }] },
      { type: 'function_call', call_id: 'call_1', name: 'get_weather', arguments: '{"city":"Oslo"}' },
      { type: 'function_call_output', call_id: 'call_1', output: '{"temperature":4}' },
      { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'It is 4 degrees in Oslo.' }] },
      { role: 'user', content: 'And tomorrow?' },
    ],
    tools: [{ type: 'function', name: 'get_weather', description: 'Weather for a city', parameters: CITY_SCHEMA, strict: true }],
    tool_choice: 'auto',
    parallel_tool_calls: true,
    temperature: 0.7,
    top_p: 0.9,
    max_output_tokens: 64,
    text: { format: { type: 'json_schema', name: 'answer', schema: ANSWER_SCHEMA, strict: true } },
    user: 'user-1',
    metadata: { purpose: 'fuzz' },
    store: false,
    truncation: 'disabled',
  };
}

/** Paths to every value inside `value` (objects and arrays alike), the root excluded. */
function paths(value: unknown, prefix: PathKey[] = []): PathKey[][] {
  if (typeof value !== 'object' || value === null) return [];
  const keys: PathKey[] = Array.isArray(value) ? value.map((_, i) => i) : Object.keys(value);
  return keys.flatMap((key) => {
    const path = [...prefix, key];
    return [path, ...paths((value as Record<PathKey, unknown>)[key], path)];
  });
}

/** Whether `body` has a value at `path` (`logit_bias` is in some families' bodies only). */
function has(body: unknown, path: readonly PathKey[]): boolean {
  let node = body;
  for (const key of path) {
    if (typeof node !== 'object' || node === null || !Object.hasOwn(node, key)) return false;
    node = (node as Record<PathKey, unknown>)[key];
  }
  return true;
}

/** `items` from index `start` on, wrapping round. */
const rotate = <T>(items: readonly T[], start: number): T[] => items.map((_, i) => items[(start + i) % items.length] as T);

/** `body` with the value at `path` replaced (or removed, for `undefined`). */
function replaced(body: unknown, path: readonly PathKey[], value: unknown): unknown {
  const copy = structuredClone(body) as Record<PathKey, unknown>;
  let node = copy;
  for (const key of path.slice(0, -1)) node = node[key] as Record<PathKey, unknown>;
  const last = path[path.length - 1] as PathKey;
  if (value !== undefined) node[last] = value;
  else if (Array.isArray(node)) node.splice(Number(last), 1);
  else delete node[last];
  return copy;
}

const paramOf = (path: readonly PathKey[]): string => path.reduce<string>((out, key) => (typeof key === 'number' ? `${out}[${key}]` : out ? `${out}.${key}` : key), '');
const shown = (value: unknown): string => (value === undefined ? '(removed)' : JSON.stringify(value).slice(0, 60));

interface Case {
  endpoint: Endpoint;
  family: Family;
  /** What was changed, for the failure report. */
  label: string;
  body: unknown;
  headers?: Record<string, string>;
  /** Families that must refuse the body with a 400 naming `param` (the gateway knows they cannot take it). */
  refused?: Refusal;
}

interface Refusal {
  on: readonly Family[];
  param: string;
}

/** The families that only know Claude's and Gemini's efforts: a name outside them is refused, not dropped. */
const EFFORT_REFUSED: Refusal = { on: ['anthropic', 'bedrock', 'gemini'], param: 'reasoning_effort' };
/** The families whose request translation refuses what their provider would refuse naming no parameter. */
const TRANSLATED: readonly Family[] = ['anthropic', 'bedrock', 'gemini'];

/**
 * Every value of each endpoint's rich body replaced by every one of `VALUES`, once, on a family
 * that rotates with the case (so each path meets every family across its values), half of the
 * chat and Responses cases streamed and one chat case in four sent over the WebSocket.
 */
function mutationCases(): Case[] {
  const cases: Case[] = [];
  const builders: ReadonlyArray<[Endpoint, (family: Family) => Record<string, unknown>, readonly Family[]]> = [
    ['chat', chatBody, PROVIDER_TYPES],
    ['completions', completionsBody, PROVIDER_TYPES],
    ['embeddings', embeddingsBody, EMBEDDING_FAMILIES],
    ['responses', responsesBody, PROVIDER_TYPES],
  ];
  for (const [endpoint, build, families] of builders) {
    let n = 0;
    for (const path of paths(build('openai'))) {
      for (const value of VALUES) {
        // The family in turn, or the next one whose body has the path (`logit_bias` is in some only).
        const family = rotate(families, n).find((f) => has(build(f), path)) as Family;
        let body = replaced(build(family), path, value) as Record<string, unknown>;
        const streamed = Math.floor(n / families.length) % 2 === 1;
        if (streamed && endpoint !== 'embeddings' && path[0] !== 'stream') body = { ...body, stream: true };
        // Shifted by one each round of families, so the socket reaches every family whatever their number.
        const overWs = endpoint === 'chat' && (n + Math.floor(n / families.length)) % 4 === 3;
        cases.push({ endpoint: overWs ? 'ws' : endpoint, family, label: `${paramOf(path)} = ${shown(value)}${streamed ? ' (stream)' : ''}`, body });
        n++;
      }
    }
  }
  return cases;
}

/** Nested `depth` levels of JSON Schema objects, each with one property. */
function deepSchema(depth: number): Record<string, unknown> {
  let schema: Record<string, unknown> = { type: 'string' };
  for (let i = 0; i < depth; i++) schema = { type: 'object', properties: { inner: schema }, required: ['inner'] };
  return schema;
}

const weather = { type: 'function', function: { name: 'get_weather', description: 'Weather for a city', parameters: CITY_SCHEMA } };
const user = (content: unknown): Record<string, unknown> => ({ role: 'user', content });

/** Chat bodies that are valid but unusual, each sent to every family, as JSON and as a stream. */
const ODD_CHAT: ReadonlyArray<[string, Record<string, unknown>, Refusal?]> = [
  ['n > 1', { n: 3 }],
  ['stop as a string', { stop: 'END' }],
  ['stop as an empty list', { stop: [] }],
  ['stop with an empty string', { stop: [''] }],
  ['five stop sequences', { stop: ['a', 'b', 'c', 'd', 'e'] }],
  ['more stop sequences than Converse and Gemini take', { stop: Array.from({ length: 2_501 }, (_, i) => `s${i}`) }, { on: ['bedrock', 'gemini'], param: 'stop' }],
  ['stream_options without stream', { stream_options: { include_usage: true } }],
  ['stream with include_usage false', { stream: true, stream_options: { include_usage: false } }],
  ['logit_bias on a non-numeric token', { logit_bias: { abc: 5, '-1': 1 } }],
  ['an empty logit_bias', { logit_bias: {} }],
  ['response_format json_object', { response_format: { type: 'json_object' } }],
  ['response_format text', { response_format: { type: 'text' } }],
  ['json_schema without a schema', { response_format: { type: 'json_schema', json_schema: { name: 'x' } } }],
  ['json_schema with an empty schema', { response_format: { type: 'json_schema', json_schema: { name: 'x', schema: {} } } }],
  ['json_schema with a deep schema', { response_format: { type: 'json_schema', json_schema: { name: 'deep', schema: deepSchema(40), strict: true } } }],
  ['json_schema with a non-object schema', { response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'array', items: { type: 'integer' } } } } }],
  ['json_schema with a $ref', { response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { $defs: { node: { type: 'object', properties: { next: { $ref: '#/$defs/node' } } } }, $ref: '#/$defs/node' } } } }],
  ['a tool with deep parameters', { tools: [{ type: 'function', function: { name: 'deep', parameters: deepSchema(40) } }], tool_choice: 'required' }],
  ['a tool with empty parameters', { tools: [{ type: 'function', function: { name: 'noop', parameters: {} } }], tool_choice: 'required' }],
  ['a tool without parameters', { tools: [{ type: 'function', function: { name: 'noop' } }], tool_choice: { type: 'function', function: { name: 'noop' } } }],
  ['a tool with a type list and anyOf', { tools: [{ type: 'function', function: { name: 'mixed', parameters: { type: 'object', properties: { a: { type: ['string', 'null'] }, b: { anyOf: [{ type: 'string' }, { type: 'integer' }] } }, required: ['a', 'b'] } } }], tool_choice: 'required' }],
  ['a tool with a recursive $ref', { tools: [{ type: 'function', function: { name: 'tree', parameters: { type: 'object', $defs: { node: { type: 'object', properties: { kids: { type: 'array', items: { $ref: '#/$defs/node' } } } } }, properties: { root: { $ref: '#/$defs/node' } }, required: ['root'] } } }], tool_choice: 'required' }],
  ['a tool name with unicode and spaces', { tools: [{ type: 'function', function: { name: 'get weather ✨', parameters: { type: 'object' } } }] }, { on: TRANSLATED, param: 'tools[0].function.name' }],
  ['two tools with one name', { tools: [weather, weather] }],
  ['an empty tools list', { tools: [] }],
  ['tool_choice none', { tools: [weather], tool_choice: 'none' }],
  ['tool_choice required', { tools: [weather], tool_choice: 'required' }],
  ['tool_choice naming a function', { tools: [weather], tool_choice: { type: 'function', function: { name: 'get_weather' } } }],
  ['tool_choice naming an unknown function', { tools: [weather], tool_choice: { type: 'function', function: { name: 'nope' } } }],
  ['tool_choice without tools', { tool_choice: 'required' }],
  ['tool_choice allowed_tools', { tools: [weather], tool_choice: { type: 'allowed_tools', allowed_tools: { mode: 'auto', tools: [{ type: 'function', function: { name: 'get_weather' } }] } } }],
  ['a custom tool', { tools: [{ type: 'custom', custom: { name: 'grammar' } }] }],
  ['parallel_tool_calls without tools', { parallel_tool_calls: false }],
  ['empty content', { messages: [user('')] }, { on: TRANSLATED, param: 'messages' }],
  ['an empty content list', { messages: [user([])] }, { on: TRANSLATED, param: 'messages' }],
  // Gemini takes whitespace; Claude and Converse refuse blank text.
  ['whitespace content', { messages: [user(' \n\t ')] }, { on: ['anthropic', 'bedrock'], param: 'messages' }],
  ['lone surrogates and NUL', { messages: [user('\ud800 \udfff a\u0000b \u202e')] }],
  ['an empty text part', { messages: [user([{ type: 'text', text: '' }])] }, { on: TRANSLATED, param: 'messages' }],
  ['a refusal part from the user', { messages: [user([{ type: 'refusal', refusal: 'no' }])] }],
  ['an input_audio part', { messages: [user([{ type: 'input_audio', input_audio: { data: 'UklGRg==', format: 'wav' } }])] }],
  ['a file part', { messages: [user([{ type: 'text', text: 'Read this' }, { type: 'file', file: { file_data: 'data:application/pdf;base64,JVBERi0x', filename: 'a.pdf' } }])] }],
  ['a part of an unknown type', { messages: [user([{ type: 'video', video: { url: 'x' } }])] }],
  ['an image_url given as a string', { messages: [user([{ type: 'image_url', image_url: PIXEL }])] }],
  ['an image data URL that is not base64', { messages: [user([{ type: 'image_url', image_url: { url: 'data:image/png;base64,%%%not-base64' } }])] }, { on: TRANSLATED, param: 'messages[0].content[0]' }],
  ['an image data URL of text', { messages: [user([{ type: 'image_url', image_url: { url: 'data:text/plain;base64,aGk=' } }])] }, { on: TRANSLATED, param: 'messages[0].content[0]' }],
  ['an image with detail null', { messages: [user([{ type: 'image_url', image_url: { url: PIXEL, detail: null } }])] }],
  ['an empty message name', { messages: [{ role: 'user', name: '', content: 'hi' }] }],
  ['only a system message', { messages: [{ role: 'system', content: 'You are terse.' }] }, { on: TRANSLATED, param: 'messages' }],
  ['only an assistant message', { messages: [{ role: 'assistant', content: 'Hello.' }] }],
  ['a function-role message', { messages: [user('hi'), { role: 'function', name: 'f', content: '1' }] }],
  ['a tool message answering no call', { messages: [user('hi'), { role: 'tool', tool_call_id: 'nope', content: 'x' }] }, { on: TRANSLATED, param: 'messages[1].tool_call_id' }],
  ['a tool message with text parts', { messages: [user('hi'), { role: 'assistant', tool_calls: [{ id: 'c1', type: 'function', function: { name: 'get_weather', arguments: '{}' } }] }, { role: 'tool', tool_call_id: 'c1', content: [{ type: 'text', text: '4' }] }], tools: [weather] }],
  ['tool call arguments that are not JSON', { messages: [user('hi'), { role: 'assistant', tool_calls: [{ id: 'c1', type: 'function', function: { name: 'get_weather', arguments: 'not json' } }] }, { role: 'tool', tool_call_id: 'c1', content: 'x' }], tools: [weather] }],
  ['tool call arguments that are a JSON array', { messages: [user('hi'), { role: 'assistant', tool_calls: [{ id: 'c1', type: 'function', function: { name: 'get_weather', arguments: '[1]' } }] }, { role: 'tool', tool_call_id: 'c1', content: 'x' }], tools: [weather] }],
  ['empty tool call arguments and id', { messages: [user('hi'), { role: 'assistant', tool_calls: [{ id: '', type: 'function', function: { name: 'get_weather', arguments: '' } }] }, { role: 'tool', tool_call_id: '', content: 'x' }], tools: [weather] }],
  ['an assistant refusal without content', { messages: [user('hi'), { role: 'assistant', refusal: 'I cannot.' }, user('why?')] }],
  ['the largest max_tokens', { max_tokens: 4_294_967_295 }],
  ['both output limits', { max_tokens: 10, max_completion_tokens: 20 }],
  ['temperature 2 and top_p 0', { temperature: 2, top_p: 0 }],
  ['the smallest safe seed', { seed: -(2 ** 53 - 1) }],
  ['top_logprobs', { logprobs: true, top_logprobs: 20 }],
  ['top_logprobs without logprobs', { top_logprobs: 3 }],
  ['reasoning_effort high', { reasoning_effort: 'high' }],
  ['an unknown reasoning_effort', { reasoning_effort: 'extreme' }, EFFORT_REFUSED],
  ['an empty user', { user: '' }],
  ['modalities with audio', { modalities: ['text', 'audio'] }],
  ['an unknown field', { prediction: { type: 'content', content: 'x' }, vendor_knob: [1, { a: null }] }],
  ['reasoning_effort constructor', { reasoning_effort: 'constructor' }, EFFORT_REFUSED],
  ['reasoning_effort __proto__', { reasoning_effort: '__proto__' }, EFFORT_REFUSED],
  ['reasoning_effort toString', { reasoning_effort: 'toString' }, EFFORT_REFUSED],
  ['an input_audio format constructor', { messages: [user([{ type: 'input_audio', input_audio: { data: 'UklGRg==', format: 'constructor' } }])] }, { on: ['anthropic', 'gemini'], param: 'messages[0].content[0]' }],
  ['an image detail constructor', { messages: [user([{ type: 'image_url', image_url: { url: PIXEL, detail: 'constructor' } }])] }],
  ['a $ref with bad percent-encoding', { tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: { a: { $ref: '#/%E0%A4%A' } }, required: ['a'] } } }], tool_choice: 'required' }],
  ['a response schema $ref with bad percent-encoding', { response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object', properties: { a: { $ref: '#/%' } } } } } }],
  ['a $ref to the root', { tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: { self: { $ref: '#' } } } } }], tool_choice: 'required' }],
  ['a $ref to nowhere', { tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: { a: { $ref: '#/$defs/none' } }, required: ['a'] } } }], tool_choice: 'required' }],
  ['a remote $ref', { tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: { a: { $ref: 'https://example.invalid/s.json' } } } } }] }],
  ['required naming inherited keys', { tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: { a: { type: 'string' } }, required: ['a', 'constructor', 'toString'] } } }], tool_choice: 'required' }],
  ['properties named like Object members', { tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: { constructor: { type: 'string' }, hasOwnProperty: { type: 'integer' }, toString: { type: 'boolean' } }, required: ['constructor', 'hasOwnProperty', 'toString'] } } }], tool_choice: 'required' }],
  ['an invalid pattern and format', { tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: { a: { type: 'string', pattern: '(', format: 'constructor' } }, required: ['a'] } } }], tool_choice: 'required' }],
  ['an empty enum and an unknown type', { tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: { a: { enum: [] }, b: { type: 'objekt' }, c: { type: 'array', items: false } }, required: ['a', 'b', 'c'] } } }], tool_choice: 'required' }],
  ['a huge minItems', { tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: { a: { type: 'array', items: { type: 'string' }, minItems: 1e9 } }, required: ['a'] } } }], tool_choice: 'required' }],
  ['an answer schema asking for a billion items and characters', { response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object', properties: { s: { type: 'string', minLength: 1e9 }, a: { type: 'array', items: { type: 'integer' }, minItems: 1e9 } }, required: ['s', 'a'] } } } }],
  ['minimum above maximum', { tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: { a: { type: 'integer', minimum: 10, maximum: 1 } }, required: ['a'] } } }], tool_choice: 'required' }],
  ['tool_choice naming constructor', { tools: [weather], tool_choice: { type: 'function', function: { name: 'constructor' } } }],
  ['a tool named constructor', { tools: [{ type: 'function', function: { name: 'constructor', parameters: CITY_SCHEMA } }], tool_choice: 'required' }],
  ['a tool call id of constructor', { messages: [user('hi'), { role: 'assistant', tool_calls: [{ id: 'constructor', type: 'function', function: { name: 'get_weather', arguments: '{}' } }] }, { role: 'tool', tool_call_id: 'constructor', content: 'x' }], tools: [weather] }],
  ['a tool answer for __proto__', { messages: [user('hi'), { role: 'tool', tool_call_id: '__proto__', content: 'x' }], tools: [weather] }, { on: TRANSLATED, param: 'messages[1].tool_call_id' }],
  ['a tool call with an empty name', { messages: [user('hi'), { role: 'assistant', tool_calls: [{ id: 'c1', type: 'function', function: { name: '', arguments: '{}' } }] }, { role: 'tool', tool_call_id: 'c1', content: 'x' }] }, { on: TRANSLATED, param: 'messages[1].tool_calls[0].function.name' }],
  ['two tool calls with one id', { messages: [user('hi'), { role: 'assistant', tool_calls: [{ id: 'c1', type: 'function', function: { name: 'get_weather', arguments: '{}' } }, { id: 'c1', type: 'function', function: { name: 'get_weather', arguments: '{}' } }] }, { role: 'tool', tool_call_id: 'c1', content: 'x' }], tools: [weather] }, { on: ['gemini'], param: 'messages[1].tool_calls[1].id' }],
  ['a tool result with an image', { messages: [user('hi'), { role: 'assistant', tool_calls: [{ id: 'c1', type: 'function', function: { name: 'get_weather', arguments: '{}' } }] }, { role: 'tool', tool_call_id: 'c1', content: [{ type: 'text', text: 'see' }, { type: 'image_url', image_url: { url: PIXEL } }] }], tools: [weather] }],
  ['a one-token JSON answer', { max_tokens: 1, response_format: { type: 'json_schema', json_schema: { name: 'answer', schema: ANSWER_SCHEMA, strict: true } } }],
  ['a one-token forced tool call', { max_tokens: 1, tools: [weather], tool_choice: 'required' }],
  ['a JSON answer cut at a quote', { stop: ['"'], response_format: { type: 'json_object' } }],
  ['a tool call cut at a comma', { stop: [',', '{'], tools: [weather], tool_choice: 'required' }],
  ['a JSON answer next to tools', { tools: [weather], response_format: { type: 'json_schema', json_schema: { name: 'answer', schema: ANSWER_SCHEMA } } }],
  ['a JSON answer with tool_choice none', { tools: [weather], tool_choice: 'none', response_format: { type: 'json_object' } }],
  ['a schema name with spaces', { response_format: { type: 'json_schema', json_schema: { name: 'my answer ✨', schema: ANSWER_SCHEMA } } }],
  ['an empty schema name', { response_format: { type: 'json_schema', json_schema: { name: '', schema: ANSWER_SCHEMA } } }],
  ['128 choices', { n: 128, max_tokens: 2 }],
  ['a stop sequence of a lone surrogate', { stop: ['\ud800'] }],
  ['a long stop sequence', { stop: ['x'.repeat(5_000)] }],
  ['logit_bias on inherited names', { logit_bias: { constructor: 1, toString: 2 } }],
  ['metadata with inherited names', { metadata: { constructor: 'a', toString: 'c' } }],
  // The HTTP server refuses any `__proto__` key as it parses a body (prototype poisoning).
  ['a __proto__ key in a schema', { tools: [{ type: 'function', function: { name: 'f', parameters: JSON.parse('{"type":"object","properties":{"__proto__":{"type":"string"}}}') } }] }],
  ['route controls', { route: { strategy: 'cost', min_quality: 0, max_price: { prompt: '100', completion: '100' }, latency_sensitive: true, allow_fallbacks: false, providers: { order: ['nobody'], ignore: ['constructor'] } } }],
  ['route providers only constructor', { route: { providers: { only: ['constructor'] } } }],
  ['a max_price of zero', { route: { max_price: '0' } }],
  ['models naming constructor', { models: ['constructor', '__proto__'] }],
  ['a long user', { user: 'u'.repeat(100_000) }],
  ['a top_k', { top_k: 1 }],
  ['a thinking parameter', { thinking: { type: 'enabled', budget_tokens: 2048 }, max_tokens: 4096 }],
  ['a thinking parameter of constructor', { thinking: { type: 'constructor' } }],
  ['nulls in every optional place', { tools: null, tool_choice: null, response_format: null, temperature: null, top_p: null, stop: null, max_tokens: null, n: null, seed: null, user: null, stream: null, stream_options: null, logit_bias: null, metadata: null }],
];

function oddCases(): Case[] {
  const cases: Case[] = [];
  for (const family of PROVIDER_TYPES) {
    const base = { model: chatModel(family), messages: [user('Hello there')] };
    for (const [name, extra, refused] of ODD_CHAT) {
      cases.push({ endpoint: 'chat', family, label: name, body: { ...base, ...extra }, refused });
      cases.push({ endpoint: 'chat', family, label: `${name} (stream)`, body: { ...base, ...extra, stream: true }, refused });
    }
    // Claude, Converse and Gemini take no empty message: the refusal names the prompt, not the message it became.
    cases.push({ endpoint: 'completions', family, label: 'an empty prompt', body: { model: chatModel(family), prompt: '' }, refused: { on: TRANSLATED, param: 'prompt' } });
    cases.push({ endpoint: 'completions', family, label: 'an empty second prompt, streamed', body: { model: chatModel(family), prompt: ['Say hello', ''], stream: true } });
    cases.push({ endpoint: 'completions', family, label: 'n > 1 over two prompts, streamed', body: { model: chatModel(family), prompt: ['a', 'b'], n: 2, stream: true, stream_options: { include_usage: true } } });
    cases.push({ endpoint: 'responses', family, label: 'input as a string, streamed', body: { model: chatModel(family), input: 'Hello', stream: true } });
    cases.push({ endpoint: 'responses', family, label: 'a tool with a deep schema, strict by default', body: { model: chatModel(family), input: 'Hello', tools: [{ type: 'function', name: 'deep', parameters: deepSchema(40) }], tool_choice: 'required' } });
    cases.push({ endpoint: 'responses', family, label: 'a forced function call, streamed', body: { model: chatModel(family), input: 'Weather in Oslo?', tools: [{ type: 'function', name: 'get_weather', parameters: CITY_SCHEMA }], tool_choice: { type: 'function', name: 'get_weather' }, stream: true } });
    cases.push({ endpoint: 'responses', family, label: 'a JSON answer, streamed', body: { model: chatModel(family), input: 'Hello', text: { format: { type: 'json_schema', name: 'answer', schema: ANSWER_SCHEMA, strict: true } }, stream: true } });
    cases.push({ endpoint: 'responses', family, label: 'text.format json_object', body: { model: chatModel(family), input: 'Hello', text: { format: { type: 'json_object' } } } });
    cases.push({ endpoint: 'responses', family, label: 'an empty input list and instructions', body: { model: chatModel(family), input: [], instructions: 'Hi' } });
    for (const model of ['constructor', '__proto__', 'toString', ' openai-chat', 'OPENAI-CHAT', 'auto', 'x'.repeat(300)]) {
      cases.push({ endpoint: 'chat', family, label: `model ${model.slice(0, 20)}`, body: { model, messages: [user('hi')] } });
    }
    for (const route of ['null', '[]', '1', '"x"', '{"strategy":"constructor"}', '{"providers":{"only":[]}}', '{"__proto__":{"strategy":"cheapest"}}', '{"max_price":"1e400"}', '{"min_quality":1e308}']) {
      cases.push({ endpoint: 'chat', family, label: `x-openrouter-route ${route}`, body: { model: chatModel(family), messages: [user('hi')] }, headers: { 'x-openrouter-route': route } });
    }
    for (const models of [',', ' , ', 'constructor', '__proto__,toString', `${chatModel(family)},${'m'.repeat(300)}`, Array.from({ length: 40 }, () => chatModel(family)).join(',')]) {
      cases.push({ endpoint: 'chat', family, label: `x-openrouter-models ${models.slice(0, 30)}`, body: { model: chatModel(family), messages: [user('hi')] }, headers: { 'x-openrouter-models': models } });
    }
    cases.push({ endpoint: 'chat', family, label: 'x-openrouter-user of constructor', body: { model: chatModel(family), messages: [user('hi')] }, headers: { 'x-openrouter-user': 'constructor' } });
    cases.push({ endpoint: 'responses', family, label: 'a reasoning item with forged thinking', body: { model: chatModel(family), include: ['reasoning.encrypted_content'], input: [user('hi'), { type: 'reasoning', summary: [], encrypted_content: Buffer.from(JSON.stringify({ v: 1, thinking_blocks: [{ type: 'thinking', thinking: 'x', signature: 'forged' }, { type: 'redacted_thinking', data: 'x' }] })).toString('base64url') }, { type: 'function_call', call_id: 'c1', name: 'get_weather', arguments: '{}' }, { type: 'function_call_output', call_id: 'c1', output: '4' }], tools: [{ type: 'function', name: 'get_weather', parameters: CITY_SCHEMA }] } });
    cases.push({ endpoint: 'responses', family, label: 'reasoning effort constructor', body: { model: chatModel(family), input: 'hi', reasoning: { effort: 'constructor' } } });
    cases.push({ endpoint: 'responses', family, label: 'text verbosity constructor', body: { model: chatModel(family), input: 'hi', text: { verbosity: 'constructor' } } });
    cases.push({ endpoint: 'responses', family, label: 'a tool whose schema cannot be strict', body: { model: chatModel(family), input: 'hi', tools: [{ type: 'function', name: 'f', parameters: { type: 'object', properties: { a: { $ref: '#/%' } }, additionalProperties: { type: 'string' } } }], tool_choice: 'required' } });
    cases.push({ endpoint: 'completions', family, label: 'a prompt of special tokens', body: { model: chatModel(family), prompt: '<|endoftext|><|im_start|>\ud800', max_tokens: 4 } });
    cases.push({ endpoint: 'completions', family, label: 'stream_options without stream', body: { model: chatModel(family), prompt: 'hi', stream_options: { include_usage: true } } });
    cases.push({ endpoint: 'ws', family, label: 'n > 1 streamed over the socket', body: { model: chatModel(family), messages: [user('hi')], n: 2, stream: true } });
  }
  for (const family of EMBEDDING_FAMILIES) {
    cases.push({ endpoint: 'embeddings', family, label: 'token ids', body: { model: `${family}-embed`, input: [1, 2, 3] } });
    cases.push({ endpoint: 'embeddings', family, label: 'lists of token ids', body: { model: `${family}-embed`, input: [[1, 2], [3]] } });
    cases.push({ endpoint: 'embeddings', family, label: 'a lone surrogate', body: { model: `${family}-embed`, input: '\ud800' } });
    cases.push({ endpoint: 'embeddings', family, label: 'base64 with the largest dimensions', body: { model: `${family}-embed`, input: 'hi', encoding_format: 'base64', dimensions: 4_294_967_295 } });
  }
  return cases;
}

/** WebSocket frames of unusual shapes; each must be answered with an error frame or an answer. */
const ODD_FRAMES: ReadonlyArray<[string, string]> = [
  ['a body that is not an object', JSON.stringify({ type: 'chat.completions', id: 'f1', body: 'hi' })],
  ['a body that is null', JSON.stringify({ type: 'chat.completions', id: 'f2', body: null })],
  ['a frame without a body', JSON.stringify({ type: 'chat.completions', id: 'f3' })],
  ['an id of 129 characters', JSON.stringify({ type: 'chat.completions', id: 'i'.repeat(129), body: {} })],
  ['an id that is a number', JSON.stringify({ type: 'chat.completions', id: 5, body: {} })],
  ['an unknown frame type', JSON.stringify({ type: 'embeddings', id: 'f4', body: {} })],
  ['a cancel of nothing', JSON.stringify({ type: 'cancel', id: 'nothing' })],
  ['a frame that is an array', '[1,2]'],
  ['a frame that is null', 'null'],
  ['a frame that is not JSON', '{"type":'],
  ['an empty frame', ''],
];

const LEAK = /Cannot read|is not a function|is not iterable|undefined|TypeError|RangeError|SyntaxError|\bat \S+ \(|node_modules|\/work\/|\.ts:\d|ECONNREFUSED|127\.0\.0\.1|sim-secret-key|grpc|RESOURCE_EXHAUSTED/i;

/** Why an error body is not OpenAI's shape, or tells of the gateway's insides; undefined when it is fine. */
function errorShapeProblem(body: unknown): string | undefined {
  const error = (body as { error?: Record<string, unknown> } | null)?.error;
  if (typeof error !== 'object' || error === null) return 'no error object';
  if (typeof error['message'] !== 'string' || typeof error['type'] !== 'string' || !('param' in error) || !('code' in error)) return 'not OpenAI’s error shape';
  if (LEAK.test(error['message'])) return 'the message tells of the gateway’s insides';
  return undefined;
}

/** `text` parsed, or undefined when it is not JSON. */
function json(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

const PATHS: Readonly<Record<Exclude<Endpoint, 'ws'>, string>> = { chat: '/v1/chat/completions', completions: '/v1/completions', embeddings: '/v1/embeddings', responses: '/v1/responses' };
const TIMEOUT_MS = 10_000;

/** What is wrong with one HTTP case's answer; undefined when it is a success or a proper 4xx. */
async function httpProblem(gw: TestGateway, c: Case & { endpoint: Exclude<Endpoint, 'ws'> }): Promise<string | undefined> {
  let status: number;
  let text: string;
  try {
    const response = await fetch(`${gw.url}${PATHS[c.endpoint]}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${gw.apiKey}`, 'content-type': 'application/json', ...c.headers },
      body: JSON.stringify(c.body),
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    status = response.status;
    text = await response.text();
  } catch (error) {
    return `no answer within ${TIMEOUT_MS} ms (${String(error)})`;
  }
  if (c.refused?.on.includes(c.family)) {
    const param = status === 400 ? (json(text) as { error?: { param?: unknown } } | undefined)?.error?.param : undefined;
    if (param !== c.refused.param) return `not refused with a 400 naming '${c.refused.param}': ${status} ${text.slice(0, 300)}`;
  }
  if (status === 200) {
    if (!text.startsWith('data:') && !text.startsWith('event:')) return typeof json(text) === 'object' ? undefined : `an answer that is not JSON: ${text.slice(0, 200)}`;
    // A stream: every event must be JSON, and none an error...
    const events = text.split('\n').filter((line) => line.startsWith('data: ') && line !== 'data: [DONE]');
    for (const [i, line] of events.entries()) {
      const event = json(line.slice(6)) as { error?: unknown; type?: string } | undefined;
      if (!event) return `a stream event that is not JSON: ${line.slice(0, 200)}`;
      if (event.error === undefined && event.type !== 'error' && event.type !== 'response.failed') continue;
      // ...but the last of a legacy stream of several prompts, after the answers before it: each
      // prompt is called once the one before it is answered, so a prompt its provider refuses
      // fails the stream there. It must still be a client error, naming the prompt.
      const laterPrompt = c.endpoint === 'completions' && i > 0 && i === events.length - 1;
      const error = event.error as { type?: unknown; param?: unknown } | undefined;
      if (laterPrompt && !errorShapeProblem(event) && error?.type === 'invalid_request_error' && !/^messages\b/.test(String(error.param))) continue;
      return `a stream that failed: ${line.slice(0, 300)}`;
    }
    return undefined;
  }
  const body = json(text);
  if (body === undefined) return `${status} that is not JSON: ${text.slice(0, 200)}`;
  if (status < 400 || status >= 500) return `${status} ${text.slice(0, 300)}`;
  const shape = errorShapeProblem(body);
  if (shape) return `${status} ${shape}: ${text.slice(0, 300)}`;
  // The chat path's parameter names are the client's only on the chat endpoint.
  const param = (body as { error: { param: unknown } }).error.param;
  if (c.endpoint !== 'chat' && typeof param === 'string' && /^messages\b/.test(param)) return `${status} naming '${param}', which the client did not send: ${text.slice(0, 300)}`;
  return undefined;
}

interface WsFrame {
  type: string;
  id: string | null;
  status?: number;
  error?: unknown;
}

/** One socket for every WebSocket case, each request waited on by its id. */
class FuzzSocket {
  private readonly waiting = new Map<string, { frames: WsFrame[]; settle: (frames: WsFrame[]) => void }>();
  /** Who waits for the next frame with no id (the answer to a frame the server could not read). */
  private unnamedWaiter: ((frame: WsFrame) => void) | undefined;

  private constructor(readonly socket: WebSocket) {
    socket.on('message', (data) => {
      const frame = JSON.parse(data.toString()) as WsFrame;
      if (frame.id === null) {
        this.unnamedWaiter?.(frame);
        return;
      }
      const entry = this.waiting.get(frame.id);
      if (!entry) return;
      entry.frames.push(frame);
      if (frame.type === 'done' || frame.type === 'completion' || frame.type === 'error') {
        this.waiting.delete(frame.id);
        entry.settle(entry.frames);
      }
    });
  }

  static open(gw: TestGateway): Promise<FuzzSocket> {
    const socket = new WebSocket(`${gw.url.replace(/^http/, 'ws')}/v1/ws`, ['openrouter.v1'], { headers: { authorization: `Bearer ${gw.apiKey}` } });
    return new Promise((resolve, reject) => {
      socket.once('open', () => resolve(new FuzzSocket(socket)));
      socket.once('error', reject);
    });
  }

  /** The answer to a frame the server cannot tie to a request (it has no id): the next frame without one. */
  unnamed(frame: string): Promise<WsFrame[] | undefined> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.unnamedWaiter = undefined;
        resolve(undefined);
      }, TIMEOUT_MS);
      this.unnamedWaiter = (answer) => {
        clearTimeout(timer);
        this.unnamedWaiter = undefined;
        resolve([answer]);
      };
      this.socket.send(frame);
    });
  }

  /** The frames of request `id` up to its last one, or undefined when none came in time. */
  request(id: string, frame: string): Promise<WsFrame[] | undefined> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        resolve(undefined);
      }, TIMEOUT_MS);
      this.waiting.set(id, {
        frames: [],
        settle: (frames) => {
          clearTimeout(timer);
          resolve(frames);
        },
      });
      this.socket.send(frame);
    });
  }
}

/** The id a frame carries, when it is JSON with a string id (the server answers under it). */
function frameId(frame: string): string | undefined {
  try {
    const id = (JSON.parse(frame) as { id?: unknown } | null)?.id;
    return typeof id === 'string' ? id : undefined;
  } catch {
    return undefined;
  }
}

function wsProblem(frames: WsFrame[] | undefined): string | undefined {
  if (!frames) return `no answer within ${TIMEOUT_MS} ms`;
  const last = frames[frames.length - 1];
  if (last?.type !== 'error') return undefined;
  const status = last.status ?? 0;
  if (status < 400 || status >= 500) return `an error frame with status ${status}: ${JSON.stringify(last.error).slice(0, 300)}`;
  const shape = errorShapeProblem(last.error);
  return shape ? `${shape}: ${JSON.stringify(last.error).slice(0, 300)}` : undefined;
}

/** Runs `work` on every item, at most `width` at once. */
async function pool<T>(items: readonly T[], width: number, work: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      await work(items[index] as T, index);
    }
  };
  await Promise.all(Array.from({ length: width }, worker));
}

describe('malformed and unusual input through every provider family', () => {
  let gw: TestGateway;
  let socket: FuzzSocket;

  beforeAll(async () => {
    gw = await startTestGateway({
      configure: (doc) => {
        const url = String((doc['providers'] as { simulated: { baseUrl: string } }).simulated.baseUrl).replace(/\/v1$/, '');
        const providers = doc['providers'] as Record<string, unknown>;
        const models = doc['models'] as Array<Record<string, unknown>>;
        for (const type of PROVIDER_TYPES) {
          const profile = SIMULATED_PROVIDERS[type];
          providers[`sim-${type}`] = profile.config(url, SIM_KEY);
          models.push({
            id: chatModel(type),
            capabilities: ['chat', 'tools', 'vision', 'json_object', 'json_schema', 'completions'],
            pricing: { input: '1', output: '2' },
            deployments: [{ id: `sim-${type}-chat`, provider: `sim-${type}`, model: profile.chatModel }],
          });
          if (profile.embeddingModel) models.push({ id: `${type}-embed`, capabilities: ['embeddings'], pricing: { input: '1' }, deployments: [{ id: `sim-${type}-embed`, provider: `sim-${type}`, model: profile.embeddingModel }] });
        }
      },
    });
    socket = await FuzzSocket.open(gw);
  });
  afterAll(async () => {
    socket?.socket.close();
    await gw?.close();
  });

  async function run(cases: readonly Case[]): Promise<string[]> {
    const failures: Array<[number, string]> = [];
    await pool(cases, 6, async (c, i) => {
      const problem =
        c.endpoint === 'ws'
          ? wsProblem(await socket.request(`c${i}`, JSON.stringify({ type: 'chat.completions', id: `c${i}`, body: c.body })))
          : await httpProblem(gw, c as Case & { endpoint: Exclude<Endpoint, 'ws'> });
      if (problem) failures.push([i, `${c.endpoint} ${c.family}: ${c.label} → ${problem}`]);
    });
    return failures.sort(([a], [b]) => a - b).map(([, text]) => text);
  }

  it('answers every value of every endpoint’s body replaced by a malformed one with a success or a 4xx', async () => {
    const cases = mutationCases();
    // Every endpoint reaches every family it can: chat (over HTTP and the socket), completions and
    // Responses all of them, embeddings those with an API.
    expect(new Set(cases.map((c) => `${c.endpoint}:${c.family}`)).size).toBe(4 * PROVIDER_TYPES.length + EMBEDDING_FAMILIES.length);
    expect(await run(cases)).toEqual([]);
  }, 120_000);

  it('serves odd but valid bodies on every family, or refuses them with a 4xx naming the parameter', async () => {
    expect(await run(oddCases())).toEqual([]);
  }, 120_000);

  it('answers WebSocket frames of unusual shapes with an error frame, and keeps the socket', async () => {
    const problems: string[] = [];
    for (const [name, frame] of ODD_FRAMES) {
      if (name === 'a cancel of nothing') {
        // Nothing answers a cancel; the socket must simply carry on.
        socket.socket.send(frame);
        continue;
      }
      const id = frameId(frame);
      const problem = wsProblem(id === undefined ? await socket.unnamed(frame) : await socket.request(id, frame));
      if (problem) problems.push(`${name} → ${problem}`);
    }
    expect(problems).toEqual([]);
    expect(socket.socket.readyState).toBe(WebSocket.OPEN);
  });

  it('still serves every family afterwards', async () => {
    expect((await fetch(`${gw.url}/health`)).status).toBe(200);
    for (const family of PROVIDER_TYPES) {
      const answer = await gw.client().chat.completions.create({ model: chatModel(family), messages: [{ role: 'user', content: 'still there?' }] });
      expect(answer.choices[0]?.message.content).toBeTruthy();
    }
  });
});
