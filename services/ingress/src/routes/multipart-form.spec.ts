import type { IncomingMessage } from 'node:http';
import { GatewayError } from '@openrouter/errors';
import { isAudioUpload, isFormBody, type AudioUpload } from '@openrouter/openai-wire';
import type { ApiKeyRecord } from '../access/key-record';
import { INTERNAL_CALL_HEADER } from '../access/internal-call';
import { formLimitOf, MAX_FORM_PARTS, readBounded, readForm, readMultipartForm, type FormRequest, type UploaderKeys } from './multipart-form';

/** A form encoded as a client sends it: its bytes and its content type (with the boundary). */
async function encoded(form: FormData): Promise<{ body: Uint8Array; contentType: string }> {
  const request = new Request('http://gateway/v1/audio/transcriptions', { method: 'POST', body: form });
  return { body: new Uint8Array(await request.arrayBuffer()), contentType: request.headers.get('content-type') ?? '' };
}

async function read(form: FormData): Promise<Record<string, unknown>> {
  const { body, contentType } = await encoded(form);
  return readMultipartForm(body, contentType);
}

async function refusal(body: string | Uint8Array, contentType: string): Promise<GatewayError> {
  const error = await readMultipartForm(typeof body === 'string' ? Buffer.from(body) : body, contentType).then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof GatewayError)) throw new Error(`expected a GatewayError, got ${String(error)}`);
  return error;
}

describe('readMultipartForm', () => {
  it('reads files as uploads, text fields as strings and a repeated field as its values in order', async () => {
    const form = new FormData();
    form.append('model', 'whisper-1');
    form.append('file', new Blob([Buffer.from('RIFF-bytes')], { type: 'audio/wav' }), 'talk.wav');
    form.append('timestamp_granularities[]', 'word');
    form.append('language', 'fr');
    form.append('timestamp_granularities[]', 'segment');
    form.append('prompt', 'Ça va ? 🙂');
    const body = await read(form);
    expect(Object.keys(body)).toEqual(['model', 'file', 'timestamp_granularities[]', 'language', 'prompt']);
    expect(body).toEqual({
      model: 'whisper-1',
      file: { data: new Uint8Array(Buffer.from('RIFF-bytes')), filename: 'talk.wav', contentType: 'audio/wav' },
      'timestamp_granularities[]': ['word', 'segment'],
      language: 'fr',
      prompt: 'Ça va ? 🙂',
    });
    expect(isFormBody(body)).toBe(true);
  });

  it('reads a file part sent without a media type as text/plain, as RFC 7578 says, and an empty file as empty', async () => {
    const { contentType } = await encoded(new FormData());
    const boundary = contentType.split('boundary=')[1] ?? '';
    const raw = `--${boundary}\r\ncontent-disposition: form-data; name="file"; filename="a.mp3"\r\n\r\nID3\r\n--${boundary}\r\ncontent-disposition: form-data; name="empty"; filename="b.wav"\r\ncontent-type: audio/wav\r\n\r\n\r\n--${boundary}--\r\n`;
    const body = await readMultipartForm(Buffer.from(raw), contentType);
    expect(body['file']).toEqual({ data: new Uint8Array(Buffer.from('ID3')), filename: 'a.mp3', contentType: 'text/plain' });
    expect(body['empty']).toEqual({ data: new Uint8Array(0), filename: 'b.wav', contentType: 'audio/wav' });
  });

  it('reads an empty form as an empty body', async () => {
    const body = await read(new FormData());
    expect(body).toEqual({});
    expect(isFormBody(body)).toBe(true);
  });

  it.each([
    ['a body with another boundary', '--other\r\ncontent-disposition: form-data; name="model"\r\n\r\nm\r\n--other--\r\n', 'multipart/form-data; boundary=mine'],
    ['no boundary', 'model=m', 'multipart/form-data'],
    ['a part without its end', '--b\r\ncontent-disposition: form-data; name="model"\r\n\r\nm', 'multipart/form-data; boundary=b'],
    ['a part without a name', '--b\r\ncontent-disposition: form-data\r\n\r\nm\r\n--b--\r\n', 'multipart/form-data; boundary=b'],
  ])('refuses %s with a 400', async (_name, body, contentType) => {
    expect(await refusal(body, contentType)).toMatchObject({ kind: 'bad_request', code: 'invalid_multipart' });
  });

  it('refuses a field named __proto__, which would replace the body’s prototype', async () => {
    const form = new FormData();
    form.append('model', 'whisper-1');
    form.append('__proto__', 'polluted');
    const { body, contentType } = await encoded(form);
    expect(await refusal(body, contentType)).toMatchObject({ kind: 'bad_request', param: '__proto__' });
  });

  it('reads fields named as members of an object (toString, constructor, valueOf) as any other field', async () => {
    const form = new FormData();
    form.append('model', 'whisper-1');
    form.append('toString', 'x');
    form.append('constructor', 'y');
    form.append('valueOf', 'a');
    form.append('valueOf', 'b');
    const body = await read(form);
    expect(body).toEqual({ model: 'whisper-1', toString: 'x', constructor: 'y', valueOf: ['a', 'b'] });
  });
});

