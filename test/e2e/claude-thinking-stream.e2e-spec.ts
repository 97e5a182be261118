import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isDeepStrictEqual } from 'node:util';
import OpenAI from 'openai';
import { SIMULATED_PROVIDERS } from '../support/simulated-providers';
import { startTestGateway, type TestGateway } from '../support/test-gateway';

/**
 * Claude's thinking streamed to the official `openai` SDK's stream helper and handed back as the
 * SDK assembled it. The upstream is a scripted Anthropic API: the simulator's answers carry a
 * single thinking block, and the helper loses blocks only when an answer has several (here a
 * redacted block and a signed one before a tool call, as Claude may send them).
 */
const REDACTED = { type: 'redacted_thinking', data: 'RW5jcnlwdGVkIHRoaW5raW5n' } as const;
const SIGNED = { type: 'thinking', thinking: 'Oslo is in Norway; ask for its weather.', signature: 'c2lnbmVkLWJ5LWNsYXVkZQ==' } as const;
const ANSWER = 'It is 4 °C in Oslo.';

const weather = {
  type: 'function' as const,
  function: { name: 'get_weather', description: 'Weather for a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } },
};

type Block = Record<string, unknown> & { type: string };
type Turn = { role: string; content: string | Block[] };

const event = (type: string, data: Record<string, unknown> = {}): string => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
const usage = { input_tokens: 20, output_tokens: 40 };

/** The first answer: redacted thinking, a signed thinking block (its text in two deltas), then a tool call. */
const THINKING_THEN_TOOL = [
  event('message_start', { message: { id: 'msg_1', type: 'message', role: 'assistant', model: 'claude-sonnet-4-6', content: [], usage } }),
  event('content_block_start', { index: 0, content_block: REDACTED }),
  event('content_block_stop', { index: 0 }),
  event('content_block_start', { index: 1, content_block: { type: 'thinking', thinking: '', signature: '' } }),
  event('content_block_delta', { index: 1, delta: { type: 'thinking_delta', thinking: 'Oslo is in Norway; ' } }),
  event('content_block_delta', { index: 1, delta: { type: 'thinking_delta', thinking: 'ask for its weather.' } }),
  event('content_block_delta', { index: 1, delta: { type: 'signature_delta', signature: SIGNED.signature } }),
  event('content_block_stop', { index: 1 }),
  event('content_block_start', { index: 2, content_block: { type: 'tool_use', id: 'toolu_oslo', name: 'get_weather', input: {} } }),
  event('content_block_delta', { index: 2, delta: { type: 'input_json_delta', partial_json: '{"city":"Oslo"}' } }),
  event('content_block_stop', { index: 2 }),
  event('message_delta', { delta: { stop_reason: 'tool_use', stop_sequence: null }, usage: { output_tokens: 40 } }),
  event('message_stop'),
].join('');

const TEXT_ANSWER = [
  event('message_start', { message: { id: 'msg_2', type: 'message', role: 'assistant', model: 'claude-sonnet-4-6', content: [], usage } }),
  event('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }),
  event('content_block_delta', { index: 0, delta: { type: 'text_delta', text: ANSWER } }),
  event('content_block_stop', { index: 0 }),
  event('message_delta', { delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 8 } }),
  event('message_stop'),
].join('');

/**
 * Anthropic's `/v1/messages` for this conversation: the first turn answers with thinking and a
 * tool call; the tool turn is answered only when its assistant turn starts with exactly that
 * thinking, as Anthropic requires with thinking on, and refused as Anthropic refuses it otherwise.
 */
async function scriptedAnthropic(): Promise<{ url: string; bodies: Array<{ messages: Turn[] }>; close(): Promise<void> }> {
  const bodies: Array<{ messages: Turn[] }> = [];
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { messages: Turn[] };
      bodies.push(body);
      const assistant = body.messages.find((m) => m.role === 'assistant');
      if (!assistant) {
        res.writeHead(200, { 'content-type': 'text/event-stream' }).end(THINKING_THEN_TOOL);
        return;
      }
      const content = typeof assistant.content === 'string' ? [] : assistant.content;
      const thinking = content.filter((b) => b.type === 'thinking' || b.type === 'redacted_thinking');
      if (!isDeepStrictEqual(thinking, [REDACTED, SIGNED])) {
        const message = 'messages.1.content: With thinking enabled, the entire sequence of consecutive thinking or redacted_thinking blocks must match the original response.';
        res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ type: 'error', error: { type: 'invalid_request_error', message } }));
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream' }).end(TEXT_ANSWER);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    bodies,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe("Claude's thinking through the openai SDK's stream helper", () => {
  let upstream: Awaited<ReturnType<typeof scriptedAnthropic>>;
  let gw: TestGateway;
  let client: OpenAI;
  const model = 'claude-scripted';

  beforeAll(async () => {
    upstream = await scriptedAnthropic();
    gw = await startTestGateway({
      configure: (doc) => {
        (doc['providers'] as Record<string, unknown>)['scripted-anthropic'] = SIMULATED_PROVIDERS.anthropic.config(upstream.url, 'sk-ant-scripted');
        (doc['models'] as Array<Record<string, unknown>>).push({
          id: model,
          capabilities: ['chat', 'tools'],
          pricing: { input: '1', output: '2' },
          deployments: [{ id: 'scripted-anthropic-chat', provider: 'scripted-anthropic', model: 'claude-sonnet-4-6' }],
        });
      },
    });
    client = gw.client();
  });
  afterAll(async () => {
    await gw?.close();
    await upstream?.close();
  });

  it('finalChatCompletion() keeps every thinking block, so the message appended as it came back continues the tool loop', async () => {
    const question: OpenAI.ChatCompletionMessageParam = { role: 'user', content: 'Weather in Oslo?' };
    const first = client.chat.completions.stream({ model, reasoning_effort: 'high', tools: [weather], messages: [question] });
    let reasoning = '';
    const withBlocks: OpenAI.ChatCompletionChunk.Choice[] = [];
    first.on('chunk', (chunk) => {
      const choice = chunk.choices[0];
      reasoning += (choice?.delta as { reasoning_content?: string } | undefined)?.reasoning_content ?? '';
      if (choice && 'thinking_blocks' in choice.delta) withBlocks.push(choice);
    });
    const message = (await first.finalChatCompletion()).choices[0]?.message;
    const call = message?.tool_calls?.[0];
    if (!message || call?.type !== 'function') throw new Error('expected a tool call');
    expect(call.function).toMatchObject({ name: 'get_weather', arguments: '{"city":"Oslo"}' });

    // The message goes back as the helper assembled it (as the SDK's tool-loop examples do).
    const second = client.chat.completions.stream({
      model,
      reasoning_effort: 'high',
      tools: [weather],
      messages: [question, message, { role: 'tool', tool_call_id: call.id, content: '{"celsius":4}' }],
    });
    expect((await second.finalChatCompletion()).choices[0]?.message.content).toBe(ANSWER);
    const handedBack = upstream.bodies.at(-1)?.messages[1]?.content as Block[];
    expect(handedBack.map((b) => b.type)).toEqual(['redacted_thinking', 'thinking', 'tool_use']);
    expect(message).toMatchObject({ thinking_blocks: [REDACTED, SIGNED] });
    // Once, whole, on the finishing chunk: a client appending lists, or the Python SDK's helper
    // (which raises on a list field that comes twice without an index), reads them right too.
    expect(withBlocks).toEqual([expect.objectContaining({ finish_reason: 'tool_calls', delta: expect.objectContaining({ thinking_blocks: [REDACTED, SIGNED] }) })]);
    // The helper adds up only the fields OpenAI defines: the whole reasoning text is in the chunks.
    expect(reasoning).toBe(SIGNED.thinking);
  });
});
