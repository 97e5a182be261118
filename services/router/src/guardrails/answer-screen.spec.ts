import type { chatv1 } from '@openrouter/contracts';
import { AnswerScreen, CONTENT_FILTER } from './answer-screen';
import { compileRule, type CompiledRule, type Match } from './guardrail-rules';

const KEY = 'sk-proj-AbCdEfGhIjKlMnOpQrStUvWx123';
const RULES = [
  compileRule({ id: 'emails', detect: 'email', action: 'redact' }),
  compileRule({ id: 'secrets', detect: 'secret', action: 'block' }),
];

type Matches = Array<[string, string, number]>;

function screen(holdback = 64, choices = 1, matches: Matches = []): AnswerScreen {
  return new AnswerScreen(RULES, holdback, choices, (rule, action, count) => matches.push([rule, action, count]));
}

function chunk(choices: Array<{ index?: number; content?: string; finish?: string; tools?: chatv1.ToolCallDelta[] }>): chatv1.ChatChunk {
  return {
    id: 'c1',
    created: 1,
    model: 'm',
    choices: choices.map((c) => ({ index: c.index ?? 0, delta: { ...(c.content !== undefined && { content: c.content }), toolCalls: c.tools ?? [], extraJson: '' }, logprobsJson: '', ...(c.finish !== undefined && { finishReason: c.finish }) })),
  };
}

/** Streams `pieces` of one choice's content through the screen; the last piece ends the choice. */
function stream(s: AnswerScreen, pieces: readonly string[]): { sent: string[]; finish: Array<string | undefined> } {
  const sent: string[] = [];
  const finish: Array<string | undefined> = [];
  pieces.forEach((piece, i) => {
    if (s.done) return;
    const out = s.chunk(chunk([{ content: piece, ...(i === pieces.length - 1 && { finish: 'stop' }) }]));
    for (const choice of out.choices) {
      sent.push(choice.delta?.content ?? '');
      finish.push(choice.finishReason);
    }
  });
  return { sent, finish };
}

function completion(content: string | undefined, toolCalls: chatv1.ToolCall[] = []): chatv1.ChatCompletion {
  return { id: 'c', created: 1, model: 'm', choices: [{ index: 0, message: { role: 'assistant', ...(content !== undefined && { content }), toolCalls, extraJson: '' }, finishReason: toolCalls.length ? 'tool_calls' : 'stop', logprobsJson: '' }] };
}

describe('output guardrails on a whole answer', () => {
  it('redacts the content and tool-call arguments (as JSON string content), counting each match', () => {
    const matches: Matches = [];
    const out = screen(64, 1, matches).completion(completion('write to jane@example.com', [{ id: 't', type: 'function', function: { name: 'send', arguments: '{"to":"bob@example.org"}' } }]));
    const message = out.choices[0]?.message;
    expect(message?.content).toBe('write to [REDACTED:emails]');
    expect(JSON.parse(message?.toolCalls[0]?.function?.arguments ?? '')).toEqual({ to: '[REDACTED:emails]' });
    expect(out.choices[0]?.finishReason).toBe('tool_calls');
    expect(matches).toEqual([['emails', 'redact', 1], ['emails', 'redact', 1]]);
  });

  it('cuts the content before a block match, drops the tool calls, and ends the choice with content_filter', () => {
    const matches: Matches = [];
    const out = screen(64, 1, matches).completion(completion(`mail a@example.com the key ${KEY} now`, [{ id: 't', type: 'function', function: { name: 'f', arguments: '{}' } }]));
    expect(out.choices[0]).toMatchObject({ finishReason: CONTENT_FILTER, message: { content: 'mail [REDACTED:emails] the key ', toolCalls: [] } });
    expect(JSON.stringify(out)).not.toContain(KEY);
    expect(matches).toEqual([['secrets', 'block', 1], ['emails', 'redact', 1]]);
  });

  it('keeps the tool calls before one whose arguments a block rule matches', () => {
    const calls = [
      { id: 'a', type: 'function', function: { name: 'f', arguments: '{"x":1}' } },
      { id: 'b', type: 'function', function: { name: 'g', arguments: `{"key":"${KEY}"}` } },
    ];
    const out = screen().completion(completion(undefined, calls));
    expect(out.choices[0]).toMatchObject({ finishReason: CONTENT_FILTER, message: { toolCalls: [calls[0]] } });
    expect(out.choices[0]?.message?.content).toBeUndefined();
  });
});