describe('readMultipartForm, in place', () => {
  it('gives each file as a view of the body, never a copy', async () => {
    const form = new FormData();
    form.append('model', 'gpt-image-1');
    form.append('image[]', new Blob([Buffer.alloc(300_000, 1)], { type: 'image/png' }), 'a.png');
    form.append('image[]', new Blob([Buffer.alloc(200_000, 2)], { type: 'image/png' }), 'b.png');
    const { body, contentType } = await encoded(form);
    const images = (await readMultipartForm(body, contentType))['image[]'] as AudioUpload[];
    expect(images.map((image) => [image.data.byteLength, image.data[0]])).toEqual([
      [300_000, 1],
      [200_000, 2],
    ]);
    for (const image of images) expect(image.data.buffer).toBe(body.buffer);
  });

  /** Forms as clients encode them, each read here and by the platform's WHATWG parser. */
  const forms: Array<[string, () => FormData]> = [
    [
      'fields, files and repeated fields',
      () => {
        const form = new FormData();
        form.append('model', 'whisper-1');
        form.append('file', new Blob([Buffer.from('RIFF\r\n--not-the-boundary\r\n')], { type: 'Audio/WAV' }), 'talk.wav');
        form.append('timestamp_granularities[]', 'word');
        form.append('timestamp_granularities[]', 'segment');
        return form;
      },
    ],
    [
      'names and filenames with quotes, line breaks and non-ASCII characters',
      () => {
        const form = new FormData();
        form.append('na"me\nx', 'value with "quotes" and\r\nlines');
        form.append('file', new Blob([Buffer.from([0, 1, 2])]), 'é "quoted"\nname.mp3');
        form.append('prompt', 'Ça va ? 🙂 ﬁ');
        return form;
      },
    ],
    ['an empty file and an empty field', () => {
      const form = new FormData();
      form.append('file', new Blob([]), 'empty.wav');
      form.append('language', '');
      return form;
    }],
  ];

  it.each(forms)('reads %s as the WHATWG parser does', async (_name, make) => {
    const { body, contentType } = await encoded(make());
    const platform = await new Response(body, { headers: { 'content-type': contentType } }).formData();
    const expected: Array<[string, unknown]> = [];
    for (const [name, entry] of platform.entries()) {
      expected.push([name, typeof entry === 'string' ? entry : { data: new Uint8Array(await entry.arrayBuffer()), filename: entry.name, contentType: entry.type || 'application/octet-stream' }]);
    }
    const read = await readMultipartForm(body, contentType);
    const got = Object.entries(read).flatMap(([name, value]) => (Array.isArray(value) ? value : [value]).map((v: unknown): [string, unknown] => [name, isAudioUpload(v) ? { ...v, data: new Uint8Array(v.data) } : v]));
    expect(got).toEqual(expected);
  });

  it('reads what a hand-written client may send: a preamble and epilogue, a quoted boundary, filename* over filename', async () => {
    const raw = [
      'preamble to ignore\r\n--b b\r\n',
      'Content-Disposition: form-data; filename="plain.txt"; name=file; filename*=UTF-8\'en\'%E2%82%AC%20rates.txt\r\nContent-Type: text/csv\r\n\r\na,b\r\n',
      '--b b\r\ncontent-disposition: form-data; name="note"\r\n\r\nhi\r\n',
      '--b b--\r\nepilogue to ignore',
    ].join('');
    const body = await readMultipartForm(Buffer.from(raw), 'Multipart/Form-Data; charset=utf-8; boundary="b b"');
    expect(body).toEqual({ file: { data: new Uint8Array(Buffer.from('a,b')), filename: '€ rates.txt', contentType: 'text/csv' }, note: 'hi' });
  });

  it.each([
    ['a form cut before its closing boundary', '--b\r\ncontent-disposition: form-data; name="a"\r\n\r\nv'],
    ['a part whose headers never end', '--b\r\ncontent-disposition: form-data; name="a"'],
  ])('refuses %s with a 400', async (_name, raw) => {
    expect(await refusal(raw, 'multipart/form-data; boundary=b')).toMatchObject({ kind: 'bad_request', code: 'invalid_multipart' });
  });

  it('refuses a body whose type names no boundary, or is no form, with a 400', async () => {
    for (const type of ['multipart/form-data', 'multipart/form-data; boundary=', 'application/json']) expect(await refusal('--b--', type)).toMatchObject({ kind: 'bad_request', code: 'invalid_multipart' });
  });

  it('refuses a form cut off inside a file, named or not, with a 400 (the cut part’s error is the form’s, never the process’s)', async () => {
    const type = 'multipart/form-data; boundary=b';
    expect(await refusal('--b\r\ncontent-disposition: form-data; name="file"; filename="a.wav"\r\n\r\nRIFFxxxxWAVE', type)).toMatchObject({ kind: 'bad_request', code: 'invalid_multipart' });
    expect(await refusal('--b\r\ncontent-disposition: form-data; filename="a.wav"\r\n\r\nRIFFxxxxWAVE', type)).toMatchObject({ kind: 'bad_request', code: 'invalid_multipart' });
  });

  it(`refuses a form of more than ${MAX_FORM_PARTS} parts`, async () => {
    const part = '--b\r\ncontent-disposition: form-data; name="x"\r\n\r\n1\r\n';
    expect(Object.keys(await readMultipartForm(Buffer.from(`${part.repeat(MAX_FORM_PARTS)}--b--`), 'multipart/form-data; boundary=b'))).toEqual(['x']);
    expect(await refusal(`${part.repeat(MAX_FORM_PARTS + 1)}--b--`, 'multipart/form-data; boundary=b')).toMatchObject({ code: 'invalid_multipart' });
  });
});

