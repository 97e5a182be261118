import { createLogger } from '@openrouter/observability';
import { hashApiKey } from '../access/api-key';
import { startIngress, type IngressHandle } from '../index';
import type { RouterCalls } from '../router.port';
import { ingressTestConfig } from '../test-config.testing';
import { requestTags } from './batches.http.controller';

const SECRET = 'files-controller-spec-secret';
const SEARCH_KEY = 'sk-or-v1-files-spec-search-000000000000';
const SEARCH_OTHER_KEY = 'sk-or-v1-files-spec-search-111111111111';
const ADS_KEY = 'sk-or-v1-files-spec-ads-0000000000000000';
const MAX_FILE_BYTES = 16 * 1024;
/** Below the files' limit: an upload is held to its own. */
const BODY_BYTES = 8 * 1024;
const RETENTION_DAYS = 7;

interface ErrorBody {
  message: string;
  type: string;
  param: string | null;
  code: string | null;
}

interface FileObject {
  id: string;
  object: string;
  bytes: number;
  created_at: number;
  filename: string;
  purpose: string;
  status: string;
  expires_at: number;
  status_details: null;
}

function config(batches: Record<string, unknown> = {}) {
  return ingressTestConfig({
    ingress: { http: { host: '127.0.0.1', port: 0 }, router: '127.0.0.1:1', devKey: 'disabled', limits: { bodyBytes: BODY_BYTES } },
    access: {
      keyHashSecret: SECRET,
      orgs: [{ id: 'acme', teams: [{ id: 'platform', projects: [{ id: 'search' }, { id: 'ads' }] }] }],
      keys: [
        { id: 'search-1', hash: hashApiKey(SECRET, SEARCH_KEY), prefix: 'sk-or-v1-fil', org: 'acme', project: 'search' },
        { id: 'search-2', hash: hashApiKey(SECRET, SEARCH_OTHER_KEY), prefix: 'sk-or-v1-fil', org: 'acme', project: 'search' },
        { id: 'ads-1', hash: hashApiKey(SECRET, ADS_KEY), prefix: 'sk-or-v1-fil', org: 'acme', project: 'ads' },
      ],
    },
    batches: { maxFileBytes: MAX_FILE_BYTES, fileRetentionDays: RETENTION_DAYS, ...batches },
  });
}

/** A Files API upload form: `file` as `[bytes, filename]` (omitted when undefined), then the text fields. */
function form(file: [Buffer, string] | undefined, fields: Record<string, string | string[]> = { purpose: 'batch' }): FormData {
  const data = new FormData();
  if (file) data.append('file', new Blob([file[0]], { type: 'application/jsonl' }), file[1]);
  for (const [name, value] of Object.entries(fields)) for (const v of Array.isArray(value) ? value : [value]) data.append(name, v);
  return data;
}

const LINES = Buffer.from('{"custom_id":"r1","method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[{"role":"user","content":"hi"}]}}\n');

async function start(batches: Record<string, unknown> = {}): Promise<{ ingress: IngressHandle; call: (method: string, path: string, body?: FormData | string, key?: string) => Promise<Response> }> {
  // No request reaches the router: files call no model.
  const ingress = await startIngress(config(batches), createLogger('files-spec', 'silent'), { router: {} as RouterCalls });
  const base = `http://127.0.0.1:${ingress.httpPort}`;
  const call = (method: string, path: string, body?: FormData | string, key = SEARCH_KEY): Promise<Response> =>
    fetch(`${base}${path}`, { method, headers: { authorization: `Bearer ${key}`, ...(typeof body === 'string' ? { 'content-type': 'application/json' } : {}) }, body });
  return { ingress, call };
}

async function errorOf(response: Response): Promise<{ status: number; error: ErrorBody }> {
  const body = (await response.json()) as { error: ErrorBody };
  return { status: response.status, error: body.error };
}

