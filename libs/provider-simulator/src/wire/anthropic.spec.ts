import { request } from 'undici';
import { ANTHROPIC_REDACTED_THINKING_TRIGGER, anthropicThinkingSignature, type RunningSimulator, startSimulator } from '../index';

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
      [{ messages: [{ role: 'user', content: [{ type: 'text', text: ' \n' }] }] }, 'text content blocks must contain non-whitespace text'],
      [{ system: [{ type: 'text', text: '\t' }] }, 'text content blocks must contain non-whitespace text'],
      [
        {
          tools: [{ name: 'lookup', input_schema: { type: 'object' } }],
          messages: [
            { role: 'user', content: 'Look it up' },
            { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_1', name: 'lookup', input: {} }] },
            { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: '\n' }] },
          ],
        },
        'text content blocks must contain non-whitespace text',
      ],
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
        usage: { input_tokens: expect.any(Number), cache_creation_input_tokens: 0, cache_read_input_tokens: 0, cache_creation: { ephemeral_5m_input_tokens: 0, ephemeral_1h_input_tokens: 0 }, output_tokens: 16 },
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

    it('caches the prompt up to the last cache_control block: written first (kept 5 minutes or an hour), then read', async () => {
      const long = 'The quarterly report covers revenue, costs and the outlook for every region. '.repeat(120);
      const marked = (ttl?: string, question = 'Summarise.') => ({
        system: [{ type: 'text', text: long, cache_control: { type: 'ephemeral', ...(ttl ? { ttl } : {}) } }],
        messages: [{ role: 'user', content: question }],
      });
      const usage = async (body: Record<string, unknown>) => (await messages(body)).json()['usage'] as Record<string, number | Record<string, number>>;
      const first = await usage(marked('1h'));
      const written = first['cache_creation_input_tokens'] as number;
      expect(written).toBeGreaterThanOrEqual(1024);
      expect(first).toMatchObject({ cache_read_input_tokens: 0, cache_creation: { ephemeral_5m_input_tokens: 0, ephemeral_1h_input_tokens: written } });
      // The same prefix with another question after it: read, and only the rest is input.
      const second = await usage(marked('1h', 'List the risks.'));
      expect(second).toMatchObject({ cache_creation_input_tokens: 0, cache_read_input_tokens: written });
      expect(second['input_tokens']).toBeLessThan(50);
      // Another prefix, default ttl: five minutes.
      const other = await usage({ ...marked(), system: [{ type: 'text', text: `${long} Draft.`, cache_control: { type: 'ephemeral' } }] });
      expect(other['cache_creation']).toEqual({ ephemeral_5m_input_tokens: other['cache_creation_input_tokens'], ephemeral_1h_input_tokens: 0 });
      // A prefix shorter than the minimum is not cached.
      expect(await usage({ system: [{ type: 'text', text: 'Be brief.', cache_control: { type: 'ephemeral' } }] })).toMatchObject({ cache_creation_input_tokens: 0, cache_read_input_tokens: 0 });
      // The cache is part of the simulator's state: a reset empties it.
      await sim.reset();
      expect((await usage(marked('1h')))['cache_creation_input_tokens']).toBe(written);
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

  describe('extended thinking', () => {
    const DOCS = 'https://docs.claude.com/en/docs/build-with-claude/extended-thinking';
    const enabled = { type: 'enabled', budget_tokens: 1024 };
    const adaptive = { type: 'adaptive' };
    const tools = [{ name: 'lookup', input_schema: { type: 'object' } }];
    const signed = (thinking: string) => ({ type: 'thinking', thinking, signature: anthropicThinkingSignature(thinking) });
    /** A tool loop whose assistant turn starts with `opening` blocks before its tool_use. */
    const toolLoop = (opening: unknown[]) => [
      { role: 'user', content: 'Look up Oslo' },
      { role: 'assistant', content: [...opening, { type: 'tool_use', id: 'toolu_1', name: 'lookup', input: {} }] },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_1', content: 'Oslo: 4°C' }] },
    ];
    const deltas = (sequence: SseEvent[], index: number) =>
      sequence.flatMap((e) => (e.event === 'content_block_delta' && e.data['index'] === index ? [e.data['delta'] as Record<string, string>] : []));

    it.each([
      [{ thinking: enabled, max_tokens: 1024 }, `\`max_tokens\` must be greater than \`thinking.budget_tokens\`. Please consult our documentation at ${DOCS}#max-tokens-and-context-window-size`],
      [{ thinking: { type: 'enabled', budget_tokens: 512 } }, 'thinking.budget_tokens: Input should be greater than or equal to 1024'],
      [{ thinking: { type: 'enabled' } }, 'thinking.budget_tokens: Field required'],
      [{ thinking: { type: 'enabled', budget_tokens: 1024, budget: 2048 }, max_tokens: 4096 }, 'thinking.budget: Extra inputs are not permitted'],
      [{ thinking: { type: 'adaptive', budget_tokens: 2048 } }, 'thinking.budget_tokens: Extra inputs are not permitted'],
      [{ thinking: { type: 'disabled', display: 'omitted' } }, 'thinking.display: Extra inputs are not permitted'],
      [{ thinking: { type: 'adaptive', display: 'full' } }, 'thinking.display'],
      [{ thinking: { type: 'on' } }, 'thinking.type'],
      [{ thinking: adaptive, output_config: { effort: 'extreme' } }, 'output_config.effort'],
      [{ thinking: enabled, max_tokens: 2048, temperature: 0.5 }, '`temperature` may only be set to 1 when thinking is enabled'],
      [{ thinking: adaptive, temperature: 0 }, '`temperature` may only be set to 1 when thinking is enabled'],
      [{ thinking: adaptive, top_k: 5 }, '`top_k` must be unset when thinking is enabled'],
      [{ thinking: enabled, max_tokens: 2048, top_p: 0.9 }, '`top_p` must be greater than or equal to 0.95 or unset when thinking is enabled'],
      [{ thinking: enabled, max_tokens: 2048, tools, tool_choice: { type: 'any' } }, 'Thinking may not be enabled when tool_choice forces tool use.'],
      [{ thinking: adaptive, tools, tool_choice: { type: 'tool', name: 'lookup' } }, 'Thinking may not be enabled when tool_choice forces tool use.'],
      [{ tools, messages: toolLoop([{ type: 'redacted_thinking', data: '' }]) }, 'messages.1.content.0.data'],
      [{ tools, messages: toolLoop([{ type: 'thinking', thinking: 'Let me look.' }]) }, 'messages.1.content.0.signature: Field required'],
    ])('refuses %j with invalid_request_error', async (patch, message) => {
      const response = await messages(patch);
      expect(response.status).toBe(400);
      const error = errorOf(response.json());
      expect(error.type).toBe('invalid_request_error');
      expect(error.message).toContain(message);
    });

    it('accepts the sampling parameters thinking allows', async () => {
      for (const patch of [{ temperature: 1 }, { top_p: 0.95 }, { tools, tool_choice: { type: 'auto' } }, { tools, tool_choice: { type: 'none' } }]) {
        expect((await messages({ thinking: enabled, max_tokens: 2048, ...patch })).status).toBe(200);
      }
    });

    it('thinks before the answer, signs the thinking and bills its tokens as output', async () => {
      const body = (await messages({ thinking: enabled, max_tokens: 2048 })).json();
      const [thinking, text] = body['content'] as [{ type: string; thinking: string; signature: string }, { type: string; text: string }];
      expect(thinking).toEqual({ type: 'thinking', thinking: expect.stringMatching(/\S/), signature: anthropicThinkingSignature(thinking.thinking) });
      expect(text).toEqual({ type: 'text', text: expect.stringMatching(/\S/) });
      expect(text.text).not.toBe(thinking.thinking);
      expect(body).toMatchObject({ stop_reason: 'end_turn', usage: { output_tokens: 24 + 16 } });

      const withoutThinking = (await messages()).json();
      expect((withoutThinking['content'] as { text: string }[])[0]?.text).toBe(text.text);
    });

    it('streams thinking_delta pieces and a signature_delta at index 0, then the answer at index 1', async () => {
      const plain = (await messages({ thinking: enabled, max_tokens: 2048 })).json();
      const [thinking, text] = plain['content'] as [{ thinking: string; signature: string }, { text: string }];
      const sequence = events((await messages({ thinking: enabled, max_tokens: 2048, stream: true })).text);
      const names = sequence.map((e) => e.event);
      expect(names).toEqual([
        'message_start',
        'content_block_start',
        'ping',
        ...Array<string>(24).fill('content_block_delta'),
        'content_block_delta',
        'content_block_stop',
        'content_block_start',
        ...Array<string>(16).fill('content_block_delta'),
        'content_block_stop',
        'message_delta',
        'message_stop',
      ]);
      expect(sequence[1]?.data).toEqual({ type: 'content_block_start', index: 0, content_block: { type: 'thinking', thinking: '', signature: '' } });
      const thinkingDeltas = deltas(sequence, 0);
      expect(thinkingDeltas.slice(0, -1).every((d) => d.type === 'thinking_delta')).toBe(true);
      expect(thinkingDeltas.slice(0, -1).map((d) => d['thinking']).join('')).toBe(thinking.thinking);
      expect(thinkingDeltas[thinkingDeltas.length - 1]).toEqual({ type: 'signature_delta', signature: thinking.signature });
      expect(sequence[28]?.data).toEqual({ type: 'content_block_stop', index: 0 });
      expect(sequence[29]?.data).toEqual({ type: 'content_block_start', index: 1, content_block: { type: 'text', text: '' } });
      expect(deltas(sequence, 1).map((d) => d['text']).join('')).toBe(text.text);
      expect(sequence[sequence.length - 3]?.data).toEqual({ type: 'content_block_stop', index: 1 });
      expect(sequence[sequence.length - 2]?.data).toEqual({ type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 40 } });
    });

    it('thinks in adaptive mode unless effort is low', async () => {
      const thought = (await messages({ thinking: adaptive, output_config: { effort: 'high' } })).json();
      expect((thought['content'] as { type: string }[]).map((b) => b.type)).toEqual(['thinking', 'text']);
      expect(thought['usage']).toMatchObject({ output_tokens: 40 });
      const quick = (await messages({ thinking: adaptive, output_config: { effort: 'low' } })).json();
      expect(quick['content']).toEqual([{ type: 'text', text: expect.any(String) }]);
      expect(quick['usage']).toMatchObject({ output_tokens: 16 });
    });

    it('counts thinking against max_tokens, stopping the answer at the limit', async () => {
      const budgeted = (await messages({ thinking: enabled, max_tokens: 1030 })).json();
      expect(budgeted).toMatchObject({ stop_reason: 'end_turn', usage: { output_tokens: 40 } });
      const tight = (await messages({ thinking: adaptive, max_tokens: 30 })).json();
      expect(tight).toMatchObject({ stop_reason: 'max_tokens', usage: { output_tokens: 30 } });
      expect((tight['content'] as { type: string }[]).map((b) => b.type)).toEqual(['thinking', 'text']);
      const tiny = (await messages({ thinking: adaptive, max_tokens: 5 })).json();
      expect(tiny).toMatchObject({ stop_reason: 'max_tokens', usage: { output_tokens: 5 } });
      const sequence = events((await messages({ thinking: adaptive, max_tokens: 5, stream: true })).text);
      expect(deltas(sequence, 0).filter((d) => d.type === 'thinking_delta')).toHaveLength(4);
      expect(deltas(sequence, 1)).toHaveLength(1);
    });

    it('leaves the thinking text out with display omitted, still signed and billed', async () => {
      const body = (await messages({ thinking: { type: 'adaptive', display: 'omitted' } })).json();
      expect((body['content'] as unknown[])[0]).toEqual({ type: 'thinking', thinking: '', signature: anthropicThinkingSignature('') });
      expect(body['usage']).toMatchObject({ output_tokens: 40 });
      const sequence = events((await messages({ thinking: { type: 'adaptive', display: 'omitted' }, stream: true })).text);
      expect(deltas(sequence, 0)).toEqual([{ type: 'signature_delta', signature: anthropicThinkingSignature('') }]);
    });

    it('requires the thinking block before the last tool_use when the budget is fixed, not in adaptive mode', async () => {
      const withThinking = await messages({ thinking: enabled, max_tokens: 2048, tools, messages: toolLoop([signed('I should look Oslo up.')]) });
      expect(withThinking.status).toBe(200);
      expect(withThinking.json()).toMatchObject({ stop_reason: 'end_turn', content: [{ type: 'thinking' }, { type: 'text', text: expect.stringMatching(/^Tool result received\./) }] });
      const redacted = await messages({ thinking: enabled, max_tokens: 2048, tools, messages: toolLoop([{ type: 'redacted_thinking', data: 'EmwKAhgBEgy3va3pzix/LafPsn4aDFIT' }]) });
      expect(redacted.status).toBe(200);

      const without = await messages({ thinking: enabled, max_tokens: 2048, tools, messages: toolLoop([{ type: 'text', text: 'Looking it up.' }]) });
      expect(without.status).toBe(400);
      expect(errorOf(without.json())).toEqual({
        type: 'invalid_request_error',
        message:
          'messages.1.content.0.type: Expected `thinking` or `redacted_thinking`, but found `text`. When `thinking` is enabled, a final `assistant` message must start with a thinking block (preceeding the lastmost set of `tool_use` and `tool_result` blocks). ' +
          `We recommend you include thinking blocks from previous turns. To avoid this requirement, disable \`thinking\`. Please consult our documentation at ${DOCS}`,
      });
      const bare = await messages({ thinking: enabled, max_tokens: 2048, tools, messages: toolLoop([]) });
      expect(errorOf(bare.json()).message).toContain('but found `tool_use`');

      expect((await messages({ thinking: adaptive, tools, messages: toolLoop([]) })).status).toBe(200);
      expect((await messages({ tools, messages: toolLoop([]) })).status).toBe(200);
    });

    it('refuses a final assistant message (a prefill) that does not start with a thinking block, with a budget or adaptive', async () => {
      const prefill = (opening: unknown[]) => [
        { role: 'user', content: 'Name a colour.' },
        { role: 'assistant', content: [...opening, { type: 'text', text: 'Sure, here is' }] },
      ];
      for (const thinking of [{ thinking: enabled, max_tokens: 2048 }, { thinking: adaptive }]) {
        const refused = await messages({ ...thinking, messages: prefill([]) });
        expect(refused.status).toBe(400);
        expect(errorOf(refused.json()).message).toContain('messages.1.content.0.type: Expected `thinking` or `redacted_thinking`, but found `text`.');
        expect((await messages({ ...thinking, messages: prefill([signed('A colour.')]) })).status).toBe(200);
      }
      expect((await messages({ messages: prefill([]) })).status).toBe(200);
    });

    it('asks thinking of the assistant message that opened a tool loop, not of its later steps', async () => {
      const later = [
        ...toolLoop([signed('Oslo first, then Rome.')]),
        { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_2', name: 'lookup', input: {} }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_2', content: 'Rome: 22°C' }] },
      ];
      expect((await messages({ thinking: enabled, max_tokens: 2048, tools, messages: later })).status).toBe(200);
      const unopened = [...toolLoop([]), ...later.slice(3)];
      const refused = await messages({ thinking: enabled, max_tokens: 2048, tools, messages: unopened });
      expect(errorOf(refused.json()).message).toContain('messages.1.content.0.type: Expected `thinking`');
    });

    it('takes back its own thinking blocks unchanged and refuses a tampered signature', async () => {
      const answer = (await messages({ thinking: enabled, max_tokens: 2048 })).json();
      const [thinking] = answer['content'] as [{ type: string; thinking: string; signature: string }];
      const history = (block: unknown) => [
        { role: 'user', content: 'Hello there' },
        { role: 'assistant', content: [block, { type: 'text', text: 'Hi.' }] },
        { role: 'user', content: 'And now?' },
      ];
      expect((await messages({ thinking: enabled, max_tokens: 2048, messages: history(thinking) })).status).toBe(200);

      for (const tampered of [{ ...thinking, thinking: `${thinking.thinking} Also.` }, { ...thinking, signature: anthropicThinkingSignature('something else') }, { ...thinking, signature: '' }]) {
        const response = await messages({ thinking: enabled, max_tokens: 2048, messages: history(tampered) });
        expect(response.status).toBe(400);
        expect(errorOf(response.json())).toEqual({ type: 'invalid_request_error', message: 'messages.1.content.0: Invalid `signature` in `thinking` block' });
      }
    });

    it('redacts the thinking when the prompt holds the magic string', async () => {
      const prompt = [{ role: 'user', content: `Think about this. ${ANTHROPIC_REDACTED_THINKING_TRIGGER}` }];
      const body = (await messages({ thinking: enabled, max_tokens: 2048, messages: prompt })).json();
      const [redacted, text] = body['content'] as [{ type: string; data: string }, { type: string }];
      expect(redacted).toEqual({ type: 'redacted_thinking', data: expect.stringMatching(/^[A-Za-z0-9+/]{40,}={0,2}$/) });
      expect(text.type).toBe('text');
      expect(body['usage']).toMatchObject({ output_tokens: 40 });

      const sequence = events((await messages({ thinking: enabled, max_tokens: 2048, messages: prompt, stream: true })).text);
      expect(sequence.slice(1, 5).map((e) => e.data)).toEqual([
        { type: 'content_block_start', index: 0, content_block: { type: 'redacted_thinking', data: redacted.data } },
        { type: 'ping' },
        { type: 'content_block_stop', index: 0 },
        { type: 'content_block_start', index: 1, content_block: { type: 'text', text: '' } },
      ]);
      expect(deltas(sequence, 0)).toEqual([]);
    });

    it('answers exactly as without thinking when thinking is disabled', async () => {
      const absent = (await messages()).json();
      const disabled = (await messages({ thinking: { type: 'disabled' } })).json();
      expect({ ...disabled, id: '' }).toEqual({ ...absent, id: '' });
      expect(absent['content']).toEqual([{ type: 'text', text: expect.any(String) }]);
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

    it('fails a stream with an error event after the given number of tokens, and answers a non-stream request with the HTTP error', async () => {
      sim.configure({ faults: [{ kind: 'http_error', status: 529, afterTokens: 2 }] });
      const streamed = await messages({ stream: true });
      expect(streamed.status).toBe(200);
      const list = events(streamed.text);
      expect(list.filter((e) => e.event === 'content_block_delta')).toHaveLength(2);
      expect(list.at(-1)).toEqual({ event: 'error', data: { type: 'error', error: { type: 'overloaded_error', message: 'Overloaded' } } });
      expect(list.some((e) => e.event === 'message_delta' || e.event === 'message_stop')).toBe(false);
      const whole = await messages();
      expect(whole.status).toBe(529);
      expect(errorOf(whole.json()).type).toBe('overloaded_error');
    });

    it('counts thinking_delta pieces as tokens when dropping a stream with thinking', async () => {
      const receive = async (afterTokens: number): Promise<string> => {
        sim.configure({ faults: [{ kind: 'drop_mid_stream', afterTokens, remaining: 1 }] });
        let text = '';
        try {
          const response = await request(`${sim.url}/v1/messages`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', ...HEADERS },
            body: JSON.stringify({ model: 'claude-sonnet-4-5', max_tokens: 2048, stream: true, thinking: { type: 'enabled', budget_tokens: 1024 }, messages: [{ role: 'user', content: 'Hi' }] }),
          });
          for await (const piece of response.body) text += (piece as Buffer).toString('utf8');
        } catch {
          // The socket is destroyed mid-body; what arrived before is what counts.
        }
        return text;
      };
      const early = await receive(2);
      expect(early.match(/"thinking_delta"/g)).toHaveLength(2);
      expect(early).not.toContain('signature_delta');
      const late = await receive(25);
      expect(late.match(/"thinking_delta"/g)).toHaveLength(24);
      expect(late).toContain('signature_delta');
      expect(late.match(/"text_delta"/g)).toHaveLength(1);
      expect(late).not.toContain('message_stop');
    });
  });
});
