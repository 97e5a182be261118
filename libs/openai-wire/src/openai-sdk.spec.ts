import OpenAI from 'openai';
import { parseChatRequest, toOpenAIChatBody } from './chat-request';
import { parseOpenAIChunk, parseOpenAICompletion, toOpenAIChunk, toOpenAICompletion } from './chat-response';
import { parseEmbeddingRequest, parseOpenAIEmbeddingResponse, toOpenAIEmbeddingResponse } from './embeddings';
import { parseLegacyCompletionRequest, toLegacyChunk, toLegacyCompletion } from './legacy-completions';

// The official SDK answered in-process: what we emit must be what it reads.

type Respond = (path: string, body: Record<string, unknown>) => Response;

function sdk(respond: Respond): OpenAI {
  return new OpenAI({
    apiKey: 'sk-test',
    baseURL: 'http://gateway.test/v1',
    maxRetries: 0,
    fetch: async (url: string | URL | Request, init?: RequestInit): Promise<Response> => {
      const path = new URL(url instanceof Request ? url.url : String(url)).pathname;
      return respond(path, typeof init?.body === 'string' ? (JSON.parse(init.body) as Record<string, unknown>) : {});
    },
  });
}

const json = (body: unknown): Response => new Response(JSON.stringify(body), { status: 200, headers: { 'content-type': 'application/json' } });

const sse = (events: readonly unknown[]): Response =>
  new Response(events.map((e) => `data: ${JSON.stringify(e)}\n\n`).join('') + 'data: [DONE]\n\n', { status: 200, headers: { 'content-type': 'text/event-stream' } });

const usage = { prompt_tokens: 9, completion_tokens: 3, total_tokens: 12, prompt_tokens_details: { cached_tokens: 0 }, completion_tokens_details: { reasoning_tokens: 0 } };