describe('the Files API at ingress', () => {
  let ingress: IngressHandle;
  let call: (method: string, path: string, body?: FormData | string, key?: string) => Promise<Response>;

  beforeAll(async () => {
    ({ ingress, call } = await start());
  });
  afterAll(async () => {
    await ingress?.close();
  });

  async function upload(bytes = LINES, filename = 'in.jsonl', key = SEARCH_KEY): Promise<FileObject> {
    const response = await call('POST', '/v1/files', form([bytes, filename]), key);
    expect(response.status).toBe(200);
    return (await response.json()) as FileObject;
  }

  it("takes a batch file and answers OpenAI's FileObject, kept batches.fileRetentionDays", async () => {
    const before = Math.floor(Date.now() / 1000);
    const response = await call('POST', '/v1/files', form([LINES, 'requests.jsonl']));
    expect(response.status).toBe(200);
    const file = (await response.json()) as FileObject;
    expect(file).toEqual({
      id: expect.stringMatching(/^file-[0-9A-Za-z]{24}$/),
      object: 'file',
      bytes: LINES.length,
      created_at: expect.any(Number),
      filename: 'requests.jsonl',
      purpose: 'batch',
      status: 'processed',
      expires_at: file.created_at + RETENTION_DAYS * 86_400,
      status_details: null,
    });
    expect(file.created_at).toBeGreaterThanOrEqual(before);
    expect(file.created_at).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000));
  });

  it('retrieves it, downloads its exact bytes with its name, lists it and deletes it', async () => {
    const bytes = Buffer.from([0x00, 0xff, 0x80, 0x0a, 0xe2, 0x82, 0xac]);
    const file = await upload(bytes, 'résumé "v2".jsonl');
    // The longest name an upload may have.
    expect((await upload(bytes, `${'é'.repeat(249)}.jsonl`)).filename).toHaveLength(255);
    expect(await (await call('GET', `/v1/files/${file.id}`)).json()).toEqual(file);

    const content = await call('GET', `/v1/files/${file.id}/content`);
    expect(content.status).toBe(200);
    expect(content.headers.get('content-type')).toBe('application/octet-stream');
    expect(content.headers.get('content-disposition')).toBe(`attachment; filename="r_sum_ _v2_.jsonl"; filename*=UTF-8''${encodeURIComponent('résumé "v2".jsonl')}`);
    expect(Buffer.from(await content.arrayBuffer())).toEqual(bytes);

    const list = (await (await call('GET', '/v1/files')).json()) as { object: string; data: FileObject[]; first_id: string; last_id: string; has_more: boolean };
    expect(list.object).toBe('list');
    expect(list.data).toContainEqual(file);
    expect(list.first_id).toBe(list.data[0]?.id);
    expect(list.last_id).toBe(list.data.at(-1)?.id);
    expect(list.has_more).toBe(false);

    const deleted = await call('DELETE', `/v1/files/${file.id}`);
    expect([deleted.status, await deleted.json()]).toEqual([200, { id: file.id, object: 'file', deleted: true }]);
    for (const [method, path] of [
      ['GET', `/v1/files/${file.id}`],
      ['GET', `/v1/files/${file.id}/content`],
      ['DELETE', `/v1/files/${file.id}`],
    ] as const) {
      expect(await errorOf(await call(method, path))).toEqual({ status: 404, error: { message: `No such File object: ${file.id}`, type: 'invalid_request_error', param: 'id', code: 'file_not_found' } });
    }
  });

  it("shows a file to every key of its project and to no other project's key", async () => {
    const file = await upload();
    expect((await call('GET', `/v1/files/${file.id}`, undefined, SEARCH_OTHER_KEY)).status).toBe(200);
    for (const [method, path] of [
      ['GET', `/v1/files/${file.id}`],
      ['GET', `/v1/files/${file.id}/content`],
      ['DELETE', `/v1/files/${file.id}`],
    ] as const) {
      expect((await errorOf(await call(method, path, undefined, ADS_KEY))).error.code).toBe('file_not_found');
    }
    const theirs = (await (await call('GET', '/v1/files', undefined, ADS_KEY)).json()) as { data: FileObject[] };
    expect(theirs.data.map((f) => f.id)).not.toContain(file.id);
    // Still there for its own project.
    expect((await call('GET', `/v1/files/${file.id}`)).status).toBe(200);
  });

  it('pages the list with limit, after and order, and filters it by purpose', async () => {
    const ads = [await upload(LINES, 'a.jsonl', ADS_KEY), await upload(LINES, 'b.jsonl', ADS_KEY), await upload(LINES, 'c.jsonl', ADS_KEY)];
    type Page = { data: FileObject[]; first_id: string | null; last_id: string | null; has_more: boolean };
    const page = async (query: string): Promise<Page> => (await (await call('GET', `/v1/files${query}`, undefined, ADS_KEY)).json()) as Page;
    const all = await page('?order=asc');
    expect(all.data.map((f) => f.id).sort()).toEqual(ads.map((f) => f.id).sort());
    const desc = (await page('')).data.map((f) => f.id);
    expect(desc).toEqual([...all.data.map((f) => f.id)].reverse());
    const first = await page('?limit=2&order=asc');
    expect([first.data.map((f) => f.id), first.has_more]).toEqual([all.data.slice(0, 2).map((f) => f.id), true]);
    const next = await page(`?limit=2&order=asc&after=${first.last_id}`);
    expect([next.data.map((f) => f.id), next.has_more]).toEqual([all.data.slice(2).map((f) => f.id), false]);
    expect((await page('?purpose=batch')).data).toHaveLength(3);
    expect(await page('?purpose=batch_output')).toEqual({ object: 'list', data: [], first_id: null, last_id: null, has_more: false });
    // A purpose this gateway keeps no files of lists nothing, as OpenAI's would for a project without such files.
    expect((await page('?purpose=fine-tune')).data).toEqual([]);
  });

  it.each([
    ['limit=0', 'limit'],
    ['limit=10001', 'limit'],
    ['limit=ten', 'limit'],
    ['limit=1.5', 'limit'],
    ['order=sideways', 'order'],
    ['after=', 'after'],
  ])('refuses a list query with %s: 400 naming %s', async (query, param) => {
    const { status, error } = await errorOf(await call('GET', `/v1/files?${query}`));
    expect([status, error.param, error.code, error.type]).toEqual([400, param, 'invalid_value', 'invalid_request_error']);
  });

  it.each([
    ['no file', 'file', 'missing_required_parameter', () => form(undefined)],
    ['no purpose', 'purpose', 'missing_required_parameter', () => form([LINES, 'in.jsonl'], {})],
    ['an empty purpose', 'purpose', 'missing_required_parameter', () => form([LINES, 'in.jsonl'], { purpose: '' })],
    ['an empty file', 'file', 'invalid_value', () => form([Buffer.alloc(0), 'in.jsonl'])],
    ['a text field for the file', 'file', 'invalid_type', () => form(undefined, { purpose: 'batch', file: 'not a file' })],
    ['two purposes', 'purpose', 'invalid_type', () => form([LINES, 'in.jsonl'], { purpose: ['batch', 'batch'] })],
    ['an unknown purpose', 'purpose', 'invalid_value', () => form([LINES, 'in.jsonl'], { purpose: 'snacks' })],
    ['the output purpose, which only batches write', 'purpose', 'invalid_value', () => form([LINES, 'in.jsonl'], { purpose: 'batch_output' })],
    // Its download's Content-Disposition would carry it twice, percent-encoded: 2 500 × "é" was a 40 kB header.
    ['a filename longer than 255 characters', 'file', 'invalid_value', () => form([LINES, `${'é'.repeat(250)}.jsonl`])],
  ])('refuses an upload with %s: 400 naming %s (%s)', async (_, param, code, body) => {
    const { status, error } = await errorOf(await call('POST', '/v1/files', body()));
    expect([status, error.param, error.code, error.type]).toEqual([400, param, code, 'invalid_request_error']);
  });

  it.each(['assistants', 'fine-tune', 'vision', 'user_data', 'evals'])("refuses OpenAI's purpose %s: only batch files are kept here", async (purpose) => {
    const { status, error } = await errorOf(await call('POST', '/v1/files', form([LINES, 'in.jsonl'], { purpose })));
    expect([status, error.param, error.code]).toEqual([400, 'purpose', 'unsupported_value']);
    expect(error.message).toMatch(/only batch files/);
  });

  it('refuses an upload that is not a form: 400, the file asked for', async () => {
    const { status, error } = await errorOf(await call('POST', '/v1/files', JSON.stringify({ file: 'x', purpose: 'batch' })));
    expect([status, error.param, error.code]).toEqual([400, 'file', 'invalid_content_type']);
  });

  it('refuses a form larger than batches.maxFileBytes with 413 request_too_large, and takes one under it that is over bodyBytes', async () => {
    const { status, error } = await errorOf(await call('POST', '/v1/files', form([Buffer.alloc(MAX_FILE_BYTES, 0x61), 'big.jsonl'])));
    expect([status, error.code]).toEqual([413, 'request_too_large']);
    expect(error.message).toBe(`The file is too large: at most ${MAX_FILE_BYTES} bytes are accepted.`);
    // Over ingress.limits.bodyBytes, which the Files route does not go by.
    expect((await upload(Buffer.alloc(MAX_FILE_BYTES - 1024, 0x61))).bytes).toBe(MAX_FILE_BYTES - 1024);
  });

  it('answers 401 without a valid key, before anything is stored or read', async () => {
    for (const [method, path] of [
      ['GET', '/v1/files'],
      ['POST', '/v1/files'],
      ['GET', '/v1/files/file-x'],
    ] as const) {
      const response = await call(method, path, method === 'POST' ? form([LINES, 'in.jsonl']) : undefined, 'sk-or-v1-nobody');
      expect(response.status).toBe(401);
      expect((await errorOf(response)).error.code).toBe('invalid_api_key');
    }
  });
});

