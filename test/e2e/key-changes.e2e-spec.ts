import { randomBytes } from 'node:crypto';
import OpenAI from 'openai';
import { sharedRedisUrl } from '../support/infra/shared-infra';
import { waitFor } from '../support/infra/wait-for';
import { startTestGateway, type TestGateway } from '../support/test-gateway';
import { TEST_ADMIN_KEY } from '../support/test-config';

const messages = [{ role: 'user' as const, content: 'hi' }];

describe('changing and rotating a key, seen through the openai SDK', () => {
  let gw: TestGateway;

  beforeAll(async () => {
    gw = await startTestGateway({
      configure: (doc) => {
        doc['access'] = { ...(doc['access'] as object), redis: { url: sharedRedisUrl(), keyPrefix: `key-changes-e2e-${randomBytes(4).toString('hex')}:` } };
      },
    });
  }, 120_000);
  afterAll(async () => gw?.close());

  async function admin(method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
    const headers: Record<string, string> = { authorization: `Bearer ${TEST_ADMIN_KEY}` };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const response = await fetch(`${gw.url}/admin/v1${path}`, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    return { status: response.status, json: (await response.json()) as Record<string, unknown> };
  }

  const client = (apiKey: string) => new OpenAI({ apiKey, baseURL: gw.baseURL, maxRetries: 0 });

  /** The status the gateway answers a chat completion with this key and model (200: it answered). */
  async function status(apiKey: string, model = 'gpt-4o-mini'): Promise<number> {
    try {
      await client(apiKey).chat.completions.create({ model, messages });
      return 200;
    } catch (error) {
      if (error instanceof OpenAI.APIError && error.status !== undefined) return error.status;
      throw error;
    }
  }

  it('enforces allowed_models changed by PATCH on the key in use, keeping the key', async () => {
    const issued = await admin('POST', '/keys', { org: 'default', project: 'default', name: 'sdk' });
    expect(issued.status).toBe(201);
    const key = String(issued.json['key']);
    const id = String(issued.json['id']);
    expect((await client(key).chat.completions.create({ model: 'gpt-4o-mini', messages })).choices[0]?.message.content).toEqual(expect.any(String));

    const patched = await admin('PATCH', `/keys/${id}`, { allowed_models: ['vendor/model-with-slash'] });
    expect(patched.status).toBe(200);
    expect(patched.json).toMatchObject({ id, allowed_models: ['vendor/model-with-slash'] });
    const refused = await client(key)
      .chat.completions.create({ model: 'gpt-4o-mini', messages })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(refused).toBeInstanceOf(OpenAI.NotFoundError);
    expect(refused).toMatchObject({ status: 404, code: 'model_not_found' });
    expect(await status(key, 'vendor/model-with-slash')).toBe(200);

    // Refused clearly, in OpenAI's error shape: a model no request can name, a field that places the key.
    const typo = await admin('PATCH', `/keys/${id}`, { allowed_models: ['gpt-4o-mni'] });
    expect(typo.status).toBe(400);
    expect(typo.json['error']).toMatchObject({ type: 'invalid_request_error', code: 'invalid_value', param: 'allowed_models[0]' });
    const moved = await admin('PATCH', `/keys/${id}`, { project: 'other' });
    expect(moved.status).toBe(400);
    expect(moved.json['error']).toMatchObject({ code: 'immutable_field', param: 'project' });
  });

  it('keeps the old secret working during the grace and refuses it (401) after, under the same key id', async () => {
    const issued = await admin('POST', '/keys', { org: 'default', project: 'default', name: 'rotating' });
    const id = String(issued.json['id']);
    const first = String(issued.json['key']);
    expect(await status(first)).toBe(200);

    const rotated = await admin('POST', `/keys/${id}/rotate`, { grace_seconds: 3_600 });
    expect(rotated.status).toBe(200);
    expect(rotated.json).toMatchObject({ id, object: 'api_key' });
    const second = String(rotated.json['key']);
    expect(second).toMatch(/^sk-or-v1-/);
    expect(await status(first)).toBe(200);
    expect(await status(second)).toBe(200);

    // A grace of one second: the second secret is refused once it is over; the first at once (two at most).
    const third = String((await admin('POST', `/keys/${id}/rotate`, { grace_seconds: 1 })).json['key']);
    expect(await status(first)).toBe(401);
    expect(await status(third)).toBe(200);
    await waitFor(async () => (await status(second)) === 401, { timeoutMs: 15_000, intervalMs: 100, what: 'the replaced secret to be refused once its grace ended' });
    const refused = await client(second)
      .chat.completions.create({ model: 'gpt-4o-mini', messages })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(refused).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(await status(third)).toBe(200);

    // No grace: refused at once.
    const fourth = String((await admin('POST', `/keys/${id}/rotate`, { grace_seconds: 0 })).json['key']);
    expect(await status(third)).toBe(401);
    expect(await status(fourth)).toBe(200);

    // One key all along: listed once, its trail under one id.
    const audit = await admin('GET', `/audit?target=${id}`);
    expect((audit.json['data'] as Array<{ action: string }>).map((e) => e.action)).toEqual(['key.rotate', 'key.rotate', 'key.rotate', 'key.issue']);
    const rotations = await admin('POST', `/keys/${id}/rotate`, { grace_seconds: 604_801 });
    expect(rotations.status).toBe(400);
    expect(rotations.json['error']).toMatchObject({ param: 'grace_seconds', code: 'invalid_value' });
  });
});
