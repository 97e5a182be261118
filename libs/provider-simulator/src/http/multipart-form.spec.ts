import { describeForm, isUploadedFile, parseMultipartForm } from './multipart-form';

async function encode(form: FormData): Promise<{ body: Buffer; contentType: string }> {
  const request = new Request('http://simulator/', { method: 'POST', body: form });
  return { body: Buffer.from(await request.arrayBuffer()), contentType: request.headers.get('content-type') ?? '' };
}

describe('parseMultipartForm', () => {
  it('reads text fields, a file with its name, type and bytes, and repeated or [] fields as lists', async () => {
    const form = new FormData();
    form.append('file', new Blob([new Uint8Array([1, 2, 3])], { type: 'audio/wav' }), 'clip.wav');
    form.append('model', 'whisper-1');
    form.append('timestamp_granularities[]', 'word');
    form.append('include[]', 'logprobs');
    form.append('timestamp_granularities[]', 'segment');
    form.append('prompt', 'a');
    form.append('prompt', 'b');
    const { body, contentType } = await encode(form);
    const parsed = await parseMultipartForm(body, contentType);
    if (!parsed.ok) throw new Error(parsed.message);
    const { file, ...text } = parsed.fields;
    expect(isUploadedFile(file)).toBe(true);
    expect(file).toEqual({ name: 'clip.wav', type: 'audio/wav', bytes: new Uint8Array([1, 2, 3]) });
    expect(text).toEqual({ model: 'whisper-1', 'timestamp_granularities[]': ['word', 'segment'], 'include[]': ['logprobs'], prompt: ['a', 'b'] });
    expect(describeForm(parsed.fields)).toEqual({ ...text, file: { name: 'clip.wav', type: 'audio/wav', size: 3 } });
  });

  it("refuses another content type in OpenAI's words, and a body that is not the form its boundary says", async () => {
    const json = await parseMultipartForm(Buffer.from('{"model":"whisper-1"}'), 'application/json');
    expect(json).toEqual({ ok: false, message: expect.stringMatching(/^Invalid Content-Type header \(application\/json\), expected multipart\/form-data/) });
    expect(await parseMultipartForm(Buffer.from('x'), undefined)).toMatchObject({ ok: false, message: expect.stringContaining('(none)') });
    expect(await parseMultipartForm(Buffer.from('model=whisper-1'), 'application/x-www-form-urlencoded')).toMatchObject({ ok: false });
    expect(await parseMultipartForm(Buffer.from('garbage'), 'multipart/form-data; boundary=xyz')).toEqual({ ok: false, message: 'Could not parse multipart form.' });
  });
});
