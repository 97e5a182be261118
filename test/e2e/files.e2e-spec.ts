import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import OpenAI, { toFile } from 'openai';
import { hashApiKey } from '@openrouter/ingress';
import { apiError } from '../support/api-error';
import { sharedRedisUrl } from '../support/infra/shared-infra';
import { startTestGateway, type TestGateway } from '../support/test-gateway';

/**
 * OpenAI's Files API (the storage of batches) through the whole gateway with the official SDK:
 * upload, retrieve, list, download and delete a batch file, every way an upload is refused, and
 * a project's files kept from every other project's keys; with the files in this process (no
 * Redis) and in the access store's Redis.
 */

const SECRET = 'files-e2e-hash-secret';
const SEARCH_KEY = 'sk-or-v1-files-e2e-search-00000000000000';
const SEARCH_OTHER_KEY = 'sk-or-v1-files-e2e-search-11111111111111';
const ADS_KEY = 'sk-or-v1-files-e2e-ads-000000000000000000';
const MAX_FILE_BYTES = 64 * 1024;

const LINES = [
  { custom_id: 'r1', method: 'POST', url: '/v1/chat/completions', body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] } },
  { custom_id: 'r2', method: 'POST', url: '/v1/chat/completions', body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'héllo ✓' }] } },
]
  .map((line) => JSON.stringify(line))
  .join('\n');

function configure(redis: { url: string; keyPrefix: string } | undefined) {
  return (doc: Record<string, unknown>): void => {
    doc['access'] = {
      ...(doc['access'] as object),
      keyHashSecret: SECRET,
      ...(redis ? { redis } : {}),
      orgs: [
        { id: 'default', teams: [{ id: 'default', projects: [{ id: 'default' }] }] },
        { id: 'acme', teams: [{ id: 'platform', projects: [{ id: 'search' }, { id: 'ads' }] }] },
      ],
      keys: [
        { id: 'search-1', hash: hashApiKey(SECRET, SEARCH_KEY), prefix: 'sk-or-v1-fil', org: 'acme', project: 'search' },
        { id: 'search-2', hash: hashApiKey(SECRET, SEARCH_OTHER_KEY), prefix: 'sk-or-v1-fil', org: 'acme', project: 'search' },
        { id: 'ads-1', hash: hashApiKey(SECRET, ADS_KEY), prefix: 'sk-or-v1-fil', org: 'acme', project: 'ads' },
      ],
    };
    doc['batches'] = { maxFileBytes: MAX_FILE_BYTES };
  };
}

