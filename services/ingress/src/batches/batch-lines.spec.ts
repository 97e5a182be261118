import { checkBatchInput, parseBatchInput } from './batch-lines';

const CHAT = '/v1/chat/completions';
const body = (content: string): Record<string, unknown> => ({ model: 'gpt-4o-mini', messages: [{ role: 'user', content }] });
const line = (customId: string, changes: Record<string, unknown> = {}): string => JSON.stringify({ custom_id: customId, method: 'POST', url: CHAT, body: body(customId), ...changes });
const file = (...rows: string[]): Buffer => Buffer.from(rows.join('\n'), 'utf8');
/** Each problem as [code, line, param]. */
const problems = async (content: Buffer, maxLines = 1_000): Promise<Array<[string, number | null, string | null]>> => (await parseBatchInput(content, CHAT, maxLines)).errors.map((e) => [e.code, e.line, e.param]);

describe('parseBatchInput', () => {
  it("reads each request with its 0-based index among the requests, its custom_id and body, in the file's order", async () => {
    const parsed = await parseBatchInput(file(line('a'), line('b'), `${line('c')}\n`), CHAT, 10);
    expect(parsed.errors).toEqual([]);
    expect(parsed.lines).toEqual([
      { index: 0, customId: 'a', body: body('a') },
      { index: 1, customId: 'b', body: body('b') },
      { index: 2, customId: 'c', body: body('c') },
    ]);
  });

  it('skips blank lines (not requests: the indexes stay dense) and reads CRLF files, a BOM and non-ASCII text', async () => {
    const content = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(['', line('first', { body: body('héllo ✓ 你好') }), '   ', '\t', line('second'), '', ''].join('\r\n'), 'utf8')]);
    const parsed = await parseBatchInput(content, CHAT, 10);
    expect(parsed.errors).toEqual([]);
    expect(parsed.lines).toEqual([
      { index: 0, customId: 'first', body: body('héllo ✓ 你好') },
      { index: 1, customId: 'second', body: body('second') },
    ]);
  });

  it('names each bad line by its 1-based line in the file (blank lines counted), and runs no line of a file with any problem', async () => {
    const content = file(
      line('ok-1'),
      '',
      '{not json',
      JSON.stringify({ method: 'POST', url: CHAT, body: body('x') }),
      line('get', { method: 'GET' }),
      line('array-body', { body: [1, 2] }),
      line('string-body', { body: 'hello' }),
      line('streamed', { body: { ...body('x'), stream: true } }),
      line('wrong-url', { url: '/v1/embeddings' }),
      line('ok-1'),
      line('ok-2'),
      '42',
      line('', {}),
      `{"custom_id":"planted","method":"POST","url":"${CHAT}","body":{"model":"m","messages":[],"metadata":{"__proto__":{"x":"1"}}}}`,
    );
    const parsed = await parseBatchInput(content, CHAT, 1_000);
    expect(parsed.lines).toEqual([]);
    expect(parsed.errors.map((e) => [e.code, e.line, e.param])).toEqual([
      ['invalid_json_line', 3, null],
      ['invalid_request', 4, 'custom_id'],
      ['invalid_request', 5, 'method'],
      ['invalid_request', 6, 'body'],
      ['invalid_request', 7, 'body'],
      ['invalid_request', 8, 'body.stream'],
      ['invalid_url', 9, 'url'],
      ['duplicate_custom_id', 10, 'custom_id'],
      ['invalid_request', 12, null],
      ['invalid_request', 13, 'custom_id'],
      ['forbidden_json_key', 14, null],
    ]);
    // Each says what is wrong, readable by whoever fixes the file.
    const messages = parsed.errors.map((e) => e.message);
    expect(messages[2]).toMatch(/method must be POST/);
    expect(messages[3]).toMatch(/body must be a JSON object/);
    expect(messages[5]).toMatch(/cannot be streamed/);
    expect(messages[6]).toContain("'/v1/embeddings'");
    expect(messages[7]).toContain("'ok-1'");
  });

  it('refuses a request that asks to run in the background (a batch answers it in its output file), and takes background false', async () => {
    const refused = await parseBatchInput(file(line('ok'), line('queued', { body: { ...body('x'), background: true } })), CHAT, 10);
    expect(refused.lines).toEqual([]);
    expect(refused.errors).toEqual([{ code: 'invalid_request', message: expect.stringMatching(/cannot run in the background/), param: 'body.background', line: 2 }]);
    expect((await parseBatchInput(file(line('a', { body: { ...body('a'), background: false } })), CHAT, 10)).lines).toHaveLength(1);
  });

  it('takes stream false, and a url that is the endpoint of the batch only', async () => {
    expect((await parseBatchInput(file(line('a', { body: { ...body('a'), stream: false } })), CHAT, 10)).lines).toHaveLength(1);
    const embedding = JSON.stringify({ custom_id: 'e', method: 'POST', url: '/v1/embeddings', body: { model: 'm', input: 'x' } });
    expect((await parseBatchInput(file(embedding), '/v1/embeddings', 10)).lines).toEqual([{ index: 0, customId: 'e', body: { model: 'm', input: 'x' } }]);
    expect(await problems(file(embedding))).toEqual([['invalid_url', 1, 'url']]);
    // A url with a trailing slash or without its /v1 is another url.
    expect(await problems(file(line('s', { url: `${CHAT}/` }), line('t', { url: '/chat/completions' })))).toEqual([
      ['invalid_url', 1, 'url'],
      ['invalid_url', 2, 'url'],
    ]);
  });

  it('refuses a file without a request: empty, or blank lines only', async () => {
    for (const content of [Buffer.alloc(0), Buffer.from('\n\r\n   \n')]) {
      expect(await parseBatchInput(content, CHAT, 10)).toEqual({ lines: [], errors: [{ code: 'empty_file', message: expect.any(String), param: null, line: null }] });
    }
  });

  it('refuses more requests than maxLines, at the first line past it, and takes exactly maxLines', async () => {
    const rows = Array.from({ length: 5 }, (_, i) => line(`r${i}`));
    expect((await parseBatchInput(file(...rows.slice(0, 3)), CHAT, 3)).lines).toHaveLength(3);
    const parsed = await parseBatchInput(file(rows[0] ?? '', '', ...rows.slice(1)), CHAT, 3);
    expect(parsed.lines).toEqual([]);
    // The fourth request is on line 5 (a blank line before it).
    expect(parsed.errors).toEqual([{ code: 'too_many_requests', message: expect.stringContaining('3'), param: null, line: 5 }]);
  });

  it('refuses a line nested deeper than jsonDepth, as a request body would be, before parsing it', async () => {
    const nested = (levels: number): string => line('deep', { body: { ...body('deep'), x: JSON.parse(`${'['.repeat(levels)}${']'.repeat(levels)}`) as unknown } });
    // The body and the line are two levels around `x`.
    expect((await parseBatchInput(file(line('a'), nested(126)), CHAT, 10, 128)).errors).toEqual([]);
    const refused = await parseBatchInput(file(line('a'), nested(127)), CHAT, 10, 128);
    expect(refused.errors).toEqual([{ code: 'invalid_request', message: expect.stringContaining('at most 128 levels'), param: null, line: 2 }]);
    // Twenty thousand levels: refused as well, without a stack overflow.
    const deep = `{"custom_id":"d","method":"POST","url":"${CHAT}","body":{"x":${'['.repeat(20_000)}${']'.repeat(20_000)}}}`;
    expect((await parseBatchInput(file(deep), CHAT, 10, 128)).errors.map((e) => e.code)).toEqual(['invalid_request']);
  });

  it('refuses bytes that are not UTF-8, as one problem of the whole file', async () => {
    const content = Buffer.concat([Buffer.from(`${line('a')}\n`), Buffer.from([0xff, 0xfe, 0x7b, 0x7d]), Buffer.from('\n')]);
    expect(await parseBatchInput(content, CHAT, 10)).toEqual({ lines: [], errors: [{ code: 'invalid_encoding', message: expect.any(String), param: null, line: null }] });
    // A truncated multi-byte character too.
    expect(await problems(Buffer.concat([Buffer.from(line('b')), Buffer.from([0xe2, 0x9c])]))).toEqual([['invalid_encoding', null, null]]);
  });

  it('lists at most 100 problems: the first 100 of the file', async () => {
    const rows = Array.from({ length: 250 }, () => '{not json');
    const listed = await problems(file(...rows));
    expect(listed).toHaveLength(100);
    expect(listed[0]).toEqual(['invalid_json_line', 1, null]);
    expect(listed[99]).toEqual(['invalid_json_line', 100, null]);
  });

  it('keeps long values out of its messages: a custom_id or url is cut to 100 characters', async () => {
    const long = 'x'.repeat(400);
    const [wrongUrl, duplicate] = (await parseBatchInput(file(line('u', { url: `/v1/${long}` }), line(long), line(long)), CHAT, 10)).errors;
    expect(wrongUrl?.message).not.toContain(long.slice(0, 101));
    expect(duplicate).toMatchObject({ code: 'duplicate_custom_id', line: 3 });
    expect(duplicate?.message).not.toContain(long.slice(0, 101));
    // A custom_id longer than 512 characters is not one.
    expect(await problems(file(line('y'.repeat(513))))).toEqual([['invalid_request', 1, 'custom_id']]);
  });

  it('lets the event loop turn while it reads a file: work queued meanwhile runs before the parse ends, and the lines are the same', async () => {
    const rows = Array.from({ length: 50 }, (_, i) => line(`r${i}`));
    // After every line (sliceMs 0): with the parse done in one go, nothing queued would run before its end.
    let turns = 0;
    let parsing = true;
    const count = (): void => {
      if (!parsing) return;
      turns++;
      setImmediate(count);
    };
    setImmediate(count);
    const parsed = await parseBatchInput(file(...rows), CHAT, 1_000, undefined, { sliceMs: 0 });
    parsing = false;
    expect(turns).toBeGreaterThanOrEqual(rows.length - 1);
    expect(parsed).toEqual(await parseBatchInput(file(...rows), CHAT, 1_000));
    expect(parsed.lines).toHaveLength(50);
  });

  it('finds the same problems when it reads in slices: a bad line, too many requests, bad bytes', async () => {
    const sliced = async (content: Buffer, maxLines: number) => parseBatchInput(content, CHAT, maxLines, 128, { sliceMs: 0 });
    const bad = file(line('a'), '{not json', line('a'));
    expect(await sliced(bad, 10)).toEqual(await parseBatchInput(bad, CHAT, 10, 128));
    expect((await sliced(bad, 10)).errors.map((e) => [e.code, e.line])).toEqual([
      ['invalid_json_line', 2],
      ['duplicate_custom_id', 3],
    ]);
    expect((await sliced(file(line('a'), line('b'), line('c')), 2)).errors.map((e) => [e.code, e.line])).toEqual([['too_many_requests', 3]]);
    expect((await sliced(Buffer.concat([Buffer.from(`${line('a')}\n`), Buffer.from([0xff])]), 10)).errors.map((e) => e.code)).toEqual(['invalid_encoding']);
  });
});

