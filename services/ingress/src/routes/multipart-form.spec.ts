import { GatewayError } from '@openrouter/errors';
import { isFormBody } from '@openrouter/openai-wire';
import { formLimitOf, readBounded, readMultipartForm } from './multipart-form';

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