describe('formLimitOf', () => {
  const limits = { audioBytes: 300, imageEditBytes: 500, bodyBytes: 100 };

  it('takes audioBytes on the audio upload routes, imageEditBytes on image edits and bodyBytes on any other route', () => {
    expect(formLimitOf('/v1/audio/transcriptions', limits)).toEqual({ bytes: 300, what: 'The audio upload' });
    expect(formLimitOf('/v1/audio/translations', limits)).toEqual({ bytes: 300, what: 'The audio upload' });
    expect(formLimitOf('/v1/images/edits', limits)).toEqual({ bytes: 500, what: 'The image edit' });
    for (const route of ['/v1/images/generations', '/v1/audio/speech', '/v1/chat/completions', undefined]) expect(formLimitOf(route, limits)).toEqual({ bytes: 100, what: 'The request body' });
  });

  it('takes filesBytes on file uploads (/v1/files), and bodyBytes there when it is not given', () => {
    expect(formLimitOf('/v1/files', { ...limits, filesBytes: 700 })).toEqual({ bytes: 700, what: 'The file' });
    expect(formLimitOf('/v1/files/:id', { ...limits, filesBytes: 700 })).toEqual({ bytes: 100, what: 'The request body' });
    expect(formLimitOf('/v1/files', limits)).toEqual({ bytes: 100, what: 'The request body' });
  });
});

describe('readBounded', () => {
  const limit = { bytes: 10, what: 'The audio upload' };
  /** A body sent in chunks, noting how many were read. */
  function body(chunks: string[]): { stream: AsyncIterable<Buffer>; read: () => number } {
    let read = 0;
    return {
      stream: (async function* () {
        for (const chunk of chunks) {
          read++;
          yield Buffer.from(chunk);
        }
      })(),
      read: () => read,
    };
  }

  it('reads a body up to its limit whole', async () => {
    expect((await readBounded(body(['0123', '45678', '9']).stream, '10', limit)).toString()).toBe('0123456789');
    expect((await readBounded(body(['abc']).stream, undefined, limit)).toString()).toBe('abc');
  });

  it('reads a body into memory of its own, never a slice of the shared pool its files would expose', async () => {
    const read = await readBounded(body(['ab', 'c']).stream, undefined, limit);
    expect(read.byteOffset).toBe(0);
    expect(read.buffer.byteLength).toBe(3);
  });

  it('reads a body of a declared length, in any chunks, into memory of its own of exactly its size, whether it sends what it declared, less or more', async () => {
    for (const [chunks, declared] of [
      [['0123', '45678', '9'], '10'],
      [['01', '234'], '7'],
      [['0123', '4'], '3'],
      [['', '012'], '3'],
    ] as const) {
      const read = await readBounded(body([...chunks]).stream, declared, limit);
      expect(read.toString()).toBe(chunks.join(''));
      expect(read.byteOffset).toBe(0);
      expect(read.buffer.byteLength).toBe(read.length);
    }
  });

  it('takes memory for the length a body declares only once half of it has come: one that declares much and sends little holds what it sent', async () => {
    const allocated: number[] = [];
    const alloc = jest.spyOn(Buffer, 'allocUnsafeSlow').mockImplementation((size: number) => {
      allocated.push(size);
      return Buffer.from(new ArrayBuffer(size));
    });
    try {
      const large = { bytes: 1_000, what: 'The file' };
      const little = await readBounded(body(['a'.repeat(100), 'b'.repeat(100), 'c'.repeat(100)]).stream, '1000', large);
      expect(little.length).toBe(300);
      expect(allocated).toEqual([300]);
      allocated.length = 0;
      const whole = await readBounded(body(['a'.repeat(400), 'b'.repeat(200), 'c'.repeat(400)]).stream, '1000', large);
      expect(whole.toString()).toBe('a'.repeat(400) + 'b'.repeat(200) + 'c'.repeat(400));
      // The declared length once, when 600 of its 1 000 bytes had come, and nothing after.
      expect(allocated).toEqual([1_000]);
    } finally {
      alloc.mockRestore();
    }
  });

  it('refuses a body declaring more than its limit before reading any of it, and one sending more as the byte over arrives', async () => {
    const declared = body(['0123456789', 'x']);
    await expect(readBounded(declared.stream, '11', limit)).rejects.toMatchObject({ code: 'request_too_large', message: 'The audio upload is too large: at most 10 bytes are accepted.' });
    expect(declared.read()).toBe(0);
    const sent = body(['0123', '4567', '89x', 'never read']);
    await expect(readBounded(sent.stream, undefined, limit)).rejects.toMatchObject({ code: 'request_too_large' });
    expect(sent.read()).toBe(3);
    // A length that says less than is sent is no licence to send more.
    await expect(readBounded(body(['0123456789', 'x']).stream, '5', limit)).rejects.toMatchObject({ code: 'request_too_large' });
  });
});

