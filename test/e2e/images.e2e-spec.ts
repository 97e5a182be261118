import { apiError } from '../support/api-error';
import { startTestGateway, type TestGateway } from '../support/test-gateway';
import { usageRowOf } from '../support/usage-rows';

/**
 * `POST /v1/images/generations` through the whole gateway with the official SDK: GPT Image (token
 * usage, base64 images) and DALL·E 3 (URLs, no usage: priced per request), the prompt screened by
 * the guardrails, budgets that reserve each image whole, and every way it can fail.
 */
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47]);

function imageModels(doc: Record<string, unknown>): void {
  const models = doc['models'] as Array<Record<string, unknown>>;
  models.push(
    { id: 'gpt-image-1', capabilities: ['images'], pricing: { input: '5', output: '40' }, deployments: [{ id: 'sim-gpt-image', provider: 'simulated', model: 'gpt-image-1' }] },
    { id: 'dall-e-3', capabilities: ['images'], excludeFromAuto: true, pricing: { input: '0', output: '0', perRequest: '0.04' }, deployments: [{ id: 'sim-dalle', provider: 'simulated', model: 'dall-e-3' }] },
  );
}

describe('image generation through the gateway', () => {
  let gw: TestGateway;

  beforeAll(async () => {
    gw = await startTestGateway({
      configure: (doc) => {
        imageModels(doc);
        doc['guardrails'] = { rules: [{ id: 'emails', detect: 'email', action: 'redact' }, { id: 'codenames', terms: ['Project Falcon'], action: 'block' }], default: ['emails', 'codenames'] };
      },
    });
  });
  afterAll(async () => {
    await gw?.close();
  });
  beforeEach(() => gw.sim.reset());

  const usageRow = (id: string) =>
    usageRowOf<{ operation: string; served_model: string; status: string; cost: string; prompt_tokens: number; completion_tokens: number; tokens_estimated: boolean }>(gw, 'operation, served_model, status, toString(cost) AS cost, prompt_tokens, completion_tokens, tokens_estimated', id);

  it('makes GPT Image pictures as base64 PNGs and bills the tokens the provider reports', async () => {
    const { data: answer, response } = await gw.client().images.generate({ model: 'gpt-image-1', prompt: 'a red fox in the snow', n: 2, size: '1024x1024', quality: 'low' }).withResponse();
    expect(answer.data).toHaveLength(2);
    for (const image of answer.data ?? []) expect(Buffer.from(image.b64_json ?? '', 'base64').subarray(0, 4)).toEqual(PNG_SIGNATURE);
    expect(answer.usage?.output_tokens).toBeGreaterThan(0);
    expect(answer.usage?.input_tokens).toBeGreaterThan(0);
    expect(response.headers.get('x-openrouter-model')).toBe('gpt-image-1');
    // The provider got the upstream model and the parameters the gateway does not read.
    expect(gw.sim.requests().at(-1)).toMatchObject({ path: '/v1/images/generations', body: { model: 'gpt-image-1', n: 2, size: '1024x1024', quality: 'low' } });
    expect(gw.sim.requests().at(-1)?.body).not.toHaveProperty('max_tokens');
    const row = await usageRow(response.headers.get('x-request-id') ?? '');
    expect(row).toMatchObject({ operation: 'image', served_model: 'gpt-image-1', status: 'ok', prompt_tokens: answer.usage?.input_tokens, completion_tokens: answer.usage?.output_tokens, tokens_estimated: false });
    // 5 per 1M prompt tokens, 40 per 1M image tokens.
    const expected = ((answer.usage?.input_tokens ?? 0) * 5 + (answer.usage?.output_tokens ?? 0) * 40) / 1_000_000;
    expect(Number(row.cost)).toBeCloseTo(expected, 9);
    expect(Number(response.headers.get('x-openrouter-cost'))).toBeCloseTo(expected, 9);
  });

  it('serves DALL·E 3 as URLs the client can fetch, priced per request as it reports no usage', async () => {
    const { data: answer, response } = await gw.client().images.generate({ model: 'dall-e-3', prompt: 'a lighthouse at dusk', response_format: 'url' }).withResponse();
    const [image] = answer.data ?? [];
    expect(image?.url).toMatch(/^http/);
    expect(image?.revised_prompt).toBeTruthy();
    const fetched = await fetch(image?.url ?? '');
    expect(Buffer.from(await fetched.arrayBuffer()).subarray(0, 4)).toEqual(PNG_SIGNATURE);
    const row = await usageRow(response.headers.get('x-request-id') ?? '');
    expect(row).toMatchObject({ operation: 'image', served_model: 'dall-e-3', cost: '0.04', completion_tokens: 0, tokens_estimated: true });
  });

  it('sends a request without a model to an image model', async () => {
    const { response } = await gw.client().images.generate({ prompt: 'a small blue house' }).withResponse();
    expect(response.headers.get('x-openrouter-model')).toBe('gpt-image-1');
  });

  it('screens the prompt with the guardrails: redacted before the provider sees it, or refused', async () => {
    await gw.client().images.generate({ model: 'gpt-image-1', prompt: 'a poster with jane.doe@example.com on it' });
    expect(gw.sim.requests().at(-1)?.body).toMatchObject({ prompt: 'a poster with [REDACTED:emails] on it' });
    expect(await apiError(() => gw.client().images.generate({ model: 'gpt-image-1', prompt: 'the Project Falcon logo' }))).toMatchObject({ status: 400, code: 'content_policy_violation', param: 'prompt' });
    expect(gw.sim.requests()).toHaveLength(1);
  });

  it('refuses bad input with a 400 naming the field, before any provider call', async () => {
    const client = gw.client();
    expect(await apiError(() => client.images.generate({} as never))).toMatchObject({ status: 400, param: 'prompt' });
    expect(await apiError(() => client.images.generate({ model: 'gpt-image-1', prompt: 'x', n: 11 }))).toMatchObject({ status: 400, param: 'n' });
    expect(await apiError(() => client.images.generate({ model: 'gpt-image-1', prompt: 'x', stream: true } as never))).toMatchObject({ status: 400, param: 'stream' });
    expect(await apiError(() => client.images.generate({ model: 'gpt-4o-mini', prompt: 'x' }))).toMatchObject({ status: 400, code: 'model_not_supported', param: 'model' });
    expect(await apiError(() => client.images.generate({ model: 'no-such-model', prompt: 'x' }))).toMatchObject({ status: 404, code: 'model_not_found' });
    expect(gw.sim.requests()).toHaveLength(0);
  });

  it('passes the provider’s refusal of the request on, and maps its failures as for every call', async () => {
    const client = gw.client();
    // DALL·E 3 makes one image a request: the provider refuses n = 2.
    expect(await apiError(() => client.images.generate({ model: 'dall-e-3', prompt: 'two cats', n: 2 }))).toMatchObject({ status: 400 });
    gw.sim.configure({ faults: [{ kind: 'http_error', status: 500, path: 'images', remaining: 1 }] });
    const failed = await apiError(() => client.images.generate({ model: 'gpt-image-1', prompt: 'a cat' }));
    expect(failed.status).toBe(502);
    expect(await usageRow(failed.headers?.get('x-request-id') ?? '')).toMatchObject({ operation: 'image', status: 'error', cost: '0' });
  });
});