describe('output guardrails on a streamed answer', () => {
  it('finds a match split over chunks whole, and never sends any of it', () => {
    const { sent, finish } = stream(screen(), ['Sure, write to jo', 'hn.sm', 'ith@exam', 'ple.com and ', 'say hi.']);
    expect(sent.join('')).toBe('Sure, write to [REDACTED:emails] and say hi.');
    expect(sent.some((s) => s.includes('john') || s.includes('example'))).toBe(false);
    expect(finish.at(-1)).toBe('stop');
  });

  it('sends text as soon as it is more than the holdback behind the newest, each chunk at most once', () => {
    const s = screen(8);
    const { sent } = stream(s, ['0123456789', 'abcdefghij', 'end']);
    expect(sent).toEqual(['01', '23456789ab', 'cdefghijend']);
  });

  it('ends the choice at a block match with content_filter, sends nothing of it or after it, and is done', () => {
    const matches: Matches = [];
    const s = screen(64, 1, matches);
    const { sent, finish } = stream(s, ['The key is ', KEY.slice(0, 12), KEY.slice(12), ' and more text', ' and the end']);
    expect(sent.join('')).toBe('The key is ');
    expect(finish.at(-1)).toBe(CONTENT_FILTER);
    expect(s.done).toBe(true);
    expect(matches).toEqual([['secrets', 'block', 1]]);
    // A late chunk of the cut choice (read before the provider stopped) carries nothing of it.
    expect(s.chunk(chunk([{ content: 'late' }])).choices).toEqual([]);
  });

  it('screens each choice on its own: one cut, the other streamed on, done once both ended', () => {
    const s = screen(16, 2);
    const first = s.chunk(chunk([{ index: 0, content: `key ${KEY} is` }, { index: 1, content: 'hello there, friend' }]));
    expect(first.choices.map((c) => [c.index, c.delta?.content, c.finishReason])).toEqual([[0, 'key ', CONTENT_FILTER], [1, 'hel', undefined]]);
    expect(s.done).toBe(false);
    const last = s.chunk(chunk([{ index: 0, content: 'more' }, { index: 1, content: '!', finish: 'stop' }]));
    expect(last.choices.map((c) => [c.index, c.delta?.content, c.finishReason])).toEqual([[1, 'lo there, friend!', 'stop']]);
    expect(s.done).toBe(true);
  });

  it('cuts at a term only once it is a whole word: not when more of the word may follow, nor after a letter already sent', () => {
    const terms = [compileRule({ id: 'codename', terms: ['falcon'], action: 'block' })];
    const termScreen = (holdback: number): AnswerScreen => new AnswerScreen(terms, holdback, 1, () => undefined);
    // "falcon" ends the first chunks, "falconry" is the word.
    expect(stream(termScreen(64), ['I like', ' falcon', 'ry a lot'])).toEqual({ sent: ['', '', 'I like falconry a lot'], finish: [undefined, undefined, 'stop'] });
    expect(stream(termScreen(0), ['I like', ' falcon', 'ry a lot'])).toEqual({ sent: ['I like', ' ', 'falconry a lot'], finish: [undefined, undefined, 'stop'] });
    // The holdback's start falls inside "superfalcon": the letter sent before it is read with it.
    expect(stream(termScreen(4), ['I saw a superfalc', 'on today', ', yes'])).toEqual({ sent: ['I saw a super', 'falcon t', 'oday, yes'], finish: [undefined, undefined, 'stop'] });
    // A whole word is cut, at the chunk that shows it is one, or at the end.
    expect(stream(termScreen(64), ['I like', ' falcon', ' a lot'])).toEqual({ sent: ['', '', 'I like '], finish: [undefined, undefined, CONTENT_FILTER] });
    expect(stream(termScreen(0), ['I like', ' falcon', ', a lot'])).toEqual({ sent: ['I like', ' ', ''], finish: [undefined, undefined, CONTENT_FILTER] });
    expect(stream(termScreen(0), ['I like', ' falcon'])).toEqual({ sent: ['I like', ' '], finish: [undefined, CONTENT_FILTER] });
  });

  it("holds back streamed tool-call arguments and releases them redacted at the choice's end", () => {
    const s = screen(64);
    const a = s.chunk(chunk([{ tools: [{ index: 0, id: 't', type: 'function', name: 'send', arguments: '{"to":"jane@' }] }]));
    expect(a.choices[0]?.delta?.toolCalls).toEqual([{ index: 0, id: 't', type: 'function', name: 'send', arguments: '' }]);
    const b = s.chunk(chunk([{ tools: [{ index: 0, arguments: 'example.com"}' }] }]));
    const c = s.chunk(chunk([{ finish: 'tool_calls' }]));
    const args = [a, b, c].flatMap((x) => x.choices.flatMap((ch) => ch.delta?.toolCalls ?? [])).map((t) => t.arguments ?? '').join('');
    expect(JSON.parse(args)).toEqual({ to: '[REDACTED:emails]' });
    expect(c.choices[0]?.finishReason).toBe('tool_calls');
  });

  it('counts a flag rule\'s matches once each, split over chunks or not, and sends the text as it is', () => {
    const matches: Matches = [];
    const s = new AnswerScreen([...RULES, compileRule({ id: 'watch', terms: ['invoice'], action: 'flag' })], 16, 1, (rule, action, count) => matches.push([rule, action, count]));
    const { sent } = stream(s, ['the invo', 'ice and the other invoice', ' for the invoice', ' team']);
    expect(sent.join('')).toBe('the invoice and the other invoice for the invoice team');
    expect(matches.filter(([rule]) => rule === 'watch').reduce((sum, [, , count]) => sum + count, 0)).toBe(3);
    const whole: Matches = [];
    new AnswerScreen([compileRule({ id: 'watch', terms: ['invoice'], action: 'flag' })], 16, 1, (rule, action, count) => whole.push([rule, action, count])).completion(completion('an invoice, an Invoice'));
    expect(whole).toEqual([['watch', 'flag', 2]]);
  });

  it('passes a usage chunk (no choices) as it is, and releases what is held when the stream ends without a finish', () => {
    const s = screen(64);
    expect(s.chunk(chunk([{ content: 'mail jane@example.com' }])).choices[0]?.delta?.content).toBe('');
    const usage = { ...chunk([]), usage: { promptTokens: 1, completionTokens: 2, totalTokens: 3 } } as chatv1.ChatChunk;
    expect(s.chunk(usage)).toEqual(usage);
    expect(s.flush()?.choices).toEqual([expect.objectContaining({ index: 0, delta: expect.objectContaining({ content: 'mail [REDACTED:emails]' }) })]);
    expect(s.flush()).toBeUndefined();
  });
});