function chunk(choices: unknown[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { id: 'chatcmpl-s', object: 'chat.completion.chunk', created: 1_700_000_000, model: 'upstream', choices, ...extra };
}

describe('the official openai SDK', () => {
  it('sends request bodies that survive parseChatRequest → toOpenAIChatBody', async () => {
    let sent: Record<string, unknown> = {};
    const client = sdk((_path, body) => {
      sent = body;
      return json(toOpenAICompletion(parseOpenAICompletion({ id: 'c', created: 1, model: 'u', choices: [{ index: 0, message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }] }), body['model'] as string));
    });
    await client.chat.completions.create({
      model: 'public/model',
      messages: [
        { role: 'developer', content: 'be brief' },
        { role: 'user', content: [{ type: 'text', text: 'what is this?' }, { type: 'image_url', image_url: { url: 'https://x/y.png', detail: 'auto' } }] },
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'look', arguments: '{}' } }] },
        { role: 'tool', tool_call_id: 'call_1', content: 'a cat' },
      ],
      tools: [{ type: 'function', function: { name: 'look', description: 'Look', parameters: { type: 'object', properties: {} }, strict: true } }],
      tool_choice: 'auto',
      response_format: { type: 'json_schema', json_schema: { name: 'out', schema: { type: 'object' }, strict: true } },
      temperature: 0.2,
      max_completion_tokens: 100,
      seed: 1,
      metadata: { a: 'b' },
      reasoning_effort: 'low',
      prediction: { type: 'content', content: 'x' },
    });
    expect(toOpenAIChatBody(parseChatRequest(sent), 'public/model')).toEqual(sent);
  });

  it('reads our chat.completion', async () => {
    const provider = {
      id: 'chatcmpl-1',
      object: 'chat.completion',
      created: 1_700_000_000,
      model: 'upstream',
      choices: [{ index: 0, message: { role: 'assistant', content: null, refusal: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'f', arguments: '{"a":1}' } }] }, logprobs: null, finish_reason: 'tool_calls' }],
      usage,
    };
    const client = sdk(() => json(toOpenAICompletion(parseOpenAICompletion(provider), 'public/model')));
    const completion = await client.chat.completions.create({ model: 'public/model', messages: [{ role: 'user', content: 'hi' }] });
    expect(completion.model).toBe('public/model');
    expect(completion.object).toBe('chat.completion');
    const call = completion.choices[0]?.message.tool_calls?.[0];
    expect(call?.type === 'function' && call.function.arguments).toBe('{"a":1}');
    expect(completion.usage?.total_tokens).toBe(12);
  });

  it('assembles our chat.completion.chunk stream with its stream helper', async () => {
    const provider = [
      chunk([{ index: 0, delta: { role: 'assistant', content: '', refusal: null }, logprobs: null, finish_reason: null }]),
      chunk([{ index: 0, delta: { content: 'Hel' }, logprobs: null, finish_reason: null }]),
      chunk([{ index: 0, delta: { content: 'lo' }, logprobs: null, finish_reason: null }]),
      chunk([{ index: 0, delta: { tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'f', arguments: '' } }] }, logprobs: null, finish_reason: null }]),
      chunk([{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: '{"a":' } }] }, logprobs: null, finish_reason: null }]),
      chunk([{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: '1}' } }] }, logprobs: null, finish_reason: null }]),
      chunk([{ index: 0, delta: {}, logprobs: null, finish_reason: 'tool_calls' }]),
      chunk([], { usage }),
    ];
    const client = sdk(() => sse(provider.map((c) => toOpenAIChunk(parseOpenAIChunk(c), 'public/model'))));
    const stream = client.chat.completions.stream({ model: 'public/model', messages: [{ role: 'user', content: 'hi' }], stream_options: { include_usage: true } });
    const final = await stream.finalChatCompletion();
    expect(final.model).toBe('public/model');
    expect(final.choices[0]?.message.content).toBe('Hello');
    expect(final.choices[0]?.finish_reason).toBe('tool_calls');
    const call = final.choices[0]?.message.tool_calls?.[0];
    expect(call?.type === 'function' && call.function).toMatchObject({ name: 'f', arguments: '{"a":1}' });
    expect(final.usage?.prompt_tokens).toBe(9);
  });

  it('reads our legacy text_completion and its stream', async () => {
    const legacy = parseLegacyCompletionRequest({ model: 'public/instruct', prompt: ['a', 'b'] });
    expect(legacy.prompts).toHaveLength(2);
    const completion = parseOpenAICompletion({ id: 'chatcmpl-x', created: 1, model: 'u', choices: [{ index: 0, message: { role: 'assistant', content: 'done' }, finish_reason: 'stop' }], usage });
    const client = sdk((_path, body) =>
      body['stream']
        ? sse([toLegacyChunk(parseOpenAIChunk(chunk([{ index: 0, delta: { content: 'to' }, finish_reason: null }])), 'public/instruct', 1), toLegacyChunk(parseOpenAIChunk(chunk([{ index: 0, delta: {}, finish_reason: 'stop' }])), 'public/instruct', 1)])
        : json(toLegacyCompletion([completion, completion], 'public/instruct', 1)),
    );
    const whole = await client.completions.create({ model: 'public/instruct', prompt: ['a', 'b'] });
    expect(whole.object).toBe('text_completion');
    expect(whole.choices.map((c) => [c.index, c.text, c.finish_reason])).toEqual([
      [0, 'done', 'stop'],
      [1, 'done', 'stop'],
    ]);
    expect(whole.usage?.total_tokens).toBe(24);
    const parts: string[] = [];
    for await (const part of await client.completions.create({ model: 'public/instruct', prompt: 'b', stream: true })) parts.push(`${part.choices[0]?.index}:${part.choices[0]?.text}`);
    expect(parts).toEqual(['1:to', '1:']);
  });

  it('decodes our base64 embeddings (its default) and reads our float embeddings', async () => {
    const vector = [0.25, -0.5, 0.1];
    const provider = { object: 'list', model: 'u', data: [{ object: 'embedding', index: 0, embedding: vector }], usage: { prompt_tokens: 2, total_tokens: 2 } };
    const client = sdk((_path, body) => {
      const { encodingFormat } = parseEmbeddingRequest(body);
      return json(toOpenAIEmbeddingResponse(parseOpenAIEmbeddingResponse(provider), 'public/embed', encodingFormat));
    });
    const viaBase64 = await client.embeddings.create({ model: 'public/embed', input: 'hi' });
    const viaFloat = await client.embeddings.create({ model: 'public/embed', input: 'hi', encoding_format: 'float' });
    const expected = vector.map(Math.fround);
    expect(viaBase64.data[0]?.embedding).toEqual(expected);
    expect(viaFloat.data[0]?.embedding).toEqual(expected);
    expect(viaFloat.model).toBe('public/embed');
  });
});
