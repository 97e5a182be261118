import { Sha256 } from '@aws-crypto/sha256-js';
import { EventStreamCodec } from '@smithy/eventstream-codec';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { fromUtf8, toUtf8 } from '@smithy/util-utf8';
import { request } from 'undici';
import { ANTHROPIC_REDACTED_THINKING_TRIGGER, anthropicThinkingSignature, type RunningSimulator, startSimulator } from '../index';

const SECRET = 'wire-spec-secret';
const MODEL_PATH = '/model/anthropic.claude-3-5-sonnet-20241022-v2%3A0';
const codec = new EventStreamCodec(toUtf8, fromUtf8);

interface Frame {
  headers: Record<string, unknown>;
  payload: Record<string, unknown>;
}

/** Splits a complete event-stream body into decoded messages. */
function frames(bytes: Buffer): Frame[] {
  const out: Frame[] = [];
  for (let at = 0; at < bytes.length; ) {
    const length = bytes.readUInt32BE(at);
    const message = codec.decode(bytes.subarray(at, at + length));
    const headers = Object.fromEntries(Object.entries(message.headers).map(([k, v]) => [k, v.value]));
    out.push({ headers, payload: JSON.parse(toUtf8(message.body)) as Record<string, unknown> });
    at += length;
  }
  return out;
}

