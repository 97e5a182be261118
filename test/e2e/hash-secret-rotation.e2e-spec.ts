import { randomBytes } from 'node:crypto';
import OpenAI from 'openai';
import { waitFor } from '../support/infra/wait-for';
import { startTestGateway, type TestGateway } from '../support/test-gateway';
import { TEST_ADMIN_KEY } from '../support/test-config';

const A = 'the-first-key-hash-secret';
const B = 'the-second-key-hash-secret';

/** The redis-server the e2e project's global setup started. */
function redisUrl(): string {
  const url = process.env['OPENROUTER_TEST_REDIS_URL'];
  if (!url) throw new Error("OPENROUTER_TEST_REDIS_URL is not set: run this suite through jest's e2e project");
  return url;
}

describe('rotating access.keyHashSecret across restarts (openai SDK)', () => {
  const prefix = `hash-rotation-e2e-${randomBytes(4).toString('hex')}:`;
  let gateway: TestGateway | undefined;

  /** The gateway restarted with this hash configuration, on the same Redis. */
  async function restart(current: string, previous: string[]): Promise<TestGateway> {
    await gateway?.close();
    gateway = await startTestGateway({
      configure: (doc) => {
        doc['access'] = { ...(doc['access'] as object), keyHashSecret: current, previousKeyHashSecrets: previous, redis: { url: redisUrl(), keyPrefix: prefix } };
      },
    });
    return gateway;
  }
  afterAll(async () => {
    await gateway?.close();
  });

  async function issue(on: TestGateway, name: string): Promise<string> {
    const response = await fetch(`${on.url}/admin/v1/keys`, { method: 'POST', headers: { authorization: `Bearer ${TEST_ADMIN_KEY}`, 'content-type': 'application/json' }, body: JSON.stringify({ org: 'default', project: 'default', name }) });
    expect(response.status).toBe(201);
    return ((await response.json()) as { key: string }).key;
  }

  const ask = (on: TestGateway, apiKey: string) => on.client({ apiKey }).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] });

  it('keeps a key issued under the old secret working through the overlap, and after it once used; refuses one never used then', async () => {
    const first = await restart(A, []);
    const used = await issue(first, 'used during the overlap');
    const unused = await issue(first, 'idle during the overlap');
    expect((await ask(first, used)).choices[0]?.message.content).toEqual(expect.any(String));

    // The new secret current, the old one still accepted.
    const overlap = await restart(B, [A]);
    expect((await ask(overlap, used)).object).toBe('chat.completion');

    // The old secret dropped: the key used during the overlap was re-indexed; the idle one is unknown now.
    const after = await restart(B, []);
    expect((await ask(after, used)).object).toBe('chat.completion');
    const refused = await ask(after, unused).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(refused).toMatchObject({ status: 401, code: 'invalid_api_key' });
  });

  it('keeps what clients stored under the old secret readable through the overlap: responses, continued; chat completions, listed with those stored since', async () => {
    const first = await restart(A, []);
    const key = await issue(first, 'storing');
    const run = randomBytes(4).toString('hex');
    const response = await first.client({ apiKey: key }).responses.create({ model: 'gpt-4o-mini', input: 'Remember the number 7.' });
    const kept = await first.client({ apiKey: key }).chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Keep me.' }], store: true, metadata: { run } });
    // Kept after the answer went out: read back before the restart.
    const client = first.client({ apiKey: key });
    await waitFor(async () => (await client.chat.completions.list({ metadata: { run } })).data.length === 1, { timeoutMs: 10_000, intervalMs: 20, what: 'the completion to be kept' });

    const overlap = await restart(B, [A]);
    const rotated = overlap.client({ apiKey: key });
    expect((await rotated.responses.retrieve(response.id)).output_text).toBe(response.output_text);
    const next = await rotated.responses.create({ model: 'gpt-4o-mini', input: 'Which number?', previous_response_id: response.id });
    expect(next.previous_response_id).toBe(response.id);
    expect((await rotated.chat.completions.retrieve(kept.id)).id).toBe(kept.id);
    const since = await rotated.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'Keep me too.' }], store: true, metadata: { run } });
    const listed = await waitFor(
      async () => {
        const ids = (await rotated.chat.completions.list({ metadata: { run } })).data.map((completion) => completion.id);
        return ids.length === 2 ? ids : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 20, what: 'both completions to be listed' },
    );
    expect(listed).toEqual([kept.id, since.id]);
  });
});