describe('output guardrails: edge cases', () => {
  const args = (s: AnswerScreen, text: string): string | undefined =>
    s.completion({ id: 'c', created: 1, model: 'm', choices: [{ index: 0, message: { role: 'assistant', toolCalls: [{ id: 't', type: 'function', function: { name: 'f', arguments: text } }], extraJson: '' }, finishReason: 'tool_calls', logprobsJson: '' }] }).choices[0]?.message?.toolCalls[0]?.function?.arguments;

  it('never cuts a surrogate pair at the holdback boundary', () => {
    const s = screen(2);
    const sent = [s.chunk(chunk([{ content: 'ab😀c' }])), s.chunk(chunk([{ content: 'd', finish: 'stop' }]))].map((c) => c.choices[0]?.delta?.content ?? '');
    expect(sent.join('')).toBe('ab😀cd');
    // Each piece is well-formed text on its own (no lone surrogate).
    for (const piece of sent) expect(Buffer.from(piece, 'utf8').toString('utf8')).toBe(piece);
  });

  it('keeps tool-call arguments valid JSON: a match after an escape, a bare number, a match running past its string', () => {
    const rules = [
      compileRule({ id: 'emails', detect: 'email', action: 'redact' }),
      compileRule({ id: 'cards', detect: 'credit_card', action: 'redact' }),
      compileRule({ id: 'keys', detect: 'secret', action: 'redact' }),
    ];
    const s = new AnswerScreen(rules, 64, 1, () => undefined);
    expect(JSON.parse(args(s, '{"to":"hi\\njane@corp.io"}') ?? '')).toEqual({ to: 'hi\n[REDACTED:emails]' });
    expect(JSON.parse(args(s, '{"to":"\\u003cjane@corp.io\\u003e"}') ?? '')).toEqual({ to: '<[REDACTED:emails]>' });
    expect(JSON.parse(args(s, '{"card":4111111111111111}') ?? '')).toEqual({ card: '[REDACTED:cards]' });
    expect(JSON.parse(args(s, '{"k":"-----BEGIN PRIVATE KEY-----\\nMIIE","n":1}') ?? '')).toEqual({ k: '[REDACTED:keys]', n: 1 });
    // A match of another rule after the end of the string such a match is cut at is replaced too.
    expect(JSON.parse(args(s, '{"k":"-----BEGIN PRIVATE KEY-----\\nMIIE","to":"jane@corp.io","card":4111111111111111}') ?? '')).toEqual({ k: '[REDACTED:keys]', to: '[REDACTED:emails]', card: '[REDACTED:cards]' });
    // Streamed, with the string state carried over what was already sent.
    const streamed = new AnswerScreen(rules, 4, 1, () => undefined);
    const pieces = ['{"a":"', 'x', 'xxxxxxxxxx', '","card":', '4111111111111111', '}'];
    const out = pieces.map((p, i) => streamed.chunk(chunk([{ tools: [{ index: 0, arguments: p }], ...(i === pieces.length - 1 && { finish: 'tool_calls' }) }])));
    expect(JSON.parse(out.flatMap((c) => c.choices.flatMap((ch) => ch.delta?.toolCalls ?? [])).map((t) => t.arguments ?? '').join(''))).toEqual({ a: 'xxxxxxxxxxx', card: '[REDACTED:cards]' });
  });

  it('finds a key right after an escape sequence in tool-call arguments, whole or streamed', () => {
    expect(screen().completion(completion(undefined, [{ id: 't', type: 'function', function: { name: 'f', arguments: `{"env":"A=1\\n${KEY}"}` } }])).choices[0]).toMatchObject({ finishReason: CONTENT_FILTER, message: { toolCalls: [] } });
    const s = screen(8);
    const out = [`{"env":"A=1\\n`, KEY, '"}'].map((p) => s.chunk(chunk([{ tools: [{ index: 0, arguments: p }] }])));
    // The key reaches the end of what came with the second chunk: it might go on, so it is cut at the third, held meanwhile.
    expect(out.map((c) => c.choices[0]?.finishReason)).toEqual([undefined, undefined, CONTENT_FILTER]);
    expect(JSON.stringify(out)).not.toContain(KEY.slice(0, 12));
  });

  it('reads tool-call arguments with their \\u escapes decoded, whole or streamed, the holdback counting an escape as one character', () => {
    const escape = (text: string): string => [...text].map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join('');
    const matches: Matches = [];
    const whole = screen(64, 1, matches).completion(completion(undefined, [{ id: 't', type: 'function', function: { name: 'send', arguments: `{"to":"alice\\u0040example.com","body":"${escape('bob@example.org')}"}` } }]));
    expect(JSON.parse(whole.choices[0]?.message?.toolCalls[0]?.function?.arguments ?? '')).toEqual({ to: '[REDACTED:emails]', body: '[REDACTED:emails]' });
    expect(matches).toEqual([['emails', 'redact', 2]]);
    expect(screen().completion(completion(undefined, [{ id: 't', type: 'function', function: { name: 'f', arguments: `{"k":"${escape(KEY)}"}` } }])).choices[0]).toMatchObject({ finishReason: CONTENT_FILTER, message: { toolCalls: [] } });

    // 16 characters as the rules read them, 96 in the JSON text: within a holdback of 20, so held whole.
    const s = screen(20);
    const args = `{"note":"${'x'.repeat(30)} ${escape('jane@example.com')} and the rest of it"}`;
    const pieces = args.match(/[\s\S]{1,10}/g) ?? [];
    const out = pieces.map((p, i) => s.chunk(chunk([{ tools: [{ index: 0, arguments: p }], ...(i === pieces.length - 1 && { finish: 'tool_calls' }) }])));
    const sent = out.flatMap((c) => c.choices.flatMap((ch) => ch.delta?.toolCalls ?? [])).map((t) => t.arguments ?? '');
    expect(JSON.parse(sent.join(''))).toEqual({ note: `${'x'.repeat(30)} [REDACTED:emails] and the rest of it` });
    expect(sent.join('')).not.toContain(escape('j'));
    // Text was sent before the end: the holdback delays it, it does not hold the whole arguments.
    expect(sent.slice(0, -1).join('').length).toBeGreaterThan(0);
  });

  it('never splits a character written as the two escapes of its surrogate pair at the holdback boundary', () => {
    const rules = [compileRule({ id: 'waves', pattern: '🌊', action: 'redact', replacement: '~' })];
    const s = new AnswerScreen(rules, 1, 1, () => undefined);
    const first = s.chunk(chunk([{ tools: [{ index: 0, arguments: '{"a":"x\\ud83c\\udf0a' }] }]));
    const last = s.chunk(chunk([{ tools: [{ index: 0, arguments: 'y"}' }], finish: 'tool_calls' }]));
    const sent = [first, last].map((c) => c.choices[0]?.delta?.toolCalls[0]?.arguments ?? '');
    expect(sent.join('')).toBe('{"a":"x~y"}');
    expect(sent[0]).not.toContain('\\ud83c');
  });

  it('sends nothing of a redact match a block match overlaps', () => {
    const rules = [compileRule({ id: 'emails', detect: 'email', action: 'redact' }), compileRule({ id: 'domain', pattern: 'example\\.com', action: 'block' })];
    const whole = new AnswerScreen(rules, 64, 1, () => undefined).completion(completion('mail john.smith@example.com now'));
    expect(whole.choices[0]).toMatchObject({ finishReason: CONTENT_FILTER, message: { content: 'mail ' } });
    const { sent } = stream(new AnswerScreen(rules, 64, 1, () => undefined), ['mail john.smith@', 'example.com now']);
    expect(sent.join('')).toBe('mail ');
  });

  it('when a tool call is cut in a stream, sends the content held back before it whole', () => {
    const matches: Matches = [];
    const s = screen(64, 1, matches);
    const out = s.chunk(chunk([{ content: 'I will call the tool now.', tools: [{ index: 0, id: 't', type: 'function', name: 'f', arguments: `{"k":"${KEY}"}` }] }]));
    expect(out.choices[0]).toMatchObject({ finishReason: CONTENT_FILTER, delta: { content: 'I will call the tool now.' } });
    expect(JSON.stringify(out)).not.toContain(KEY);
    expect(matches).toEqual([['secrets', 'block', 1]]);
  });
});

