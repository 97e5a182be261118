import OpenAI, { APIError } from 'openai';
import { startTestGateway, type TestGateway } from '../support/test-gateway';

const BODY_LIMIT = 64 * 1024;

/** What the SDK rejected with; fails the test when the call succeeded or failed some other way. */
async function apiError(call: Promise<unknown>): Promise<APIError> {
  try {
    await call;
  } catch (error) {
    if (error instanceof APIError) return error;
    throw error;
  }
  throw new Error('the request was accepted');
}

describe('errors on the wire, as the openai SDK sees them', () => {
  let gw: TestGateway;
  let calls = 0;
  /** A client that retries as the SDK does by default, counting what it sends. */
  let retrying: OpenAI;

  beforeAll(async () => {
    gw = await startTestGateway({
      configure: (doc) => {
        // A small body limit, and a nesting limit high enough that deep bodies reach the handlers.
        (doc['ingress'] as Record<string, unknown>)['limits'] = { bodyBytes: BODY_LIMIT, jsonDepth: 1_000_000 };
        (doc['models'] as unknown[]).push({ id: 'vendor/50%-off', deployments: [{ provider: 'simulated', model: 'percent-upstream' }] });
      },
    });
    retrying = new OpenAI({ baseURL: gw.baseURL, apiKey: gw.apiKey, maxRetries: 2, fetch: (url, init) => (calls++, fetch(url, init)) });
  });
  afterAll(async () => gw?.close());
  beforeEach(() => (calls = 0));

  it('retrieves a model whose id holds a literal %', async () => {
    await expect(gw.client().models.retrieve('vendor/50%-off')).resolves.toMatchObject({ id: 'vendor/50%-off', object: 'model' });
  });

  it.each(['%zz', '%25zz', 'nope%'])('answers GET /v1/models/{%s} with 404 model_not_found', async (id) => {
    const error = await apiError(gw.client().models.retrieve(id));
    expect(error).toBeInstanceOf(OpenAI.NotFoundError);
    expect(error).toMatchObject({ status: 404, type: 'invalid_request_error', code: 'model_not_found', param: 'model' });
    expect(error.message).toContain(`'${id}'`);
  });

  it('answers a malformed percent-encoding in the path with 400 invalid_url', async () => {
    const error = await apiError(retrying.get('/%zz'));
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect(error).toMatchObject({ status: 400, type: 'invalid_request_error', code: 'invalid_url', param: null });
    expect(calls).toBe(1);
  });

  it('answers headers over the size limit with 431 headers_too_large, not retried', async () => {
    const error = await apiError(retrying.models.list({ headers: { 'x-padding': 'a'.repeat(20_000) } }));
    expect(error).toMatchObject({ status: 431, type: 'invalid_request_error', code: 'headers_too_large', param: null });
    expect(calls).toBe(1);
  });

  it('answers a body over ingress.limits.bodyBytes with 413 request_too_large, not retried', async () => {
    const error = await apiError(retrying.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x'.repeat(BODY_LIMIT) }] }));
    expect(error).toMatchObject({ status: 413, type: 'invalid_request_error', code: 'request_too_large', param: null });
    expect(calls).toBe(1);
    expect((await fetch(`${gw.url}/health`)).status).toBe(200);
  });

  it('answers a value nested too deeply for the handlers with 400 json_too_deep, not 500', async () => {
    const deep = `${'{"a":'.repeat(5_000)}1${'}'.repeat(5_000)}`;
    const body = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"vendor_knob":${deep}}`;
    const error = await apiError(retrying.post('/chat/completions', { body, headers: { 'content-type': 'application/json' } }));
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect(error).toMatchObject({ status: 400, type: 'invalid_request_error', code: 'json_too_deep' });
    expect(calls).toBe(1);
  });

  it('names a null required field as missing, with an OpenAI-style param', async () => {
    const messages = [{ role: 'user', content: null }] as unknown as OpenAI.ChatCompletionMessageParam[];
    const error = await apiError(gw.client().chat.completions.create({ model: 'gpt-4o-mini', messages }));
    expect(error).toMatchObject({ status: 400, type: 'invalid_request_error', code: 'missing_required_parameter', param: 'messages[0].content' });
    expect(error.message).toContain("Missing required parameter: 'messages[0].content' (a user message needs content, not null)");
  });

  it('names a bad entry of the models fallback list models[1]', async () => {
    const body = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: 'hi' }], models: ['gpt-4o-mini', ''] };
    const error = await apiError(gw.client().chat.completions.create(body));
    expect(error).toMatchObject({ status: 400, type: 'invalid_request_error', code: 'invalid_value', param: 'models[1]' });
  });
});