describe('the Batch API at ingress: ids', () => {
  it('answers 404 batch_not_found, as OpenAI does, for an id the gateway never gives (another key of a batch among them), on retrieve and cancel', async () => {
    const { ingress, call } = await start();
    try {
      const id = `batch_${'A'.repeat(24)}`;
      for (const bad of [`${id}:claim`, `${id}:results`, `${id}:input`, 'batch_x', 'file-abc', `${id}0`]) {
        for (const [method, path] of [
          ['GET', `/v1/batches/${encodeURIComponent(bad)}`],
          ['POST', `/v1/batches/${encodeURIComponent(bad)}/cancel`],
        ] as const) {
          expect([path, await errorOf(await call(method, path))]).toEqual([path, { status: 404, error: { message: `No such Batch object: ${bad}`, type: 'invalid_request_error', param: 'id', code: 'batch_not_found' } }]);
        }
      }
    } finally {
      await ingress.close();
    }
  });

  it("gives a batch's lines the creating request's own tags, not those its key adds again to each line", () => {
    expect(requestTags({ team: 'search', env: 'prod', cost: 'c1' }, { team: 'search', cost: 'other' })).toEqual({ env: 'prod' });
    // A tag named as an object's own property is a tag like any other.
    expect(requestTags({ constructor: 'x', toString: 'y' }, {})).toEqual({ constructor: 'x', toString: 'y' });
  });
});