describe('output guardrails: long matches and where chunks split', () => {
  const PEM = `-----BEGIN PRIVATE KEY-----\n${'MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n'.repeat(100)}-----END PRIVATE KEY-----`;
  const pieces = (text: string, size: number): string[] => text.match(new RegExp(`[\\s\\S]{1,${size}}`, 'g')) ?? [];

  /** `rule` with what it reads watched: the longest text it read at once. */
  function watched(rule: CompiledRule): { rule: CompiledRule; longest: () => number } {
    let longest = 0;
    const read = (text: string, json?: boolean): Match[] => {
      longest = Math.max(longest, text.length);
      return rule.matches(text, json);
    };
    return { rule: { ...rule, matches: read }, longest: () => longest };
  }

  /** The arguments of a whole answer's tool call, screened. */
  const wholeArgs = (s: AnswerScreen, text: string): string =>
    s.completion({ id: 'c', created: 1, model: 'm', choices: [{ index: 0, message: { role: 'assistant', toolCalls: [{ id: 't', type: 'function', function: { name: 'f', arguments: text } }], extraJson: '' }, finishReason: 'tool_calls', logprobsJson: '' }] }).choices[0]?.message?.toolCalls[0]?.function?.arguments ?? '';

  /** Streams `args` as one tool call's arguments in pieces of `size`, then ends the choice: the arguments sent, and the finish reason. */
  function streamArgs(s: AnswerScreen, args: string, size: number): { args: string; finish: string | undefined } {
    const out = [...pieces(args, size).map((p) => ({ tools: [{ index: 0, arguments: p }] })), { finish: 'tool_calls' }].flatMap((c) => (s.done ? [] : s.chunk(chunk([c])).choices));
    return { args: out.flatMap((c) => c.delta?.toolCalls ?? []).map((t) => t.arguments ?? '').join(''), finish: out.find((c) => c.finishReason)?.finishReason };
  }

  it('cuts at a block match once it is longer than a match is held, reading a bounded text with each chunk', () => {
    const { rule, longest } = watched(compileRule({ id: 'keys', detect: 'secret', action: 'block' }));
    const s = new AnswerScreen([rule], 64, 1, () => undefined);
    const text = `Here: ${PEM}\nthanks`;
    const { sent, finish } = stream(s, pieces(text, 5));
    expect(sent.join('')).toBe('Here: ');
    expect(finish.at(-1)).toBe(CONTENT_FILTER);
    // Cut while the key was still coming, not held (and read again) to its end.
    expect(sent.length).toBeLessThan(100);
    expect(longest()).toBeLessThan(1000);
  });

  it('replaces a redact match too long to hold once, drops the rest of it as it comes, and sends what follows it', () => {
    for (const size of [1, 5, 7, 64]) {
      const matches: Matches = [];
      const { rule, longest } = watched(compileRule({ id: 'keys', detect: 'secret', action: 'redact' }));
      const s = new AnswerScreen([rule], 64, 1, (id, action, count) => matches.push([id, action, count]));
      const { sent, finish } = stream(s, pieces(`Here: ${PEM}\nthanks, and sk-${'A'.repeat(2000)} too`, size));
      expect(sent.join('')).toBe('Here: [REDACTED:keys]\nthanks, and [REDACTED:keys] too');
      expect(finish.at(-1)).toBe('stop');
      expect(matches).toEqual([['keys', 'redact', 1], ['keys', 'redact', 1]]);
      expect(longest()).toBeLessThan(1000);
    }
  });

  it('does the same in tool-call arguments, keeping them valid JSON, as whole', () => {
    const keys = compileRule({ id: 'keys', detect: 'secret', action: 'redact' });
    const text = JSON.stringify({ k: PEM, note: 'sent', n: 1 });
    expect(JSON.parse(wholeArgs(new AnswerScreen([keys], 64, 1, () => undefined), text))).toEqual({ k: '[REDACTED:keys]', note: 'sent', n: 1 });
    for (const size of [1, 7, 64]) {
      const { rule, longest } = watched(keys);
      const out = streamArgs(new AnswerScreen([rule], 64, 1, () => undefined), text, size);
      expect(JSON.parse(out.args)).toEqual({ k: '[REDACTED:keys]', note: 'sent', n: 1 });
      expect(longest()).toBeLessThan(2000);
    }
    // Cut off, it runs to the end of its string: what follows the string is sent.
    const cutOff = JSON.stringify({ k: PEM.slice(0, 3000), n: 1 });
    expect(JSON.parse(streamArgs(new AnswerScreen([keys], 64, 1, () => undefined), cutOff, 5).args)).toEqual({ k: '[REDACTED:keys]', n: 1 });
  });

  it('counts a flag match too long to hold once, sending the text as it is', () => {
    const matches: Matches = [];
    const { rule, longest } = watched(compileRule({ id: 'keys', detect: 'secret', action: 'flag' }));
    const text = `Here: ${PEM}\nthanks`;
    const { sent } = stream(new AnswerScreen([rule], 64, 1, (id, action, count) => matches.push([id, action, count])), pieces(text, 5));
    expect(sent.join('')).toBe(text);
    expect(matches).toEqual([['keys', 'flag', 1]]);
    expect(longest()).toBeLessThan(1000);
  });

  it('screens streamed tool-call arguments as whole ones, wherever the chunks split them', () => {
    const rules = [compileRule({ id: 'secrets', detect: 'secret', action: 'block' }), compileRule({ id: 'codenames', terms: ['falcon'], action: 'redact' })];
    for (let pad = 180; pad < 190; pad++) {
      // "risk-assessment…" is no key, nor "superfalcon" the term, read after the letter before them;
      // the term after a space written as an escape sequence is one.
      const text = JSON.stringify({ notes: 'x'.repeat(pad), slug: 'risk-assessment-for-the-quarterly-report', tag: 'superfalcon,SPACEfalcon', more: 'y'.repeat(150) }).replace('SPACE', '\\u0020');
      const whole = wholeArgs(new AnswerScreen(rules, 128, 1, () => undefined), text);
      expect(JSON.parse(whole)).toMatchObject({ slug: 'risk-assessment-for-the-quarterly-report', tag: 'superfalcon, [REDACTED:codenames]' });
      for (let size = 1; size <= 8; size++) expect(streamArgs(new AnswerScreen(rules, 128, 1, () => undefined), text, size)).toEqual({ args: whole, finish: 'tool_calls' });
    }
  });

  it('reads a held text after the characters sent before it: a number after a decimal point is no card, wherever the holdback starts', () => {
    const rules = [compileRule({ id: 'cards', detect: 'credit_card', action: 'redact' })];
    const text = 'pay 0.4111111111111111 or 4111 1111 1111 1111. Done';
    const whole = screen().completion(completion(text));
    expect(new AnswerScreen(rules, 64, 1, () => undefined).completion(completion(text)).choices[0]?.message?.content).toBe('pay 0.4111111111111111 or [REDACTED:cards]. Done');
    expect(whole.choices[0]?.message?.content).toBe(text);
    for (let holdback = 20; holdback < 40; holdback++) for (let size = 1; size <= 3; size++) expect(stream(new AnswerScreen(rules, holdback, 1, () => undefined), pieces(text, size)).sent.join('')).toBe('pay 0.4111111111111111 or [REDACTED:cards]. Done');
  });

  it('redacts a card in a JSON number as a string in place of the whole number, whole or streamed', () => {
    const rules = [compileRule({ id: 'cards', detect: 'credit_card', action: 'redact' })];
    const text = '{"a":"xx","n":-4111111111111111,"amt":4111111111111111.5,"m":2.5}';
    const expected = { a: 'xx', n: '[REDACTED:cards]', amt: 4111111111111111.5, m: 2.5 };
    expect(JSON.parse(wholeArgs(new AnswerScreen(rules, 64, 1, () => undefined), text))).toEqual(expected);
    for (let holdback = 20; holdback < 40; holdback++) for (let size = 1; size <= 4; size++) expect(JSON.parse(streamArgs(new AnswerScreen(rules, holdback, 1, () => undefined), text, size).args)).toEqual(expected);
  });
});
