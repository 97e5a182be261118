import OpenAI from 'openai';
import { parseConfig } from '@openrouter/config';
import { startIngress, type IngressHandle } from '@openrouter/ingress';
import { createLogger } from '@openrouter/observability';
import { startRouter, type RouterHandle } from '@openrouter/router';
import { freePort } from '../support/ports';
import { TEST_DEV_KEY, testConfigDocument } from '../support/test-config';

describe('ingress whose service token the router refuses', () => {
  let router: RouterHandle;
  let ingress: IngressHandle;
  let url: string;

  beforeAll(async () => {
    const ports = { ingress: 0, router: await freePort(), adapter: await freePort() };
    const withToken = (token: string): ReturnType<typeof parseConfig> => parseConfig({ ...testConfigDocument('http://127.0.0.1:9/v1', ports), grpc: { auth: { token } } }, {});
    router = await startRouter(withToken('the-router-s-token-of-32-characters-or-more'), createLogger('router', 'silent'));
    ingress = await startIngress(withToken('the-ingress-s-token-32-characters-but-another'), createLogger('ingress', 'silent'));
    url = `http://127.0.0.1:${ingress.httpPort}`;
  });
  afterAll(async () => {
    await ingress?.close();
    await router?.close();
  });

  it('answers its clients with a server error in OpenAI shape, never 401: their keys are fine, the gateway is misconfigured', async () => {
    const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: TEST_DEV_KEY, maxRetries: 0 });
    const request = { model: 'gpt-4o-mini', messages: [{ role: 'user' as const, content: 'x' }] };
    for (const call of [client.chat.completions.create(request), client.chat.completions.create({ ...request, stream: true }), client.models.list(), client.embeddings.create({ model: 'text-embedding-3-small', input: 'x' })]) {
      await expect(call).rejects.toMatchObject({ status: 500, type: 'server_error' });
    }
  });

  it('is not ready, so a load balancer sends it no traffic', async () => {
    const ready = await fetch(`${url}/ready`);
    expect(ready.status).toBe(503);
    expect(await ready.text()).toContain('router');
  });
});