describe('checkBatchInput', () => {
  it("finds what parseBatchInput finds, keeping only how many requests there are (none when there is a problem)", async () => {
    const rows = Array.from({ length: 5 }, (_, i) => line(`r${i}`));
    const cases: Array<[Buffer, number, number | undefined]> = [
      [file(rows[0] ?? '', '', ...rows.slice(1), ''), 10, undefined],
      [file(...rows), 5, undefined],
      [file(...rows), 4, undefined],
      [file(line('a'), '{not json', line('a'), line('s', { body: { ...body('s'), stream: true } })), 10, undefined],
      [file(line('a'), line('deep', { body: { ...body('deep'), x: [[[]]] } })), 10, 4],
      [Buffer.concat([Buffer.from(`${line('a')}\n`), Buffer.from([0xff])]), 10, undefined],
      [Buffer.from('\n \n'), 10, undefined],
    ];
    for (const [content, maxLines, jsonDepth] of cases) {
      const parsed = await parseBatchInput(content, CHAT, maxLines, jsonDepth);
      expect(await checkBatchInput(content, CHAT, maxLines, jsonDepth)).toEqual({ count: parsed.lines.length, errors: parsed.errors });
      expect(await checkBatchInput(content, CHAT, maxLines, jsonDepth, { sliceMs: 0 })).toEqual({ count: parsed.lines.length, errors: parsed.errors });
    }
    expect((await checkBatchInput(file(...rows), CHAT, 10)).count).toBe(5);
    expect((await checkBatchInput(file(...rows), CHAT, 4)).count).toBe(0);
  });
});
