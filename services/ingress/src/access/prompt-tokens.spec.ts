import { encode } from 'gpt-tokenizer';
import { markFormBody } from '@openrouter/openai-wire';
import { DENSE_CHARS_PER_TOKEN, estimatedTokens } from '@openrouter/usage';
import { AUDIO_BASE64_CHARS_PER_TOKEN, countPromptTokens, countTextTokens, DEFAULT_IMAGE_TOKENS, EXACT_BYTES, exactTokens, FILE_BASE64_CHARS_PER_TOKEN, SLICE_CHARS, TextTokenCounter } from './prompt-tokens';

/** Bytes from a seeded generator, so a failing run can be repeated. */
function seededBytes(length: number, seed: number): Buffer {
  let s = seed >>> 0;
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i++) {
    s = (s * 1_664_525 + 1_013_904_223) >>> 0;
    out[i] = s >>> 24;
  }
  return out;
}

/** What the tokenizer counts for a text (special tokens as plain text, as a prompt has them). */
const real = (text: string): number => encode(text, { disallowedSpecial: new Set() }).length;

describe('prompt token estimate', () => {
  it('counts message text, parts, images, tools, legacy prompts and embedding inputs', () => {
    expect(countPromptTokens({ messages: [{ role: 'user', content: 'hello world' }] })).toBe(4 + 2);
    expect(countPromptTokens({ messages: [{ role: 'user', content: [{ type: 'text', text: 'hello' }, { type: 'image_url', image_url: { url: 'x' } }] }] })).toBe(4 + 1 + DEFAULT_IMAGE_TOKENS);
    expect(countPromptTokens({ prompt: ['hello', 'world'] })).toBe(2);
    expect(countPromptTokens({ input: [[1, 2, 3]] })).toBe(3);
    expect(countPromptTokens({ messages: [], tools: [{ type: 'function' }] })).toBeGreaterThan(0);
    expect(countPromptTokens('not a body')).toBe(0);
    // Quoted special tokens are text: the tokenizer's default would throw on them.
    expect(countPromptTokens({ messages: [{ role: 'user', content: 'what is <|endoftext|>?' }] })).toBeGreaterThan(4 + 3);
    expect(countPromptTokens({ input: `${'<|im_start|> '.repeat(100)}` })).toBeGreaterThan(100);
  });

  it('counts what earlier turns carry besides content: tool calls, legacy function calls, names and refusals', () => {
    const args = '{"city":"Paris","days":3}';
    const n = (text: string): number => encode(text).length;
    const call = { id: 'c1', type: 'function', function: { name: 'forecast', arguments: args } };
    expect(countPromptTokens({ messages: [{ role: 'assistant', content: null, tool_calls: [call, call] }] })).toBe(4 + 2 * (n('forecast') + n(args)));
    expect(countPromptTokens({ messages: [{ role: 'assistant', content: null, function_call: { name: 'forecast', arguments: args } }] })).toBe(4 + n('forecast') + n(args));
    expect(countPromptTokens({ messages: [{ role: 'user', name: 'alice_smith', content: 'hi' }] })).toBe(4 + n('alice_smith') + n('hi'));
    expect(countPromptTokens({ messages: [{ role: 'assistant', content: null, refusal: 'I cannot help with that.' }] })).toBe(4 + n('I cannot help with that.'));
    expect(countPromptTokens({ messages: [{ role: 'assistant', content: [{ type: 'refusal', refusal: 'No.' }] }] })).toBe(4 + n('No.'));
    // Legacy function definitions, as tools are.
    const functions = [{ name: 'forecast', parameters: { type: 'object', properties: { city: { type: 'string' } } } }];
    expect(countPromptTokens({ messages: [], functions })).toBe(n(JSON.stringify(functions)));
    // Malformed shapes (refused by validation afterwards) count what they can and never throw.
    expect(countPromptTokens({ messages: [{ role: 'assistant', tool_calls: [null, 'x', { function: { arguments: { a: 1 } } }], function_call: 'auto' }] })).toBe(4);
  });

  it('counts a long tool-call argument as it counts the same text as content: exactly within the budget, estimated beyond', () => {
    // The review's case: 166 KB of arguments counted as 17 tokens let 60 requests share a reservation meant for 7.
    const args = JSON.stringify({ rows: Array.from({ length: 3_000 }, (_, i) => ({ id: i, name: `item number ${i}`, value: i * 3.7 })) });
    const asContent = countPromptTokens({ messages: [{ role: 'user', content: 'Summarise.' }, { role: 'assistant', content: args }] });
    const asToolCall = countPromptTokens({
      messages: [
        { role: 'user', content: 'Summarise.' },
        { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'store', arguments: args } }] },
      ],
    });
    expect(asToolCall).toBe(asContent + encode('store').length);
    expect(asToolCall).toBeGreaterThan(40_000);
  });

  it("counts each image part at the model's image cost, a low-detail one at its low cost when it has one", () => {
    const image = (detail?: string) => ({ type: 'image_url', image_url: { url: 'https://example.com/a.png', ...(detail ? { detail } : {}) } });
    const body = { messages: [{ role: 'user', content: [{ type: 'text', text: 'hello' }, image('high'), image(), image('low')] }] };
    // gpt-4o-mini: 2,833 + 8 tiles of 5,667 at most; 2,833 at low detail.
    expect(countPromptTokens(body, { max: 48_169, low: 2_833 })).toBe(4 + 1 + 2 * 48_169 + 2_833);
    // No low cost declared: a low-detail image may cost as much as any other.
    expect(countPromptTokens(body, { max: 1_600 })).toBe(4 + 1 + 3 * 1_600);
    expect(countPromptTokens(body)).toBe(4 + 1 + 3 * DEFAULT_IMAGE_TOKENS);
    // An image anywhere in the conversation counts (here a tool result's).
    expect(countPromptTokens({ messages: [{ role: 'tool', content: [image()] }] }, { max: 10_000 })).toBe(4 + 10_000);
  });

  it('counts audio and file parts by the size of their base64 payload', () => {
    const audio = 'UklGR'.repeat(3_200); // 16,000 base64 characters
    const pdf = 'JVBER'.repeat(2_000); // 10,000 base64 characters
    expect(countPromptTokens({ messages: [{ role: 'user', content: [{ type: 'input_audio', input_audio: { data: audio, format: 'wav' } }] }] })).toBe(4 + 16_000 / AUDIO_BASE64_CHARS_PER_TOKEN);
    expect(countPromptTokens({ messages: [{ role: 'user', content: [{ type: 'file', file: { filename: 'report.pdf', file_data: `data:application/pdf;base64,${pdf}` } }] }] })).toBe(
      4 + Math.ceil((28 + 10_000) / FILE_BASE64_CHARS_PER_TOKEN) + encode('report.pdf').length,
    );
    // A file known by id only has no payload to count.
    expect(countPromptTokens({ messages: [{ role: 'user', content: [{ type: 'file', file: { file_id: 'file-abc' } }] }] })).toBe(4);
  });

  it('never reads the bytes of a multipart form’s uploaded file as text, whatever field carries it', () => {
    const file = { data: new TextEncoder().encode('word '.repeat(100_000)), filename: 'a.mp3', contentType: 'audio/mpeg' };
    // A transcription form: only its prompt hint is text.
    expect(countPromptTokens({ model: 'whisper-1', file, prompt: 'Zyxel' })).toBe(countTextTokens('Zyxel'));
    // Serialised, the file would be counted as a digit string of ten characters a byte.
    expect(countPromptTokens({ model: 'whisper-1', file, tools: file, functions: file.data, prompt: file, input: file })).toBe(0);
  });

  it('counts the images an image edit’s form uploads as image parts, never their bytes as text, and no mask', () => {
    const png = { data: new TextEncoder().encode('word '.repeat(100_000)), filename: 'a.png', contentType: 'image/png' };
    const prompt = 'add a hat';
    expect(countPromptTokens(markFormBody({ model: 'gpt-image-1', image: png, prompt }))).toBe(countTextTokens(prompt) + DEFAULT_IMAGE_TOKENS);
    expect(countPromptTokens(markFormBody({ 'image[]': [png, png, png], mask: png, prompt }), { max: 765 })).toBe(countTextTokens(prompt) + 3 * 765);
    // Only a form carries uploads: the same fields in any other body are no images.
    expect(countPromptTokens({ image: png, prompt })).toBe(countTextTokens(prompt));
  });

  it('counts one plain text as a prompt’s text is counted: exactly within EXACT_BYTES, estimated beyond', () => {
    expect(countTextTokens('hello world')).toBe(2);
    const long = 'The quick brown fox jumps over the lazy dog. '.repeat(1_000);
    expect(countTextTokens(long)).toBe(countPromptTokens({ prompt: long }));
    expect(countTextTokens(long)).not.toBe(real(long));
  });

  it('estimates very long texts at 4 characters a token instead of tokenizing them', () => {
    expect(countPromptTokens({ messages: [{ role: 'user', content: 'a'.repeat(40_000) }] })).toBe(4 + 10_000);
  });

  it('counts long runs in slices, within 1% of the tokenizer for CJK prose', () => {
    const japanese = '今日は天気がとても良いので、公園へ散歩に行きました。桜の花がきれいに咲いていて、多くの人が写真を撮っていました。'.repeat(40);
    const chinese = '我们的季度报告显示收入增长了百分之四，而运营成本保持不变。管理层预计新产品线将在下半年做出重要贡献。'.repeat(40);
    // Measured: 1,720 and 1,240 tokens whole; 1,724 and 1,245 in slices.
    for (const text of [japanese, chinese]) {
      const whole = encode(text).length;
      expect(exactTokens(text)).toBeGreaterThanOrEqual(whole);
      expect(exactTokens(text)).toBeLessThanOrEqual(whole * 1.01);
    }
    expect(encode(japanese).length).toBe(1_720);
    expect(exactTokens(japanese)).toBe(1_724);
    // A slice boundary never splits a surrogate pair (half an emoji would count as stray bytes).
    const emoji = '😀'.repeat(SLICE_CHARS);
    expect(exactTokens(emoji)).toBe(encode(emoji).length);
    // Whitespace runs are sliced too (measured: 136 tokens, 138 whole); text between runs is
    // counted as the tokenizer does.
    const spaced = `intro ${' '.repeat(1_000)}${'x'.repeat(1_000)} outro`;
    expect(encode(spaced).length).toBe(138);
    expect(exactTokens(spaced)).toBe(136);
    expect(exactTokens('plain prose, no long runs.')).toBe(encode('plain prose, no long runs.').length);
  });

  it('tokenizes at most EXACT_BYTES of UTF-8 per request and estimates the rest', () => {
    const cjk = '漢字'.repeat(1_500); // 3,000 characters, 9,000 bytes: over the budget
    expect(Buffer.byteLength(cjk)).toBeGreaterThan(EXACT_BYTES);
    // Estimated at 3 bytes a token, not 4 characters: the tokenizer counts 1,500 for this text,
    // and 5,693 for 3,000 random CJK characters, where 4 characters a token gave 750.
    expect(countPromptTokens({ input: cjk })).toBe(3_000);
    // Within the budget it is tokenized; the next text no longer fits and is estimated.
    const half = '漢字'.repeat(600); // 3,600 bytes
    expect(countPromptTokens({ input: [half, half, half] })).toBe(2 * encode(half).length + 1_200);
    // Longer ASCII fits better: 8,192 characters are tokenized.
    const prose = 'The report shows revenue grew. '.repeat(264).slice(0, EXACT_BYTES);
    expect(countPromptTokens({ input: prose })).toBe(encode(prose).length);
  });

  it('estimates ASCII letters at 4 characters a token, digits and punctuation at 2, anything else at 3 UTF-8 bytes a token', () => {
    expect(estimatedTokens('abcdefgh')).toBe(2);
    expect(estimatedTokens('漢字漢')).toBe(3);
    expect(estimatedTokens('Привет')).toBe(4); // 12 bytes
    expect(estimatedTokens('😀😀😀')).toBe(4); // 12 bytes
    // Against the tokenizer: prose and CJK prose are not under-counted.
    const prose = 'The quarterly report shows that revenue grew by four percent, while operating costs remained flat. '.repeat(20);
    const japanese = '今日は天気がとても良いので、公園へ散歩に行きました。'.repeat(20);
    expect(estimatedTokens(prose)).toBeGreaterThanOrEqual(encode(prose).length);
    expect(estimatedTokens(japanese)).toBeGreaterThanOrEqual(encode(japanese).length);
    // JSON (tool-call arguments) runs at under 3 characters a token: not under-counted either.
    const json = JSON.stringify(Array.from({ length: 300 }, (_, i) => ({ id: i, name: `item-${i}`, price: (i * 1.37).toFixed(2), tags: ['a', 'b'], ok: i % 2 === 0 })));
    expect(estimatedTokens(json)).toBeGreaterThanOrEqual(encode(json).length);
  });

  it('estimates base64, hex and minified data beyond the exact budget at no less than 0.9 of the tokenizer, prose at no more than 1.6', () => {
    // The review's case: 200 KB of base64 in a message was estimated at 58,820 tokens; it had 136,619.
    const base64 = seededBytes(150_000, 1).toString('base64');
    expect(base64.length).toBe(200_000);
    expect(countPromptTokens({ messages: [{ role: 'user', content: base64 }] })).toBeGreaterThanOrEqual(0.9 * real(base64));
    const dense = {
      base64,
      mime: seededBytes(30_000, 2).toString('base64').replace(/(.{76})/g, '$1\n'),
      base64url: seededBytes(30_000, 3).toString('base64url'),
      hex: seededBytes(20_000, 4).toString('hex'),
      uuids: JSON.stringify(Array.from({ length: 1_000 }, (_, i) => seededBytes(16, i).toString('hex').replace(/^(.{8})(.{4})(.{4})(.{4})/, '$1-$2-$3-$4-'))),
      json: JSON.stringify(Array.from({ length: 1_500 }, (_, i) => ({ id: i, name: `item-${i}`, price: (i * 1.37).toFixed(2), tags: ['a', 'b'], ok: i % 2 === 0 }))),
      toolArgs: JSON.stringify({ rows: Array.from({ length: 3_000 }, (_, i) => ({ id: i, name: `item number ${i}`, value: i * 3.7 })) }),
      minifiedJs: 'function(a,b){return a.split("").reverse().join("")+b.map(function(x){return x.id*2})};var q=document.getElementById("app");'.repeat(200),
    };
    /** The samples whose estimate ÷ real falls outside [min, max], with the ratio. */
    const outside = (samples: Record<string, string>, min: number, max: number): string[] =>
      Object.entries(samples).flatMap(([name, text]) => {
        const ratio = estimatedTokens(text) / real(text);
        return ratio < min || ratio > max ? [`${name}: ${ratio.toFixed(2)}`] : [];
      });
    // Words and punctuation (JSON, code) are not taken for random data: no more than 1.3 times over.
    expect(outside(dense, 0.9, 1.3)).toEqual([]);
    // At least one token per 1.5 characters of base64, whatever its length.
    expect(estimatedTokens(base64)).toBeGreaterThanOrEqual(base64.length / 1.5);
    expect(DENSE_CHARS_PER_TOKEN).toBeLessThanOrEqual(1.5);
    const prose = {
      english: 'The quarterly report shows that revenue grew by four percent, while operating costs remained flat. Management expects the new product line to contribute significantly in the second half. '.repeat(200),
      urls: 'See https://example.com/docs/getting-started/installation-guide?lang=en for details, and the changelog at https://github.com/example/project/blob/main/CHANGELOG.md before upgrading. '.repeat(200),
      code: 'function reverse(s) {\n    return s.split("").reverse().join("");\n}\nconst items = data.map((x) => ({ id: x.id, total: x.price * x.quantity }));\n'.repeat(200),
      identifiers: 'getElementById(userAccountSettings).addEventListener("click",handleUserProfileUpdateRequest);'.repeat(200),
    };
    expect(outside(prose, 1, 1.6)).toEqual([]);
  });

  it("counts a structured output's schema, which providers read as input", () => {
    const properties = Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`field_${i}`, { type: 'string', description: `The value of field ${i} of the answer.` }]));
    const schema = { type: 'object', properties, required: Object.keys(properties) };
    const messages = [{ role: 'user', content: 'Fill the form.' }];
    const plain = countPromptTokens({ messages });
    const asTool = countPromptTokens({ messages, tools: [{ type: 'function', function: { name: 'answer', parameters: schema } }] });
    const structured = countPromptTokens({ messages, response_format: { type: 'json_schema', json_schema: { name: 'answer', schema } } });
    // As many tokens as the same schema sent as a tool (as Anthropic and Bedrock get it), give or take its wrapping.
    expect(structured - plain).toBeGreaterThan(0.9 * (asTool - plain));
    expect(structured - plain).toBeGreaterThan(2_000);
    // Together's and Fireworks' JSON mode: a schema beside json_object.
    expect(countPromptTokens({ messages, response_format: { type: 'json_object', schema } }) - plain).toBeGreaterThan(2_000);
    expect(countPromptTokens({ messages, response_format: { type: 'json_object' } })).toBe(plain);
  });

  it('counts a body once, however many parts of the request path ask', () => {
    const body = { messages: [{ role: 'user', content: 'hello world' }] };
    const first = countPromptTokens(body);
    body.messages[0] = { role: 'user', content: 'changed after counting' };
    expect(countPromptTokens(body)).toBe(first);
  });

  it('remembers the counts of long texts by digest, most recently used kept, and counts as the tokenizer does', () => {
    const counter = new TextTokenCounter(100, 2);
    const texts = ['Résumé the quarterly policy, section 4.2 — 日本語も. '.repeat(5), 'def reverse(s):\n    return s[::-1]\n'.repeat(8), 'The third long text. '.repeat(10)];
    const exact = texts.map((t) => encode(t).length);
    expect(texts.map((t) => counter.count(t))).toEqual(exact);
    expect(counter).toMatchObject({ hits: 0, misses: 3 });
    // Capacity 2: the first text was evicted, the last two are remembered.
    expect(counter.count(texts[2] ?? '')).toBe(exact[2]);
    expect(counter.count(texts[1] ?? '')).toBe(exact[1]);
    expect(counter).toMatchObject({ hits: 2, misses: 3 });
    expect(counter.count(texts[0] ?? '')).toBe(exact[0]);
    expect(counter).toMatchObject({ hits: 2, misses: 4 });
    // Short texts are tokenized each time and never kept.
    expect(counter.count('hello world')).toBe(2);
    expect(counter).toMatchObject({ hits: 2, misses: 4 });
  });

  it('does not charge a remembered count to the exact budget, and never remembers an estimate', () => {
    const counter = new TextTokenCounter(100, 8);
    const text = '漢字'.repeat(600); // 3,600 bytes
    const budget = { exactBytes: 4_000 };
    expect(counter.count(text, budget)).toBe(encode(text).length);
    expect(budget.exactBytes).toBe(400);
    expect(counter.count(text, budget)).toBe(encode(text).length);
    expect(budget.exactBytes).toBe(400);
    const other = '字漢'.repeat(600);
    expect(counter.count(other, budget)).toBe(1_200);
    expect(counter.count(other, { exactBytes: 4_000 })).toBe(encode(other).length);
    expect(counter).toMatchObject({ hits: 1, misses: 2 });
  });
});
