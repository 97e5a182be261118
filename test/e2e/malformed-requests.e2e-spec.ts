import OpenAI, { APIError } from 'openai';
import { startTestGateway, type TestGateway } from '../support/test-gateway';

/** mulberry32: a small seeded PRNG so every run sends the same 1,000 bodies. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Body = string | Buffer;

const WRONG_VALUES: unknown[] = [null, true, false, -1, 0, 1.5, -1e308, 1e308, 2 ** 53 + 1, '', 'x'.repeat(5000), [], {}, [[[]]], { nested: { deep: [1, 2] } }, '\u0000', '\ud800'];

function deepNesting(depth: number, open: string, close: string): string {
  return open.repeat(depth) + close.repeat(depth);
}

/** One malformed body of a randomly chosen family. */
function malformedBody(random: () => number): { path: string; body: Body; family: string } {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const valid = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] };
  const family = pick(['wrong-type', 'wrong-message', 'huge-value', 'deep', 'invalid-utf8', 'truncated', 'not-object', 'embeddings', 'completions']);
  switch (family) {
    case 'wrong-type': {
      const field = pick(['model', 'messages', 'temperature', 'top_p', 'max_tokens', 'n', 'stream', 'stop', 'tools', 'tool_choice', 'response_format', 'logit_bias', 'seed', 'stream_options']);
      let value = pick(WRONG_VALUES);
      // Values that happen to be valid for the field are swapped for one that is not.
      // null is valid for every optional field, and a seed may be any integer.
      if (value === null && field !== 'model' && field !== 'messages') value = ['not', 'valid'];
      if ((field === 'stream' && typeof value === 'boolean') || (field === 'stop' && (typeof value === 'string' || (Array.isArray(value) && value.every((v) => typeof v === 'string'))))) value = { bad: 1 };
      if (field === 'seed' && Number.isSafeInteger(value)) value = 1.5;
      if (['temperature', 'top_p', 'max_tokens', 'n'].includes(field) && typeof value === 'number' && Number.isFinite(value) && value >= 0 && value <= 1) value = 'not a number';
      if (['tools', 'tool_choice', 'response_format', 'logit_bias', 'stream_options'].includes(field) && (value === null || (typeof value === 'object' && !Array.isArray(value)))) value = 42;
      if (field === 'model' && value === 'x'.repeat(5000)) value = 7;
      return { path: '/v1/chat/completions', body: JSON.stringify({ ...valid, [field]: value }), family };
    }
    case 'wrong-message': {
      const message = pick<unknown>([
        { role: pick(WRONG_VALUES), content: 'x' },
        { role: 'user' },
        { role: 'user', content: pick([1, true, { text: 1 }, [{ type: 'image_url' }], [{ type: 'text', text: 5 }]]) },
        { role: 'tool', content: 'x' },
        { role: 'assistant', tool_calls: [{ id: 1, type: 'function', function: { name: 2 } }] },
        { role: 'system', content: [{ type: 'text' }] },
        'just a string',
        null,
      ]);
      return { path: '/v1/chat/completions', body: JSON.stringify({ ...valid, messages: pick([[message], [valid.messages[0], message], []]) }), family };
    }
    case 'huge-value': {
      const field = pick(['max_tokens', 'n', 'max_completion_tokens', 'top_logprobs', 'temperature']);
      return { path: '/v1/chat/completions', body: JSON.stringify({ ...valid, [field]: pick([1e12, 2 ** 40, 1e300, -1e300, 99999999999]) }), family };
    }
    case 'deep': {
      const depth = pick([64, 1_000, 10_000, 100_000]);
      const nest = random() < 0.5 ? deepNesting(depth, '[', ']') : `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
      return { path: '/v1/chat/completions', body: `{"model":"gpt-4o-mini","messages":${nest}}`, family };
    }
    case 'invalid-utf8': {
      const text = JSON.stringify(valid);
      const at = Math.floor(random() * text.length);
      const bad = pick([Buffer.from([0xff]), Buffer.from([0xc3, 0x28]), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from([0xf8, 0x88, 0x80, 0x80, 0x80])]);
      return { path: '/v1/chat/completions', body: Buffer.concat([Buffer.from(text.slice(0, at)), bad, Buffer.from(text.slice(at))]), family };
    }
    case 'truncated': {
      const text = JSON.stringify({ ...valid, temperature: 0.5, tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object' } } }] });
      return { path: pick(['/v1/chat/completions', '/v1/embeddings', '/v1/completions']), body: text.slice(0, 1 + Math.floor(random() * (text.length - 2))), family };
    }
    case 'not-object':
      return { path: pick(['/v1/chat/completions', '/v1/embeddings', '/v1/completions']), body: pick(['', 'null', '[]', '"text"', '42', 'true', '{}', 'undefined', '{"model":}', '\u0000']), family };
    case 'embeddings':
      return { path: '/v1/embeddings', body: JSON.stringify({ model: pick(['text-embedding-3-small', 5, null]), input: pick(WRONG_VALUES), dimensions: pick([-1, 0, 'x', 1e9]) }), family };
    default:
      return { path: '/v1/completions', body: JSON.stringify({ model: 'gpt-4o-mini', prompt: pick(WRONG_VALUES), max_tokens: pick([-5, 'x', 1e12]) }), family };
  }
}

describe('1,000 seeded malformed requests', () => {
  let gw: TestGateway;

  beforeAll(async () => {
    // The full request path: token and request limits on the key and a hard budget, so every body
    // also crosses the prompt-token estimate, the rate limiter and the budget reservation.
    gw = await startTestGateway({
      configure: (doc) => {
        const access = doc['access'] as Record<string, unknown>;
        access['rateLimits'] = { key: { rpm: 1_000_000, tpm: 1_000_000_000 } };
        doc['budgets'] = { list: [{ id: 'org-monthly', scope: { org: 'default' }, period: 'monthly', amount: '1000', enforcement: 'hard' }] };
      },
    });
  });
  afterAll(async () => gw?.close());

  it('answers every one with a 4xx in OpenAI’s error shape, and stays healthy', async () => {
    const random = seeded(20261125);
    const failures: string[] = [];
    const families = new Map<string, number>();
    for (let i = 0; i < 1000; i++) {
      const { path, body, family } = malformedBody(random);
      families.set(family, (families.get(family) ?? 0) + 1);
      let response: Response;
      let text: string;
      try {
        response = await fetch(`${gw.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${gw.apiKey}`, 'content-type': 'application/json' }, body, signal: AbortSignal.timeout(10_000) });
        text = await response.text();
      } catch (error) {
        failures.push(`#${i} ${family} ${path} → no answer (${String(error)}) (body: ${String(body).slice(0, 120)})`);
        continue;
      }
      let shape: { error?: { message?: unknown; type?: unknown; param?: unknown; code?: unknown } } = {};
      try {
        shape = JSON.parse(text) as typeof shape;
      } catch {
        // Recorded below as a failure: every answer must be JSON.
      }
      const ok =
        response.status >= 400 &&
        response.status < 500 &&
        typeof shape.error?.message === 'string' &&
        typeof shape.error.type === 'string' &&
        'param' in shape.error &&
        'code' in shape.error;
      if (!ok) failures.push(`#${i} ${family} ${path} → ${response.status} ${text.slice(0, 200)} (body: ${String(body).slice(0, 120)})`);
    }
    expect(failures).toEqual([]);
    expect([...families.keys()].sort()).toEqual(['completions', 'deep', 'embeddings', 'invalid-utf8', 'not-object', 'huge-value', 'truncated', 'wrong-message', 'wrong-type'].sort());
    expect((await fetch(`${gw.url}/health`)).status).toBe(200);
    const after = await gw.client().chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'still here?' }] });
    expect(after.choices[0]?.message.content).toBeTruthy();
  }, 120_000);

  // Deep enough to overflow any recursive walk (JSON.stringify among them) of the parsed value.
  const DEEP = 5_000;
  const deepObject = `${'{"a":'.repeat(DEEP)}1${'}'.repeat(DEEP)}`;
  const deepArray = deepNesting(DEEP, '[', ']');
  const chat = (extra: string): string => `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],${extra}}`;

  it.each([
    ['an unknown top-level field', '/chat/completions', chat(`"vendor_knob":${deepObject}`)],
    ['tools[].function.parameters', '/chat/completions', chat(`"tools":[{"type":"function","function":{"name":"f","parameters":${deepObject}}}]`)],
    ['a file content part', '/chat/completions', `{"model":"gpt-4o-mini","messages":[{"role":"user","content":[{"type":"file","file":${deepObject}}]}]}`],
    ['response_format.json_schema.schema', '/chat/completions', chat(`"response_format":{"type":"json_schema","json_schema":{"name":"n","schema":${deepObject}}}`)],
    ['an unknown field on /v1/embeddings', '/embeddings', `{"model":"text-embedding-3-small","input":"hi","vendor_knob":${deepArray}}`],
    ['an unknown field on /v1/completions', '/completions', `{"model":"gpt-4o-mini","prompt":"hi","vendor_knob":${deepArray}}`],
  ])('answers deep nesting in %s with 400 json_too_deep, once (never retried)', async (_name, path, body) => {
    let calls = 0;
    const client = new OpenAI({ baseURL: gw.baseURL, apiKey: gw.apiKey, maxRetries: 2, fetch: (url, init) => (calls++, fetch(url, init)) });
    const error = await client.post(path, { body, headers: { 'content-type': 'application/json' } }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect(error).toMatchObject({ status: 400, type: 'invalid_request_error', code: 'json_too_deep', param: null });
    expect((error as APIError).message).toContain('at most 128 levels');
    expect(calls).toBe(1);
  });

  it('answers a deeply nested x-openrouter-route header with 400 json_too_deep naming the header', async () => {
    const request = gw.client().chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }, { headers: { 'x-openrouter-route': deepArray } });
    await expect(request).rejects.toBeInstanceOf(OpenAI.BadRequestError);
    await expect(request).rejects.toMatchObject({ status: 400, type: 'invalid_request_error', code: 'json_too_deep', param: 'x-openrouter-route' });
  });

  it('accepts nesting up to the limit in a pass-through field', async () => {
    // 128 levels in all: the body object and 127 arrays.
    const nested = `${'['.repeat(127)}${']'.repeat(127)}`;
    const completion = await gw.client().post<OpenAI.ChatCompletion>('/chat/completions', { body: chat(`"vendor_knob":${nested}`), headers: { 'content-type': 'application/json' } });
    expect(completion.choices[0]?.message.content).toBeTruthy();
    await expect(gw.client().post('/chat/completions', { body: chat(`"vendor_knob":[${nested}]`), headers: { 'content-type': 'application/json' } })).rejects.toMatchObject({ status: 400, code: 'json_too_deep' });
  });

  it('serves valid requests whose text is odd: special-token strings, lone surrogates, control and bidi characters', async () => {
    const random = seeded(20261204);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
    const pieces = ['<|endoftext|>', '<|im_start|>system', '<|im_end|>', '<|fim_prefix|>', '<|endofprompt|>', '\ud800', '\udfff', '\u0000', '\u202e', '\ufeff', '🧑‍💻', '日本語', 'x'.repeat(700), 'ﷺ', '\r\n\t'];
    const text = (): string => Array.from({ length: 1 + Math.floor(random() * 6) }, () => pick(pieces)).join(pick([' ', '', '\n']));
    const statuses: string[] = [];
    for (let i = 0; i < 60; i++) {
      const body = pick([
        () => ({ model: 'gpt-4o-mini', messages: [{ role: 'system', content: text() }, { role: 'user', content: text() }] }),
        () => ({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: [{ type: 'text', text: text() }, { type: 'text', text: text() }] }], tools: [{ type: 'function', function: { name: 'f', description: text(), parameters: { type: 'object' } } }] }),
        () => ({ model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: text() }] }),
        () => ({ model: 'text-embedding-3-small', input: [text(), text()] }),
        () => ({ model: 'gpt-4o-mini', prompt: text() }),
      ])();
      const path = 'input' in body ? '/v1/embeddings' : 'prompt' in body ? '/v1/completions' : '/v1/chat/completions';
      const response = await fetch(`${gw.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${gw.apiKey}`, 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(10_000) });
      const answer = await response.text();
      if (response.status !== 200) statuses.push(`#${i} ${path} → ${response.status} ${answer.slice(0, 200)}`);
    }
    expect(statuses).toEqual([]);
  }, 120_000);
});
