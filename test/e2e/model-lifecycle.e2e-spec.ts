import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import WebSocket from 'ws';
import { startTestGateway, type TestGateway } from '../support/test-gateway';

/**
 * Deprecated and retired models through the whole gateway, with the official SDK: the answer
 * headers of a deprecated model, a retired one served by its replacement, a retired one with none
 * refused as OpenAI refuses an unknown model, and what `/v1/models` lists. Dates lie in the past
 * or the future relative to now, so no clock is moved.
 */
const DAY = 86_400_000;
const iso = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
const now = Date.now();
const DEPRECATED_AT = iso(now - DAY);
const RETIRES_AT = iso(now + 365 * DAY);
// Yesterday at a time of day that is not midnight (a retirement at midnight is shown as a date alone).
const RETIRED_AT = `${iso(now - DAY).slice(0, 10)}T12:34:56Z`;
const unix = (at: string): number => Math.floor(Date.parse(at) / 1000);

describe('model lifecycle through the gateway', () => {
  let gw: TestGateway;
  let client: OpenAI;

  beforeAll(async () => {
    gw = await startTestGateway({
      configure: (doc) => {
        const models = doc['models'] as Array<Record<string, unknown>>;
        const sim = (id: string, extra: Record<string, unknown> = {}) => ({ id, deployments: [{ id: `${id}-sim`, provider: 'simulated', model: `${id}-upstream` }], ...extra });
        models.push(
          sim('legacy-chat', { lifecycle: { deprecatedAt: DEPRECATED_AT, retiresAt: RETIRES_AT, replacement: 'gpt-4o-mini' } }),
          sim('sunset-chat', { lifecycle: { deprecatedAt: iso(now - 30 * DAY), retiresAt: RETIRED_AT, replacement: 'gpt-4o-mini' } }),
          sim('gone-chat', { lifecycle: { retiresAt: RETIRED_AT } }),
          sim('legacy-embed', { capabilities: ['embeddings'], lifecycle: { deprecatedAt: DEPRECATED_AT, retiresAt: RETIRES_AT, replacement: 'text-embedding-3-small' } }),
        );
        doc['routing'] = { ...(doc['routing'] as Record<string, unknown>), aliases: { legacy: { models: ['gone-chat', 'gpt-4o-mini'] } } };
        // On for requests that ask for it (x-openrouter-cache: use).
        doc['cache'] = { enabled: true };
      },
    });
    client = gw.client();
  });
  afterAll(async () => gw?.close());

  const ask = (model: string) => client.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }] }).withResponse();

  it('serves a deprecated model as before, with Deprecation, Sunset and replacement headers', async () => {
    const { data, response } = await ask('legacy-chat');
    expect(data.model).toBe('legacy-chat');
    expect(response.headers.get('x-openrouter-model')).toBe('legacy-chat');
    expect(response.headers.get('deprecation')).toBe(`@${unix(DEPRECATED_AT)}`);
    expect(response.headers.get('sunset')).toBe(new Date(RETIRES_AT).toUTCString());
    expect(response.headers.get('x-openrouter-model-replacement')).toBe('gpt-4o-mini');
    expect(response.headers.get('x-openrouter-model-replaced')).toBeNull();
    // A model with no lifecycle gets none of them.
    const plain = await ask('gpt-4o-mini');
    expect(['deprecation', 'sunset', 'x-openrouter-model-replacement'].map((h) => plain.response.headers.get(h))).toEqual([null, null, null]);
  });

  it('leaves a deprecated or retired model\'s requests uncached, so each carries its headers and a retired one reaches the replacement', async () => {
    const cached = (model: string) => client.chat.completions.create({ model, messages: [{ role: 'user', content: 'cache me' }] }, { headers: { 'x-openrouter-cache': 'use' } }).withResponse();
    for (let i = 0; i < 2; i++) {
      const { response } = await cached('legacy-chat');
      expect(response.headers.get('x-openrouter-cache')).toBe('bypass');
      expect(response.headers.get('deprecation')).toBe(`@${unix(DEPRECATED_AT)}`);
    }
    const replaced = await cached('sunset-chat');
    expect(replaced.response.headers.get('x-openrouter-cache')).toBe('bypass');
    expect(replaced.response.headers.get('x-openrouter-model-replaced')).toBe('sunset-chat');
    // A model with no lifecycle is cached as any other.
    await cached('gpt-4o-mini');
    expect((await cached('gpt-4o-mini')).response.headers.get('x-openrouter-cache')).toBe('hit');
  });

  it('carries the headers on a stream and on embeddings', async () => {
    const stream = await client.chat.completions.create({ model: 'legacy-chat', stream: true, messages: [{ role: 'user', content: 'hi' }] }).withResponse();
    let text = '';
    for await (const chunk of stream.data) text += chunk.choices[0]?.delta.content ?? '';
    expect(text.length).toBeGreaterThan(0);
    expect(stream.response.headers.get('deprecation')).toBe(`@${unix(DEPRECATED_AT)}`);
    const embedded = await client.embeddings.create({ model: 'legacy-embed', input: 'hello' }).withResponse();
    expect(embedded.data.data).toHaveLength(1);
    expect(embedded.response.headers.get('sunset')).toBe(new Date(RETIRES_AT).toUTCString());
    expect(embedded.response.headers.get('x-openrouter-model-replacement')).toBe('text-embedding-3-small');
  });

  it('sends a retired model to its replacement, saying so', async () => {
    const { data, response } = await ask('sunset-chat');
    expect(data.choices[0]?.message.content).toEqual(expect.any(String));
    expect(response.headers.get('x-openrouter-model')).toBe('gpt-4o-mini');
    expect(response.headers.get('x-openrouter-model-replaced')).toBe('sunset-chat');
    expect(response.headers.get('x-openrouter-model-replacement')).toBe('gpt-4o-mini');
    expect(response.headers.get('sunset')).toBe(new Date(RETIRED_AT).toUTCString());
    expect(response.headers.get('x-openrouter-route-reason')).toContain('replacement for retired sunset-chat');
  });

  it('refuses a retired model with no replacement as not found, naming its retirement', async () => {
    const error = await ask('gone-chat').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(OpenAI.NotFoundError);
    expect(error).toMatchObject({ status: 404, code: 'model_not_found', param: 'model' });
    expect((error as Error).message).toContain(`The model \`gone-chat\` was retired on ${RETIRED_AT}; name another model.`);
    // An alias naming it goes on with its other models.
    const alias = await ask('legacy');
    expect(alias.response.headers.get('x-openrouter-model')).toBe('gpt-4o-mini');
  });

  it('counts the tokens of a request naming a retired model its replacement serves, as it would serve it; not one nothing replaces', async () => {
    const anthropic = new Anthropic({ apiKey: gw.apiKey, baseURL: gw.url, maxRetries: 0 });
    const counted = await anthropic.messages.countTokens({ model: 'sunset-chat', messages: [{ role: 'user', content: 'how many tokens is this?' }] });
    expect(counted.input_tokens).toBeGreaterThan(0);
    await expect(anthropic.messages.countTokens({ model: 'gone-chat', messages: [{ role: 'user', content: 'hi' }] })).rejects.toMatchObject({ status: 404 });
    const inputTokens = await client.post<{ input_tokens: number }>('/responses/input_tokens', { body: { model: 'sunset-chat', input: 'how many tokens is this?' } });
    expect(inputTokens.input_tokens).toBeGreaterThan(0);
    await expect(client.post('/responses/input_tokens', { body: { model: 'gone-chat', input: 'hi' } })).rejects.toBeInstanceOf(OpenAI.NotFoundError);
  });

  it('lists a deprecated model with its dates and replacement, and no retired model', async () => {
    const listed = new Map<string, Record<string, unknown>>();
    for await (const model of client.models.list()) listed.set(model.id, model as unknown as Record<string, unknown>);
    expect(listed.get('legacy-chat')).toMatchObject({ deprecated_at: unix(DEPRECATED_AT), retires_at: unix(RETIRES_AT), replacement: 'gpt-4o-mini' });
    expect(listed.get('gpt-4o-mini')).not.toHaveProperty('deprecated_at');
    expect(listed.has('sunset-chat')).toBe(false);
    expect(listed.has('gone-chat')).toBe(false);
    expect(await client.models.retrieve('legacy-chat')).toMatchObject({ id: 'legacy-chat', replacement: 'gpt-4o-mini' });
    await expect(client.models.retrieve('gone-chat')).rejects.toBeInstanceOf(OpenAI.NotFoundError);
  });

  it('carries the headers in WebSocket frames', async () => {
    const socket = new WebSocket(`${gw.url.replace('http', 'ws')}/v1/ws`, ['openrouter.v1'], { headers: { authorization: `Bearer ${gw.apiKey}` } });
    const frame = new Promise<{ type: string; headers?: Record<string, string> }>((resolve, reject) => {
      socket.on('message', (data) => {
        const parsed = JSON.parse(data.toString()) as { type: string; id: string | null; headers?: Record<string, string> };
        if (parsed.id === 'w' && parsed.type !== 'start') resolve(parsed);
      });
      socket.once('error', reject);
    });
    await new Promise((resolve, reject) => {
      socket.once('open', resolve);
      socket.once('error', reject);
    });
    try {
      socket.send(JSON.stringify({ type: 'chat.completions', id: 'w', body: { model: 'sunset-chat', messages: [{ role: 'user', content: 'hi' }] } }));
      const answer = await frame;
      expect(answer.type).toBe('completion');
      expect(answer.headers).toMatchObject({ 'x-openrouter-model': 'gpt-4o-mini', 'x-openrouter-model-replaced': 'sunset-chat', 'x-openrouter-model-replacement': 'gpt-4o-mini' });
    } finally {
      socket.close();
    }
  });
});