/** Bedrock Runtime wire checks over raw HTTP, signed as the AWS SDK signs. */
describe('Bedrock wire format over HTTP', () => {
  let sim: RunningSimulator;

  beforeAll(async () => {
    sim = await startSimulator({ apiKey: SECRET });
  });
  afterEach(() => sim.reset());
  afterAll(() => sim.close());

  interface PostOptions {
    secret?: string | null;
    sessionToken?: string;
    tamper?: (body: string) => string;
  }

  async function post(path: string, body: unknown, options: PostOptions = {}) {
    const url = new URL(`${sim.url}${path}`);
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    let headers: Record<string, string> = { host: url.host, 'content-type': 'application/json' };
    if (options.secret !== null) {
      const signer = new SignatureV4({
        service: 'bedrock',
        region: 'us-east-1',
        credentials: { accessKeyId: 'AKIDANYTHING', secretAccessKey: options.secret ?? SECRET, sessionToken: options.sessionToken },
        sha256: Sha256,
      });
      const signed = await signer.sign(new HttpRequest({ method: 'POST', protocol: 'http:', hostname: url.hostname, port: Number(url.port), path: url.pathname, headers, body: text }));
      headers = signed.headers;
    }
    const response = await request(url, { method: 'POST', headers, body: options.tamper ? options.tamper(text) : text });
    const bytes = Buffer.from(await response.body.arrayBuffer());
    return { status: response.statusCode, headers: response.headers, bytes, json: () => JSON.parse(bytes.toString('utf8')) as Record<string, unknown> };
  }

  const converse = (extra: Record<string, unknown> = {}, stream = false, options?: PostOptions) =>
    post(`${MODEL_PATH}/${stream ? 'converse-stream' : 'converse'}`, { messages: [{ role: 'user', content: [{ text: 'Hello' }] }], ...extra }, options);

  it('answers a signed Converse call with a message, stopReason, usage and a request id', async () => {
    const response = await converse({ system: [{ text: 'Be brief.' }] });
    expect(response.status).toBe(200);
    expect(response.headers['x-amzn-requestid']).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-a[0-9a-f]{3}-[0-9a-f]{12}$/);
    const body = response.json();
    expect(body).toEqual({
      output: { message: { role: 'assistant', content: [{ text: expect.any(String) }] } },
      stopReason: 'end_turn',
      usage: { inputTokens: expect.any(Number), outputTokens: 16, totalTokens: expect.any(Number) },
      metrics: { latencyMs: 0 },
    });
    const seen = sim.requests()[0];
    expect(seen).toMatchObject({ model: 'anthropic.claude-3-5-sonnet-20241022-v2:0', stream: false, headers: { authorization: 'present' } });
  });

  it.each([
    ['an unsigned call', { secret: null }, 'MissingAuthenticationTokenException'],
    ['a wrong secret', { secret: 'not-it' }, 'InvalidSignatureException'],
    ['a body changed after signing', { tamper: (b: string) => b.replace('Hello', 'Howdy') }, 'InvalidSignatureException'],
  ])('refuses %s with 403 and the AWS error type', async (_name, options, errorType) => {
    const response = await converse({}, false, options as PostOptions);
    expect(response.status).toBe(403);
    expect(String(response.headers['x-amzn-errortype'])).toMatch(new RegExp(`^${errorType}(:|$)`));
    expect(response.json()).toEqual({ message: expect.any(String) });
  });

  it('accepts temporary credentials (a signed session token) and any access key id', async () => {
    expect((await converse({}, false, { sessionToken: 'FwoGZXIvYXdzEJr//////////session' })).status).toBe(200);
  });

  it('accepts unsigned calls when no key is configured', async () => {
    const open = await startSimulator();
    try {
      const response = await request(`${open.url}${MODEL_PATH}/converse`, { method: 'POST', body: JSON.stringify({ messages: [{ role: 'user', content: [{ text: 'Hi' }] }] }) });
      expect(response.statusCode).toBe(200);
      await response.body.dump();
    } finally {
      await open.close();
    }
  });

  it('streams the same answer as binary event-stream frames with AWS headers', async () => {
    const plain = (await converse()).json() as { output: { message: { content: { text: string }[] } }; usage: unknown };
    const response = await converse({}, true);
    expect(response.headers['content-type']).toBe('application/vnd.amazon.eventstream');
    const list = frames(response.bytes);
    expect(list.every((f) => f.headers[':message-type'] === 'event' && f.headers[':content-type'] === 'application/json')).toBe(true);
    const types = list.map((f) => f.headers[':event-type']);
    expect(types[0]).toBe('messageStart');
    expect(types.slice(-3)).toEqual(['contentBlockStop', 'messageStop', 'metadata']);
    const text = list.filter((f) => f.headers[':event-type'] === 'contentBlockDelta').map((f) => (f.payload['delta'] as { text: string }).text);
    expect(text.join('')).toBe(plain.output.message.content[0]?.text);
    expect(list[list.length - 2]?.payload).toMatchObject({ stopReason: 'end_turn' });
    expect(list[list.length - 1]?.payload).toMatchObject({ usage: plain.usage });
  });

  it('streams a forced tool use with a contentBlockStart and input fragments', async () => {
    const tool = { toolSpec: { name: 'lookup', inputSchema: { json: { type: 'object', properties: { q: { type: 'string' } }, required: ['q'] } } } };
    const list = frames((await converse({ toolConfig: { tools: [tool], toolChoice: { any: {} } } }, true)).bytes);
    const start = list.find((f) => f.headers[':event-type'] === 'contentBlockStart');
    expect(start?.payload).toMatchObject({ contentBlockIndex: 0, start: { toolUse: { toolUseId: expect.stringMatching(/^tooluse_/), name: 'lookup' } } });
    const input = list.filter((f) => f.headers[':event-type'] === 'contentBlockDelta').map((f) => (f.payload['delta'] as { toolUse: { input: string } }).toolUse.input);
    expect(JSON.parse(input.join(''))).toEqual({ q: expect.any(String) });
    expect(list.find((f) => f.headers[':event-type'] === 'messageStop')?.payload).toMatchObject({ stopReason: 'tool_use' });
  });

  it('reports stop_sequence and max_tokens as Bedrock does', async () => {
    const full = ((await converse()).json() as { output: { message: { content: { text: string }[] } } }).output.message.content[0]?.text ?? '';
    const word = full.split(' ')[2] ?? '';
    expect((await converse({ inferenceConfig: { stopSequences: [word] } })).json()).toMatchObject({ stopReason: 'stop_sequence' });
    expect((await converse({ inferenceConfig: { maxTokens: 2 } })).json()).toMatchObject({ stopReason: 'max_tokens', usage: { outputTokens: 2 } });
  });

  it("returns a Claude model's stop_sequence when additionalModelResponseFieldPaths asks for it, whole or streamed", async () => {
    const full = ((await converse()).json() as { output: { message: { content: { text: string }[] } } }).output.message.content[0]?.text ?? '';
    const words = full.split(' ');
    const [early, late] = [words[2] ?? '', words[4] ?? ''];
    const asked = { inferenceConfig: { stopSequences: [late, early] }, additionalModelResponseFieldPaths: ['/stop_sequence'] };
    // The sequence found first in the answer ended it, whatever its place in the list.
    expect((await converse(asked)).json()).toMatchObject({ stopReason: 'stop_sequence', additionalModelResponseFields: { stop_sequence: early } });
    const stop = frames((await converse(asked, true)).bytes).find((f) => f.headers[':event-type'] === 'messageStop');
    expect(stop?.payload).toMatchObject({ stopReason: 'stop_sequence', additionalModelResponseFields: { stop_sequence: early } });
    // null when no stop sequence ended it; nothing unless asked, or for a model without the field.
    expect((await converse({ additionalModelResponseFieldPaths: ['/stop_sequence'] })).json()).toMatchObject({ stopReason: 'end_turn', additionalModelResponseFields: { stop_sequence: null } });
    expect((await converse({ inferenceConfig: { stopSequences: [early] } })).json()).not.toHaveProperty('additionalModelResponseFields');
    const llama = await post('/model/meta.llama3-70b-instruct-v1%3A0/converse', { messages: [{ role: 'user', content: [{ text: 'Hello' }] }], ...asked });
    expect(llama.json()).not.toHaveProperty('additionalModelResponseFields');
    // A path that is not a JSON Pointer is refused, as Converse refuses it.
    const bad = await converse({ additionalModelResponseFieldPaths: ['stop_sequence'] });
    expect(bad.status).toBe(400);
  });

  it.each([
    [429, 'ThrottlingException'],
    [500, 'InternalServerException'],
    [503, 'ServiceUnavailableException'],
    [424, 'ModelErrorException'],
  ])('answers an injected %i with %s', async (status, errorType) => {
    sim.configure({ faults: [{ kind: 'http_error', status, retryAfterSeconds: 1 }] });
    const response = await converse();
    expect(response.status).toBe(status);
    expect(response.headers['x-amzn-errortype']).toBe(`${errorType}:http://internal.amazon.com/coral/com.amazon.bedrock/`);
    expect(response.headers['retry-after']).toBe('1');
  });

  it('rejects a prompt over the context window with ValidationException', async () => {
    sim.configure({ contextWindow: 5 });
    const response = await converse({ messages: [{ role: 'user', content: [{ text: 'one two three four five six seven' }] }] });
    expect(response.status).toBe(400);
    expect(String(response.headers['x-amzn-errortype'])).toMatch(/^ValidationException/);
    expect(response.json()).toEqual({ message: 'Input is too long for requested model.' });
  });

  it('rejects malformed requests with ValidationException / SerializationException', async () => {
    expect((await converse({ messages: [] })).status).toBe(400);
    expect((await converse({ inferenceConfig: { temperature: 1.5 } })).json()['message']).toMatch(/temperature/);
    // Converse takes up to 2,500 stop sequences (older releases took 4), none of them empty.
    const stops = Array.from({ length: 2_501 }, (_, i) => `s${i}`);
    expect((await converse({ inferenceConfig: { stopSequences: stops.slice(0, 5) } })).status).toBe(200);
    expect((await converse({ inferenceConfig: { stopSequences: stops.slice(0, 2_500) } })).status).toBe(200);
    expect((await converse({ inferenceConfig: { stopSequences: stops } })).status).toBe(400);
    expect((await converse({ inferenceConfig: { stopSequences: [''] } })).status).toBe(400);
    const notJson = await post(`${MODEL_PATH}/converse`, '{"messages": [');
    expect(String(notJson.headers['x-amzn-errortype'])).toMatch(/^SerializationException/);
  });

  it.each([
    [
      'a whitespace-only text block',
      { messages: [{ role: 'user', content: [{ text: 'Hi' }, { text: ' \n' }] }] },
      'The text field in the ContentBlock object at messages.0.content.1 is blank. Add text to the text field, and try again.',
    ],
    [
      'tool blocks without a toolConfig',
      {
        messages: [
          { role: 'user', content: [{ text: 'Go' }] },
          { role: 'assistant', content: [{ toolUse: { toolUseId: 't1', name: 'lookup', input: {} } }] },
          { role: 'user', content: [{ toolResult: { toolUseId: 't1', content: [{ text: 'found' }] } }] },
        ],
      },
      'The toolConfig field must be defined when using toolUse and toolResult content blocks.',
    ],
    [
      'a final assistant message ending in whitespace (Claude)',
      { messages: [{ role: 'user', content: [{ text: 'Hi' }] }, { role: 'assistant', content: [{ text: 'The answer is ' }] }] },
      'The model returned the following errors: messages: final assistant content cannot end with trailing whitespace',
    ],
    [
      'a tool use id outside [a-zA-Z0-9_-]',
      {
        toolConfig: { tools: [{ toolSpec: { name: 'lookup', inputSchema: { json: { type: 'object' } } } }] },
        messages: [
          { role: 'user', content: [{ text: 'Go' }] },
          { role: 'assistant', content: [{ toolUse: { toolUseId: 'functions.lookup:0', name: 'lookup', input: {} } }] },
          { role: 'user', content: [{ toolResult: { toolUseId: 'functions.lookup:0', content: [{ text: 'found' }] } }] },
        ],
      },
      "Value at 'messages.1.content.0.toolUse.toolUseId' failed to satisfy constraint",
    ],
  ])('refuses %s with ValidationException, as Bedrock does', async (_name, body, message) => {
    const response = await converse(body);
    expect(response.status).toBe(400);
    expect(String(response.headers['x-amzn-errortype'])).toMatch(/^ValidationException/);
    expect(response.json()['message']).toContain(message);
  });

  it('accepts tool blocks once toolConfig declares tools', async () => {
    const response = await converse({
      toolConfig: { tools: [{ toolSpec: { name: 'lookup', inputSchema: { json: { type: 'object' } } } }] },
      messages: [
        { role: 'user', content: [{ text: 'Go' }] },
        { role: 'assistant', content: [{ toolUse: { toolUseId: 't1', name: 'lookup', input: {} } }] },
        { role: 'user', content: [{ toolResult: { toolUseId: 't1', content: [{ text: 'found' }] } }] },
      ],
    });
    expect(response.status).toBe(200);
  });

  describe('extended thinking (Claude)', () => {
    type Reasoning = { reasoningText?: { text: string; signature: string }; redactedContent?: string };
    type Answer = { output: { message: { content: { reasoningContent?: Reasoning; text?: string }[] } }; usage: { outputTokens: number } };
    const adaptive = { additionalModelRequestFields: { thinking: { type: 'adaptive' }, output_config: { effort: 'high' } } };
    const budget = (budget_tokens: number, maxTokens?: number) => ({
      additionalModelRequestFields: { thinking: { type: 'enabled', budget_tokens } },
      ...(maxTokens === undefined ? {} : { inferenceConfig: { maxTokens } }),
    });
    const lookup = { tools: [{ toolSpec: { name: 'lookup', inputSchema: { json: { type: 'object' } } } }] };
    const signed = (text: string) => ({ reasoningContent: { reasoningText: { text, signature: anthropicThinkingSignature(text) } } });
    const toolTurn = (assistantFirst: Record<string, unknown>[]) => [
      { role: 'user', content: [{ text: 'Go' }] },
      { role: 'assistant', content: [...assistantFirst, { toolUse: { toolUseId: 't1', name: 'lookup', input: {} } }] },
      { role: 'user', content: [{ toolResult: { toolUseId: 't1', content: [{ text: 'found' }] } }] },
    ];

    it('answers with a signed reasoningContent block first, its tokens billed as output; other models ignore the field', async () => {
      const plain = (await converse()).json() as unknown as Answer;
      const response = await converse(adaptive);
      expect(response.status).toBe(200);
      const body = response.json() as unknown as Answer;
      const [reasoning, answer, ...rest] = body.output.message.content;
      expect(rest).toEqual([]);
      const text = reasoning?.reasoningContent?.reasoningText?.text ?? '';
      expect(text.length).toBeGreaterThan(0);
      expect(reasoning?.reasoningContent).toEqual({ reasoningText: { text, signature: anthropicThinkingSignature(text) } });
      expect(answer).toEqual(plain.output.message.content[0]);
      expect(body.usage.outputTokens).toBe(plain.usage.outputTokens + 24);

      const nova = await post('/model/amazon.nova-pro-v1%3A0/converse', { messages: [{ role: 'user', content: [{ text: 'Hello' }] }], ...adaptive });
      expect((nova.json() as unknown as Answer).output.message.content.map(Object.keys)).toEqual([['text']]);
    });

    it('streams the reasoning at index 0 (text deltas, then the signature), then the answer at index 1', async () => {
      const plain = (await converse(adaptive)).json() as unknown as Answer;
      const list = frames((await converse(adaptive, true)).bytes);
      expect(list.map((f) => f.headers[':event-type']).filter((t) => t === 'contentBlockStart')).toEqual([]);
      const deltas = list.filter((f) => f.headers[':event-type'] === 'contentBlockDelta').map((f) => f.payload as { contentBlockIndex: number; delta: { reasoningContent?: Record<string, string>; text?: string } });
      const reasoning = deltas.filter((d) => d.contentBlockIndex === 0).map((d) => d.delta.reasoningContent ?? {});
      const expected = plain.output.message.content[0]?.reasoningContent?.reasoningText;
      expect(reasoning.flatMap((r) => (r['text'] === undefined ? [] : [r['text']])).join('')).toBe(expected?.text);
      expect(reasoning[reasoning.length - 1]).toEqual({ signature: expected?.signature });
      expect(deltas.filter((d) => d.contentBlockIndex === 1).map((d) => d.delta.text).join('')).toBe(plain.output.message.content[1]?.text);
      const stops = list.filter((f) => f.headers[':event-type'] === 'contentBlockStop').map((f) => f.payload['contentBlockIndex']);
      expect(stops).toEqual([0, 1]);
      expect(list[list.length - 1]?.payload).toMatchObject({ usage: plain.usage });
    });

    it('thinks within a budget, omits the text on display omitted, redacts on the trigger string, and skips thinking at effort low', async () => {
      const small = (await converse(budget(1024, 1100))).json() as unknown as Answer;
      expect(small.output.message.content[0]?.reasoningContent?.reasoningText?.text.length).toBeGreaterThan(0);
      const omitted = (await converse({ additionalModelRequestFields: { thinking: { type: 'adaptive', display: 'omitted' } } })).json() as unknown as Answer;
      expect(omitted.output.message.content[0]?.reasoningContent).toEqual({ reasoningText: { text: '', signature: anthropicThinkingSignature('') } });
      const trigger = { messages: [{ role: 'user', content: [{ text: `Think about ${ANTHROPIC_REDACTED_THINKING_TRIGGER}` }] }] };
      const redacted = (await converse({ ...trigger, ...adaptive })).json() as unknown as Answer;
      expect(redacted.output.message.content[0]?.reasoningContent).toEqual({ redactedContent: expect.stringMatching(/^[A-Za-z0-9+/]+=*$/) });
      const list = frames((await converse({ ...trigger, ...adaptive }, true)).bytes);
      const first = list.find((f) => f.headers[':event-type'] === 'contentBlockDelta')?.payload;
      expect(first).toMatchObject({ contentBlockIndex: 0, delta: { reasoningContent: { redactedContent: redacted.output.message.content[0]?.reasoningContent?.redactedContent } } });
      const low = (await converse({ additionalModelRequestFields: { thinking: { type: 'adaptive' }, output_config: { effort: 'low' } } })).json() as unknown as Answer;
      expect(low.output.message.content.map(Object.keys)).toEqual([['text']]);
    });

    it.each([
      ['a budget under 1024', budget(1000), 'thinking.budget_tokens: Input should be greater than or equal to 1024'],
      ['a budget not under maxTokens', budget(2048, 2048), '`max_tokens` must be greater than `thinking.budget_tokens`'],
      ['a temperature other than 1', { ...adaptive, inferenceConfig: { temperature: 0.5 } }, '`temperature` may only be set to 1 when thinking is enabled or in adaptive mode'],
      ['a top_p below 0.95', { ...adaptive, inferenceConfig: { topP: 0.5 } }, '`top_p` must be greater than or equal to 0.95 or unset when thinking is enabled'],
      ['top_k', { additionalModelRequestFields: { ...adaptive.additionalModelRequestFields, top_k: 5 } }, '`top_k` must be unset when thinking is enabled'],
      ['a forced tool choice', { ...adaptive, toolConfig: { ...lookup, toolChoice: { any: {} } } }, 'Thinking may not be enabled when tool_choice forces tool use.'],
      ['an invalid signature', { ...adaptive, toolConfig: lookup, messages: toolTurn([{ reasoningContent: { reasoningText: { text: 'Edited.', signature: anthropicThinkingSignature('Original.') } } }]) }, 'messages.1.content.0: Invalid `signature` in `thinking` block'],
      ['a budgeted tool turn without its reasoning', { ...budget(1024, 2048), toolConfig: lookup, messages: toolTurn([]) }, 'messages.1.content.0.type: Expected `thinking` or `redacted_thinking`, but found `tool_use`.'],
    ])('refuses %s with ValidationException, in Claude\'s words', async (_name, body, message) => {
      const response = await converse(body);
      expect(response.status).toBe(400);
      expect(String(response.headers['x-amzn-errortype'])).toMatch(/^ValidationException/);
      const expected = `The model returned the following errors: ${message}`;
      expect(String(response.json()['message']).slice(0, expected.length)).toBe(expected);
    });

    it('accepts handed-back reasoning (signed or redacted) on a tool turn, and an adaptive tool turn without it', async () => {
      for (const first of [[signed('Look it up.')], [{ reasoningContent: { redactedContent: 'ZW5jcnlwdGVk' } }]]) {
        const response = await converse({ ...budget(1024, 2048), toolConfig: lookup, messages: toolTurn(first) });
        expect(response.status).toBe(200);
      }
      expect((await converse({ ...adaptive, toolConfig: lookup, messages: toolTurn([]) })).status).toBe(200);
      const both = await converse({ toolConfig: lookup, messages: toolTurn([{ reasoningContent: { reasoningText: { text: 'x', signature: 's' }, redactedContent: 'eA==' } }]) });
      expect(both.status).toBe(400);
    });
  });

  it('sends an exception frame mid-stream for an http_error fault with afterTokens', async () => {
    sim.configure({ faults: [{ kind: 'http_error', status: 429, afterTokens: 2 }] });
    const response = await converse({}, true);
    expect(response.status).toBe(200);
    const list = frames(response.bytes);
    expect(list.filter((f) => f.headers[':event-type'] === 'contentBlockDelta')).toHaveLength(2);
    expect(list[list.length - 1]).toEqual({
      headers: { ':exception-type': 'throttlingException', ':content-type': 'application/json', ':message-type': 'exception' },
      payload: { message: expect.any(String) },
    });
  });

  it('drops the connection mid-stream for drop_mid_stream', async () => {
    sim.configure({ faults: [{ kind: 'drop_mid_stream', afterTokens: 1 }] });
    await expect(converse({}, true)).rejects.toThrow();
    await sim.waitForRequest((r) => r.outcome === 'dropped');
  });

  it('embeds with Titan v2: one input, dimensions, token count in body and header', async () => {
    const response = await post('/model/amazon.titan-embed-text-v2%3A0/invoke', { inputText: 'hello world', dimensions: 256, normalize: true });
    expect(response.status).toBe(200);
    const body = response.json() as { embedding: number[]; inputTextTokenCount: number };
    expect(body.embedding).toHaveLength(256);
    expect(Math.hypot(...body.embedding)).toBeCloseTo(1, 4);
    expect(response.headers['x-amzn-bedrock-input-token-count']).toBe(String(body.inputTextTokenCount));
    expect((await post('/model/amazon.titan-embed-text-v2%3A0/invoke', { inputText: 'x', dimensions: 300 })).status).toBe(400);
  });

  it('embeds with Cohere: batched texts, required input_type, by-type output', async () => {
    const response = await post('/model/cohere.embed-english-v3/invoke', { texts: ['a', 'b'], input_type: 'search_document', embedding_types: ['float'] });
    expect(response.json()).toMatchObject({ response_type: 'embeddings_by_type', texts: ['a', 'b'], embeddings: { float: [expect.any(Array), expect.any(Array)] } });
    expect(((response.json()['embeddings'] as { float: number[][] }).float[0] ?? []).length).toBe(1024);
    const missingType = await post('/model/cohere.embed-english-v3/invoke', { texts: ['a'] });
    expect(missingType.status).toBe(400);
    expect(String(missingType.headers['x-amzn-errortype'])).toMatch(/^ValidationException/);
  });

  it('leaves other routes to other wire formats', async () => {
    expect((await post('/model/x/unknown-op', {})).status).toBe(404);
  });
});
