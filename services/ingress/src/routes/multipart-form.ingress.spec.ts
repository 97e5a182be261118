import { createLogger } from '@openrouter/observability';
import type { UsagePublisher } from '@openrouter/usage';
import { startIngress, type IngressHandle } from '../index';
import type { RouterCalls } from '../router.port';
import { ingressTestConfig } from '../test-config.testing';

const KEY = 'sk-or-dev-upload-0123456789abcdef';

const publisher: UsagePublisher = {
  publish: async () => undefined,
  status: () => ({ mode: 'direct', pending: 0, outboxBytes: 0 }),
  close: async () => undefined,
};

/** Upload routes at ingress: a form is read only from a caller whose key is good. */
describe('upload forms at ingress', () => {
  let ingress: IngressHandle;
  let base: string;

  beforeAll(async () => {
    const config = ingressTestConfig({ ingress: { http: { host: '127.0.0.1', port: 0 }, router: '127.0.0.1:1', devKey: KEY } });
    ingress = await startIngress(config, createLogger('ingress', 'silent'), { router: {} as RouterCalls, usagePublisher: publisher });
    base = `http://127.0.0.1:${ingress.httpPort}`;
  });
  afterAll(async () => {
    await ingress?.close();
  });

  it.each([
    ['/v1/audio/transcriptions', { authorization: 'Bearer sk-or-wrong' }, 'invalid_api_key'],
    ['/v1/images/edits', {}, 'missing_api_key'],
  ])('answers %s 401 while the body is still being sent, without waiting for it', async (path, headers, code) => {
    // The form's first bytes, then nothing until the test has its answer: a server that read the
    // body before judging the key would never answer.
    let finish = (): void => undefined;
    const held = new Promise<void>((resolve) => (finish = resolve));
    const body = new ReadableStream<Uint8Array>({
      async start(controller) {
        controller.enqueue(new TextEncoder().encode('--b\r\ncontent-disposition: form-data; name="file"; filename="a.wav"\r\n\r\nRIFF'));
        await held;
        controller.close();
      },
    });
    try {
      const response = await fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'multipart/form-data; boundary=b', ...headers }, body, duplex: 'half' } as RequestInit);
      expect(response.status).toBe(401);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe(code);
    } finally {
      finish();
    }
  });
});