describe('the Files API with batches.enabled false', () => {
  it('answers 404 on every route of the Files and Batch APIs, saying they are off', async () => {
    const { ingress, call } = await start({ enabled: false });
    try {
      for (const [method, path, body, api] of [
        ['POST', '/v1/files', form([LINES, 'in.jsonl']), 'Files'],
        ['GET', '/v1/files', undefined, 'Files'],
        ['GET', '/v1/files/file-x', undefined, 'Files'],
        ['GET', '/v1/files/file-x/content', undefined, 'Files'],
        ['DELETE', '/v1/files/file-x', undefined, 'Files'],
        ['POST', '/v1/batches', JSON.stringify({ input_file_id: 'file-x', endpoint: '/v1/chat/completions', completion_window: '24h' }), 'Batch'],
        ['GET', '/v1/batches', undefined, 'Batch'],
        ['GET', '/v1/batches/batch_x', undefined, 'Batch'],
        ['POST', '/v1/batches/batch_x/cancel', undefined, 'Batch'],
      ] as const) {
        const { status, error } = await errorOf(await call(method, path, body));
        expect([path, status, error.code, error.message]).toEqual([path, 404, 'batches_disabled', `The ${api} API is not enabled on this gateway (batches.enabled is false).`]);
      }
    } finally {
      await ingress.close();
    }
  });
});