describe('readForm', () => {
  const limits = { audioBytes: 1_000, imageEditBytes: 1_000, bodyBytes: 1_000, filesBytes: 1_000 };
  const GOOD = 'sk-good';
  const record = { id: 'key-1' } as ApiKeyRecord;
  const access: UploaderKeys & { internal: string; refusedFrom: string | undefined } = {
    internal: 'secret.key-1',
    refusedFrom: undefined,
    keyOf: async (presented) => (presented === GOOD ? record : undefined),
    async keyOfInternalCall(header) {
      return header === this.internal ? record : undefined;
    },
    async requireAllowedAddress(_record, address) {
      if (address === this.refusedFrom) throw new GatewayError('permission_denied', 'not from here', { code: 'ip_not_allowed' });
    },
    clients: { of: (raw: IncomingMessage) => raw.socket.remoteAddress } as UploaderKeys['clients'],
  };

  /** A request to `url` with these headers, from 203.0.113.7, and a body that counts the chunks read of it. */
  async function send(url: string, headers: Record<string, string>): Promise<{ result: Promise<Record<string, unknown>>; read: () => number }> {
    const { body, contentType } = await encoded(new FormData());
    let read = 0;
    const payload = (async function* () {
      read++;
      yield Buffer.from(body);
    })();
    const request = { routeOptions: { url }, headers: { 'content-type': contentType, ...headers }, raw: { socket: { remoteAddress: '203.0.113.7' } } } as unknown as FormRequest;
    return { result: readForm(request, payload, limits, access), read: () => read };
  }

  it.each(['/v1/audio/transcriptions', '/v1/audio/translations', '/v1/images/edits', '/v1/files'])('on %s, refuses a caller without a good key before reading a byte of its body', async (url) => {
    for (const [headers, code] of [
      [{}, 'missing_api_key'],
      [{ authorization: 'Bearer sk-wrong' }, 'invalid_api_key'],
      [{ 'x-api-key': 'sk-wrong' }, 'invalid_api_key'],
      [{ [INTERNAL_CALL_HEADER]: 'forged.key-1' }, 'invalid_api_key'],
    ] as const) {
      const { result, read } = await send(url, headers);
      await expect(result).rejects.toMatchObject({ kind: 'auth_failed', code });
      expect(read()).toBe(0);
    }
    access.refusedFrom = '203.0.113.7';
    try {
      const refused = await send(url, { authorization: `Bearer ${GOOD}` });
      await expect(refused.result).rejects.toMatchObject({ kind: 'permission_denied', code: 'ip_not_allowed' });
      expect(refused.read()).toBe(0);
    } finally {
      access.refusedFrom = undefined;
    }
  });

  it('reads the form of a good key (or of this process’s own call), and any route’s form for its guards to judge', async () => {
    const callers: Array<Record<string, string>> = [{ authorization: `Bearer ${GOOD}` }, { 'x-api-key': GOOD }, { [INTERNAL_CALL_HEADER]: access.internal }];
    for (const headers of callers) {
      const { result, read } = await send('/v1/audio/transcriptions', headers);
      await expect(result).resolves.toEqual({});
      expect(read()).toBe(1);
    }
    // Not an upload route: no larger than a JSON body, read as one is.
    const other = await send('/v1/chat/completions', {});
    await expect(other.result).resolves.toEqual({});
  });
});