describe.each([
  ['in this process', false],
  ['in Redis', true],
])('the Files API through the gateway, files kept %s', (_, withRedis) => {
  let gw: TestGateway;
  let search: OpenAI;
  const keyPrefix = `files-e2e-${randomBytes(4).toString('hex')}:`;

  beforeAll(async () => {
    gw = await startTestGateway({ configure: configure(withRedis ? { url: sharedRedisUrl(), keyPrefix } : undefined) });
    search = gw.client({ apiKey: SEARCH_KEY });
  });
  afterAll(async () => {
    await gw?.close();
  });

  it('uploads a batch file, retrieves it, lists it, downloads exactly what was sent and deletes it', async () => {
    const created = await search.files.create({ file: await toFile(Buffer.from(LINES), 'in.jsonl'), purpose: 'batch' });
    expect(created).toMatchObject({ object: 'file', bytes: Buffer.byteLength(LINES), filename: 'in.jsonl', purpose: 'batch', status: 'processed', status_details: null });
    expect(created.id).toMatch(/^file-[0-9A-Za-z]{24}$/);
    expect(created.expires_at).toBe(created.created_at + 30 * 86_400);

    expect(await search.files.retrieve(created.id)).toEqual(created);
    if (withRedis) {
      // Kept in the access store's Redis, under its prefix, the content sealed.
      const redis = new Redis(sharedRedisUrl());
      try {
        const sealed = await redis.get(`${keyPrefix}file:${created.id}:content`);
        expect(sealed).toEqual(expect.any(String));
        expect(sealed).not.toContain('custom_id');
      } finally {
        await redis.quit();
      }
    }
    const listed: string[] = [];
    for await (const file of search.files.list()) listed.push(file.id);
    expect(listed).toContain(created.id);

    const content = await search.files.content(created.id);
    expect(content.headers.get('content-type')).toBe('application/octet-stream');
    expect(await content.text()).toBe(LINES);

    expect(await search.files.delete(created.id)).toEqual({ id: created.id, object: 'file', deleted: true });
    const gone = await apiError(() => search.files.retrieve(created.id));
    expect(gone).toBeInstanceOf(OpenAI.NotFoundError);
    expect([gone.status, gone.code, gone.param, gone.message]).toEqual([404, 'file_not_found', 'id', `404 No such File object: ${created.id}`]);
    expect(await apiError(() => search.files.content(created.id))).toBeInstanceOf(OpenAI.NotFoundError);
    expect(await apiError(() => search.files.delete(created.id))).toBeInstanceOf(OpenAI.NotFoundError);
  });

  it("pages the project's files with the SDK's auto-pagination, newest first or oldest first", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await search.files.create({ file: await toFile(Buffer.from(`{"n":${i}}\n`), `page-${i}.jsonl`), purpose: 'batch' })).id);
    const walked = async (order: 'asc' | 'desc'): Promise<string[]> => {
      const seen: string[] = [];
      for await (const file of search.files.list({ limit: 2, order, purpose: 'batch' })) if (ids.includes(file.id)) seen.push(file.id);
      return seen;
    };
    const asc = await walked('asc');
    expect([...asc].sort()).toEqual([...ids].sort());
    expect(await walked('desc')).toEqual([...asc].reverse());
    const first = await search.files.list({ limit: 2 });
    expect(first.data).toHaveLength(2);
    expect(first.has_more).toBe(true);
  });

  it("deletes every file of the project in one walk of the SDK's auto-pagination, each file deleted as it is listed", async () => {
    for (let i = 0; i < 5; i++) await search.files.create({ file: await toFile(Buffer.from(`{"n":${i}}\n`), `gone-${i}.jsonl`), purpose: 'batch' });
    // Each next page is asked for after the last file of the one before: deleted by then.
    let deleted = 0;
    for await (const file of search.files.list({ limit: 2 })) {
      await search.files.delete(file.id);
      deleted++;
    }
    expect(deleted).toBeGreaterThanOrEqual(5);
    expect((await search.files.list()).data).toEqual([]);
  });

  it("keeps a project's file from every other project's key, and shows it to every key of its own", async () => {
    const file = await search.files.create({ file: await toFile(Buffer.from(LINES), 'private.jsonl'), purpose: 'batch' });
    const ads = gw.client({ apiKey: ADS_KEY });
    expect(await apiError(() => ads.files.retrieve(file.id))).toBeInstanceOf(OpenAI.NotFoundError);
    expect(await apiError(() => ads.files.content(file.id))).toBeInstanceOf(OpenAI.NotFoundError);
    expect(await apiError(() => ads.files.delete(file.id))).toBeInstanceOf(OpenAI.NotFoundError);
    const theirs: string[] = [];
    for await (const f of ads.files.list()) theirs.push(f.id);
    expect(theirs).not.toContain(file.id);
    // The development key has no project: it is its own owner, and sees none of acme's files.
    expect(await apiError(() => gw.client().files.retrieve(file.id))).toBeInstanceOf(OpenAI.NotFoundError);
    // Another key of the same project sees it.
    expect(await (await gw.client({ apiKey: SEARCH_OTHER_KEY }).files.content(file.id)).text()).toBe(LINES);
  });

  it("refuses a file for another purpose with 400 naming 'purpose'", async () => {
    const error = await apiError(async () => search.files.create({ file: await toFile(Buffer.from(LINES), 'in.jsonl'), purpose: 'fine-tune' }));
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect([error.status, error.code, error.param]).toEqual([400, 'unsupported_value', 'purpose']);
    expect(error.message).toMatch(/only batch files/);
  });

  it("keeps a file as long as its expires_after asks, within the retention, and refuses a bad one naming the field", async () => {
    const file = await search.files.create({ file: await toFile(Buffer.from(LINES), 'short.jsonl'), purpose: 'batch', expires_after: { anchor: 'created_at', seconds: 7_200 } });
    expect(file.expires_at).toBe(file.created_at + 7_200);
    expect((await search.files.retrieve(file.id)).expires_at).toBe(file.created_at + 7_200);
    const error = await apiError(async () => search.files.create({ file: await toFile(Buffer.from(LINES), 'in.jsonl'), purpose: 'batch', expires_after: { anchor: 'created_at', seconds: 60 } }));
    expect([error.status, error.code, error.param]).toEqual([400, 'invalid_value', 'expires_after.seconds']);
  });

  it('refuses a file larger than batches.maxFileBytes with 413, storing nothing', async () => {
    const before: string[] = [];
    for await (const f of search.files.list()) before.push(f.id);
    const error = await apiError(async () => search.files.create({ file: await toFile(Buffer.alloc(MAX_FILE_BYTES + 1, 0x61), 'big.jsonl'), purpose: 'batch' }));
    expect([error.status, error.code]).toEqual([413, 'request_too_large']);
    const after: string[] = [];
    for await (const f of search.files.list()) after.push(f.id);
    expect(after).toEqual(before);
  });
});