describe('image generation under a hard budget', () => {
  let gw: TestGateway;

  beforeAll(async () => {
    gw = await startTestGateway({
      configure: (doc) => {
        imageModels(doc);
        // Each GPT Image picture reserved at 6,240 tokens × 40 per 1M = 0.2496.
        doc['budgets'] = { maxOutputTokens: { 'gpt-image-1': 6240 }, list: [{ id: 'images-daily', scope: { org: 'default' }, period: 'daily', amount: '0.60', enforcement: 'hard' }] };
      },
    });
  });
  afterAll(async () => {
    await gw?.close();
  });

  it('reserves each image whole at its model’s maximum: refuses what could overspend before any provider call, and serves what fits', async () => {
    const client = gw.client();
    expect(await apiError(() => client.images.generate({ model: 'gpt-image-1', prompt: 'three birds', n: 3 }))).toMatchObject({ status: 402, code: 'budget_exceeded' });
    expect(gw.sim.requests()).toHaveLength(0);
    const served = await client.images.generate({ model: 'gpt-image-1', prompt: 'two birds', n: 2, quality: 'low' });
    expect(served.data).toHaveLength(2);
    // No token limit was added to the provider's request (the Images API has none).
    expect(gw.sim.requests().at(-1)?.body).not.toHaveProperty('max_tokens');
  });
});
