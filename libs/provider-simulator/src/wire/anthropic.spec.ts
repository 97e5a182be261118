import { request } from 'undici';
import { type RunningSimulator, startSimulator } from '../index';

const API_KEY = 'sk-ant-sim-key';
const HEADERS = { 'x-api-key': API_KEY, 'anthropic-version': '2023-06-01' };

interface SseEvent {
  event: string;
  data: Record<string, unknown>;
}

/** Anthropic's wire format over raw HTTP, including the checks the real service applies before answering. */
describe('Anthropic Messages wire format over HTTP', () => {
  let sim: RunningSimulator;

  beforeAll(async () => {
    sim = await startSimulator({ apiKey: API_KEY });
  });
  afterEach(() => sim.reset());
  afterAll(() => sim.close());

  const post = async (body: unknown, headers: Record<string, string> = HEADERS) => {
    const response = await request(`${sim.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await response.body.text();
    return { status: response.statusCode, headers: response.headers, text, json: () => JSON.parse(text) as Record<string, unknown> };
  };
  const messages = (body: Record<string, unknown> = {}, headers?: Record<string, string>) =>
    post({ model: 'claude-sonnet-4-5', max_tokens: 256, messages: [{ role: 'user', content: 'Hello there' }], ...body }, headers);
  const events = (text: string): SseEvent[] =>
    text
      .split('\n\n')
      .filter((block) => block.trim() !== '')
      .map((block) => {
        const lines = block.split('\n');
        const event = lines.find((l) => l.startsWith('event: '))?.slice('event: '.length) ?? '';
        const data = JSON.parse(lines.find((l) => l.startsWith('data: '))?.slice('data: '.length) ?? 'null') as Record<string, unknown>;
        expect(data['type']).toBe(event);
        return { event, data };
      });
  const errorOf = (json: Record<string, unknown>) => {
    expect(json['type']).toBe('error');
    return json['error'] as { type: string; message: string };
  };

  describe('authentication and headers', () => {
    it('answers 401 authentication_error without the right x-api-key', async () => {
      const missing = await messages({}, { 'anthropic-version': '2023-06-01' });
      expect(missing.status).toBe(401);
      expect(errorOf(missing.json())).toEqual({ type: 'authentication_error', message: 'x-api-key header is required' });
      const wrong = await messages({}, { 'anthropic-version': '2023-06-01', 'x-api-key': 'sk-ant-wrong' });
      expect(wrong.status).toBe(401);
      expect(errorOf(wrong.json())).toEqual({ type: 'authentication_error', message: 'invalid x-api-key' });
      const bearer = await messages({}, { 'anthropic-version': '2023-06-01', authorization: `Bearer ${API_KEY}` });
      expect(bearer.status).toBe(401);
    });

    it('requires the anthropic-version header', async () => {
      const response = await messages({}, { 'x-api-key': API_KEY });
      expect(response.status).toBe(400);
      expect(errorOf(response.json())).toEqual({ type: 'invalid_request_error', message: 'anthropic-version: header is required' });
    });

    it('logs the key as present, never its value', async () => {
      await messages();
      const logged = sim.requests()[0];
      expect(logged?.headers['x-api-key']).toBe('present');
      expect(logged?.headers['anthropic-version']).toBe('2023-06-01');
      expect(JSON.stringify(logged)).not.toContain(API_KEY);
    });
  });

  describe('request validation', () => {
    it.each([
      [{ max_tokens: undefined }, 'max_tokens: Field required'],
      [{ messages: [{ role: 'system', content: 'x' }] }, 'messages.0.role'],
      [{ n: 2 }, 'n: Extra inputs are not permitted'],
      [{ temperature: 1.5 }, 'temperature'],
      [{ messages: [{ role: 'user', content: [{ type: 'text', text: '' }] }] }, 'text content blocks must be non-empty'],
      [{ messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'base64', media_type: 'image/tiff', data: 'AAAA' } }] }] }, 'messages.0.content.0.source.media_type'],
      [{ tool_choice: { type: 'any' } }, 'tool_choice may only be specified while providing tools'],
      [{ stop_sequences: ['END', '\n'] }, 'stop_sequences: each stop sequence must contain non-whitespace'],
      [{ metadata: { user_id: 'ada@example.com' } }, 'metadata.user_id: user_id appears to contain an email address'],
      [{ metadata: { user_id: 'x'.repeat(257) } }, 'metadata.user_id'],
    ])('refuses %j with invalid_request_error', async (patch, message) => {
      const response = await messages(patch);
      expect(response.status).toBe(400);
      const error = errorOf(response.json());
      expect(error.type).toBe('invalid_request_error');
      expect(error.message).toContain(message);
    });

    it('refuses malformed JSON', async () => {
      const response = await post('{"model": ');
      expect(response.status).toBe(400);
      expect(errorOf(response.json()).type).toBe('invalid_request_error');
    });

    it('insists that every tool_use is answered by a tool_result in the next message, and the reverse', async () => {
      const tools = [{ name: 'lookup', input_schema: { type: 'object' } }];
      const use = { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'lookup', input: {} }] };
      const unanswered = await messages({ tools, messages: [{ role: 'user', content: 'Go' }, use, { role: 'user', content: 'and?' }] });
      expect(errorOf(unanswered.json()).message).toContain('`tool_use` ids were found without `tool_result` blocks immediately after: toolu_1');
      const stray = await messages({ tools, messages: [{ role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_9', content: 'x' }] }] });
      expect(errorOf(stray.json()).message).toContain('unexpected `tool_use_id` found in `tool_result` blocks: toolu_9');
      const noTools = await messages({ messages: [{ role: 'user', content: 'Go' }, use, { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1' }] }] });
      expect(errorOf(noTools.json()).message).toContain('must define tools');
    });

    it('answers prompt is too long above the context window', async () => {
      sim.configure({ contextWindow: 20 });
      const response = await messages({ system: 'You are a very thorough assistant who explains everything.', messages: [{ role: 'user', content: 'Please tell me a long story about rivers and mountains.' }] });
      expect(response.status).toBe(400);
      expect(errorOf(response.json())).toEqual({ type: 'invalid_request_error', message: expect.stringMatching(/^prompt is too long: \d+ tokens > 20 maximum$/) });
    });
  });

  describe('answers', () => {
    it('returns a message with usage and streams the same text with the real event sequence', async () => {
      const plain = await messages();
      expect(plain.status).toBe(200);
      const body = plain.json();
      expect(body).toEqual({
        id: expect.stringMatching(/^msg_01[A-Za-z0-9]{22}$/),
        type: 'message',
        role: 'assistant',
        model: 'claude-sonnet-4-5',
        content: [{ type: 'text', text: expect.any(String) }],
        stop_reason: 'end_turn',
        stop_sequence: null,
        usage: { input_tokens: expect.any(Number), cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 16 },
      });

      const streamed = await messages({ stream: true });
      expect(streamed.headers['content-type']).toContain('text/event-stream');
      const sequence = events(streamed.text);
      const names = sequence.map((e) => e.event);
      expect(names.slice(0, 3)).toEqual(['message_start', 'content_block_start', 'ping']);
      expect(names.slice(3, -3).every((n) => n === 'content_block_delta')).toBe(true);
      expect(names.slice(-3)).toEqual(['content_block_stop', 'message_delta', 'message_stop']);
      const text = sequence.flatMap((e) => (e.event === 'content_block_delta' ? [(e.data['delta'] as { text: string }).text] : [])).join('');
      expect(text).toBe((body['content'] as { text: string }[])[0]?.text);
      expect(sequence[0]?.data['message']).toMatchObject({ content: [], stop_reason: null, usage: { input_tokens: (body['usage'] as { input_tokens: number }).input_tokens, output_tokens: 1 } });
      expect(sequence[sequence.length - 2]?.data).toEqual({ type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 16 } });
    });

    it('stops at max_tokens and at stop sequences, naming the sequence', async () => {
      const short = (await messages({ max_tokens: 3 })).json();
      expect(short).toMatchObject({ stop_reason: 'max_tokens', usage: { output_tokens: 3 } });
      const full = ((await messages()).json()['content'] as { text: string }[])[0]?.text ?? '';
      const word = full.split(' ')[2] ?? '';
      const cut = (await messages({ stop_sequences: ['zzz', word] })).json();
      expect(cut).toMatchObject({ stop_reason: 'stop_sequence', stop_sequence: word });
      expect((cut['content'] as { text: string }[])[0]?.text).toBe(full.slice(0, full.indexOf(word)));
    });

    it('calls the forced tool with schema-complete input, as JSON and as input_json_delta fragments', async () => {
      const tools = [
        { name: 'first', input_schema: { type: 'object', properties: { a: { type: 'string' } }, required: ['a'] } },
        { name: 'lookup', description: 'Look a city up', input_schema: { type: 'object', properties: { city: { type: 'string' }, days: { type: 'integer', minimum: 3 } }, required: ['city', 'days'] } },
      ];
      const named = (await messages({ tools, tool_choice: { type: 'tool', name: 'lookup' } })).json();
      expect(named).toMatchObject({ stop_reason: 'tool_use', content: [{ type: 'tool_use', id: expect.stringMatching(/^toolu_01/), name: 'lookup', input: { city: 'sample', days: 3 } }] });
      const any = (await messages({ tools, tool_choice: { type: 'any' } })).json();
      expect(any['content']).toEqual([expect.objectContaining({ name: 'first', input: { a: 'sample' } })]);

      const sequence = events((await messages({ tools, tool_choice: { type: 'tool', name: 'lookup' }, stream: true })).text);
      expect(sequence[1]?.data['content_block']).toEqual({ type: 'tool_use', id: expect.stringMatching(/^toolu_01/), name: 'lookup', input: {} });
      const fragments = sequence.flatMap((e) => (e.event === 'content_block_delta' ? [(e.data['delta'] as { type: string; partial_json: string })] : []));
      expect(fragments[0]).toEqual({ type: 'input_json_delta', partial_json: '' });
      expect(fragments.every((f) => f.type === 'input_json_delta')).toBe(true);
      expect(JSON.parse(fragments.map((f) => f.partial_json).join(''))).toEqual({ city: 'sample', days: 3 });
      expect((sequence[sequence.length - 2]?.data['delta'] as { stop_reason: string }).stop_reason).toBe('tool_use');
    });

    it('answers a tool result in text when the choice is not forced to a tool', async () => {
      const tools = [{ name: 'lookup', input_schema: { type: 'object' } }];
      const response = await messages({
        tools,
        messages: [
          { role: 'user', content: 'Look up Oslo' },
          { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'lookup', input: {} }] },
          { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: 'Oslo: 4°C' }] },
        ],
      });
      expect(response.json()).toMatchObject({ stop_reason: 'end_turn', content: [{ type: 'text', text: expect.stringMatching(/^Tool result received\./) }] });
    });

    it('accepts images given inline or by URL', async () => {
      const response = await messages({
        messages: [
          {
            role: 'user',
            content: [
              { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } },
              { type: 'image', source: { type: 'url', url: 'https://images.example.org/cat.jpg' } },
              { type: 'text', text: 'What is this?' },
            ],
          },
        ],
      });
      expect(response.status).toBe(200);
    });
  });

  describe('faults', () => {
    it.each([
      [429, 'rate_limit_error', '1'],
      [529, 'overloaded_error', undefined],
      [500, 'api_error', undefined],
      [401, 'authentication_error', undefined],
    ])('answers an injected %i as %s', async (status, type, retryAfter) => {
      sim.configure({ faults: [{ kind: 'http_error', status, remaining: 1 }] });
      const response = await messages();
      expect(response.status).toBe(status);
      expect(errorOf(response.json()).type).toBe(type);
      expect(response.headers['retry-after']).toBe(retryAfter);
      expect((await messages()).status).toBe(200);
    });

    it('drops a stream after the given number of tokens, before message_stop', async () => {
      sim.configure({ faults: [{ kind: 'drop_mid_stream', afterTokens: 2 }] });
      let text = '';
      try {
        const response = await request(`${sim.url}/v1/messages`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...HEADERS },
          body: JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 64, stream: true, messages: [{ role: 'user', content: 'Hi' }] }),
        });
        for await (const piece of response.body) text += (piece as Buffer).toString('utf8');
      } catch {
        // The socket is destroyed mid-body; what arrived before is what counts.
      }
      expect(text).toContain('event: message_start');
      expect(text.match(/event: content_block_delta/g)).toHaveLength(2);
      expect(text).not.toContain('message_stop');
      await sim.waitForRequest((r) => r.outcome === 'dropped');
    });
  });
});
