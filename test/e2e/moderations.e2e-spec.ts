import { apiError } from '../support/api-error';
import { startTestGateway, type TestGateway } from '../support/test-gateway';
import { usageRowOf } from '../support/usage-rows';

/**
 * `POST /v1/moderations` through the whole gateway with the official SDK, as an application calls
 * it: with or without a model, texts or an input of text and image parts, the route it took, its
 * usage record, guardrails, and every way it can fail.
 */
describe('moderations through the gateway', () => {
  let gw: TestGateway;

  beforeAll(async () => {
    gw = await startTestGateway({
      configure: (doc) => {
        const models = doc['models'] as Array<Record<string, unknown>>;
        models.push(
          { id: 'omni-moderation-latest', capabilities: ['moderation', 'vision'], pricing: { input: '0' }, deployments: [{ id: 'sim-omni', provider: 'simulated', model: 'omni-moderation-latest' }] },
          { id: 'text-moderation-priced', capabilities: ['moderation'], excludeFromAuto: true, pricing: { input: '0.50' }, deployments: [{ id: 'sim-text-mod', provider: 'simulated', model: 'text-moderation-latest' }] },
        );
        doc['guardrails'] = { rules: [{ id: 'emails', detect: 'email', action: 'redact' }, { id: 'cards', detect: 'credit_card', action: 'block' }], default: ['emails', 'cards'] };
      },
    });
  });
  afterAll(async () => {
    await gw?.close();
  });
  beforeEach(() => gw.sim.reset());

  const usageRow = (id: string) =>
    usageRowOf<{ operation: string; served_model: string; deployment: string; status: string; cost: string; prompt_tokens: number; tokens_estimated: boolean }>(gw, 'operation, served_model, deployment, status, toString(cost) AS cost, prompt_tokens, tokens_estimated', id);

  it('answers a request without a model, as the SDK sends it, from a moderation model, and meters it', async () => {
    const { data: answer, response } = await gw.client().moderations.create({ input: 'I will kill you if you come back here' }).withResponse();
    expect(answer.model).toBe('omni-moderation-latest');
    expect(answer.id).toMatch(/^modr-/);
    expect(answer.results).toHaveLength(1);
    const [result] = answer.results;
    expect(result?.flagged).toBe(true);
    expect(result?.categories.violence).toBe(true);
    expect(result?.category_scores.violence).toBeGreaterThan(0.5);
    expect(result?.categories.sexual).toBe(false);
    expect(response.headers.get('x-openrouter-model')).toBe('omni-moderation-latest');
    expect(response.headers.get('x-openrouter-deployment')).toBe('sim-omni');
    // The provider got the upstream model name and the text.
    expect(gw.sim.requests().at(-1)).toMatchObject({ path: '/v1/moderations', body: { model: 'omni-moderation-latest', input: ['I will kill you if you come back here'] } });
    const row = await usageRow(response.headers.get('x-request-id') ?? '');
    expect(row).toMatchObject({ operation: 'moderation', served_model: 'omni-moderation-latest', deployment: 'sim-omni', status: 'ok', cost: '0', tokens_estimated: true });
    expect(row.prompt_tokens).toBeGreaterThan(5);
  });

  it('judges each text of a list on its own, in order, and prices the estimate at the model’s input price', async () => {
    const { data: answer, response } = await gw.client().moderations.create({ model: 'text-moderation-priced', input: ['What a lovely morning for a walk', 'I hate you and everyone like you'] }).withResponse();
    expect(answer.model).toBe('text-moderation-priced');
    expect(answer.results.map((r) => r.flagged)).toEqual([false, true]);
    expect(answer.results[1]?.categories.hate).toBe(true);
    const cost = Number(response.headers.get('x-openrouter-cost'));
    expect(cost).toBeGreaterThan(0);
    const row = await usageRow(response.headers.get('x-request-id') ?? '');
    expect(Number(row.cost)).toBeCloseTo(cost, 9);
  });

  it('judges an input of text and image parts as one, saying which kinds of input each category applied to', async () => {
    const answer = await gw.client().moderations.create({
      model: 'omni-moderation-latest',
      input: [
        { type: 'text', text: 'kill it with fire' },
        { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } },
      ],
    });
    expect(answer.results).toHaveLength(1);
    expect(answer.results[0]?.flagged).toBe(true);
    expect(answer.results[0]?.category_applied_input_types?.violence).toEqual(expect.arrayContaining(['text', 'image']));
  });

  it('screens the input with the guardrails: redacted before the provider sees it, or refused', async () => {
    await gw.client().moderations.create({ input: 'write to jane.doe@example.com' });
    expect(gw.sim.requests().at(-1)?.body).toMatchObject({ input: ['write to [REDACTED:emails]'] });
    const refused = await apiError(() => gw.client().moderations.create({ input: ['fine', 'my card is 4111 1111 1111 1111'] }));
    expect(refused).toMatchObject({ status: 400, code: 'content_policy_violation', param: 'input[1]' });
    expect(refused.message).not.toContain('4111');
    expect(gw.sim.requests()).toHaveLength(1);
  });

  it('refuses bad input with a 400 naming the field, before any provider call', async () => {
    const client = gw.client();
    expect(await apiError(() => client.moderations.create({} as never))).toMatchObject({ status: 400, param: 'input' });
    expect(await apiError(() => client.moderations.create({ input: [1, 2] as never }))).toMatchObject({ status: 400, param: expect.stringMatching(/^input/) });
    expect(await apiError(() => client.moderations.create({ input: [{ type: 'image_url', image_url: { url: 'ftp://example.com/a.png' } }] }))).toMatchObject({ status: 400, param: expect.stringMatching(/^input\[0\]/) });
    // A chat model cannot moderate; a model that reads no images is not sent one.
    expect(await apiError(() => client.moderations.create({ model: 'gpt-4o-mini', input: 'hello' }))).toMatchObject({ status: 400, code: 'model_not_supported', param: 'model' });
    expect(await apiError(() => client.moderations.create({ model: 'text-moderation-priced', input: [{ type: 'image_url', image_url: { url: 'https://example.com/a.png' } }] }))).toMatchObject({ status: 400, code: 'model_not_supported', param: 'input' });
    expect(await apiError(() => client.moderations.create({ model: 'no-such-model', input: 'hello' }))).toMatchObject({ status: 404, code: 'model_not_found' });
    expect(gw.sim.requests()).toHaveLength(0);
  });

  it('maps provider failures as for every other call: a 5xx to 502, a 429 to 429 with Retry-After, with error records', async () => {
    const client = gw.client();
    gw.sim.configure({ faults: [{ kind: 'http_error', status: 500, path: 'moderations', remaining: 1 }] });
    const failed = await apiError(() => client.moderations.create({ input: 'hello' }));
    expect(failed.status).toBe(502);
    gw.sim.configure({ faults: [{ kind: 'http_error', status: 429, retryAfterSeconds: 3, path: 'moderations', remaining: 1 }] });
    const limited = await apiError(() => client.moderations.create({ input: 'hello' }));
    expect(limited.status).toBe(429);
    expect(Number(limited.headers?.get('retry-after'))).toBeGreaterThan(0);
    const row = await usageRow(failed.headers?.get('x-request-id') ?? '');
    expect(row).toMatchObject({ operation: 'moderation', status: 'error', cost: '0' });
    // The fault hit the moderations path only: chat still answers.
    gw.sim.configure({ faults: [{ kind: 'http_error', status: 500, path: 'moderations' }] });
    await expect(client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] })).resolves.toMatchObject({ object: 'chat.completion' });
  });

  it('lists the moderation models the key may use', async () => {
    const ids = [];
    for await (const model of gw.client().models.list()) ids.push(model.id);
    expect(ids).toEqual(expect.arrayContaining(['omni-moderation-latest', 'text-moderation-priced']));
  });
});
