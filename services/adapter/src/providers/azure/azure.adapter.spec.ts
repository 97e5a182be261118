import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { providerSchema, type ProviderConfigOf } from '@openrouter/config';
import type { chatv1 } from '@openrouter/contracts';
import { parseChatRequest } from '@openrouter/openai-wire';
import { ImageSource } from '../image-source';
import type { ProviderAdapter } from '../provider-adapter';
import { createAzureAdapter } from './azure.adapter';

const chunk = (fields: Record<string, unknown>): string =>
  `data: ${JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1751630100, model: 'gpt-4o', ...fields })}\n\n`;

/**
 * Azure OpenAI's chat completions as its API versions differ on `stream_options`: versions before
 * 2024-09-01-preview refuse a request that carries it with a 400; later ones end the stream with
 * the usage chunk it asks for.
 */
function startAzure(): { server: Server; bodies: Record<string, unknown>[] } {
  const bodies: Record<string, unknown>[] = [];
  const server = createServer((req, res) => {
    const pieces: Buffer[] = [];
    req.on('data', (piece: Buffer) => pieces.push(piece));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(pieces).toString('utf8')) as Record<string, unknown>;
      bodies.push(body);
      const version = new URL(req.url ?? '/', 'http://azure').searchParams.get('api-version') ?? '';
      if ('stream_options' in body && version.slice(0, 10) < '2024-09-01') {
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: 'Unrecognized request argument supplied: stream_options', type: 'invalid_request_error', param: null, code: null } }));
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(chunk({ choices: [{ index: 0, delta: { role: 'assistant', content: 'Hello' }, finish_reason: null }] }));
      res.write(chunk({ choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] }));
      const options = body['stream_options'] as { include_usage?: boolean } | undefined;
      if (options?.include_usage === true) res.write(chunk({ choices: [], usage: { prompt_tokens: 9, completion_tokens: 1, total_tokens: 10 } }));
      res.end('data: [DONE]\n\n');
    });
  });
  return { server, bodies };
}

describe('Azure adapter and stream_options by API version', () => {
  const { server, bodies } = startAzure();
  let base: string;
  const context = { images: new ImageSource() };
  const adapters: ProviderAdapter[] = [];

  beforeAll(async () => {
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterEach(() => {
    bodies.length = 0;
  });
  afterAll(async () => {
    await Promise.all(adapters.map((a) => a.close()));
    await context.images.close();
    server.close();
  });

  async function stream(apiVersion: string): Promise<chatv1.ChatChunk[]> {
    const config = providerSchema.parse({ type: 'azure', baseUrl: base, apiKey: 'k', apiVersion, timeoutMs: 5_000 }) as ProviderConfigOf<'azure'>;
    const adapter = createAzureAdapter('azure', config, context);
    adapters.push(adapter);
    // The ingress asks every stream for its usage, whether or not the client did.
    const request = parseChatRequest({ model: 'm', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'hi' }] });
    const chunks: chatv1.ChatChunk[] = [];
    for await (const event of adapter.chat({ requestId: 'r', upstreamModel: 'gpt-4o', request, timeoutMs: 5_000, signal: new AbortController().signal })) {
      if (event.chunk) chunks.push(event.chunk);
    }
    return chunks;
  }

  it.each(['2024-02-01', '2024-06-01', '2024-08-01-preview', '2024-05-01-preview'])('leaves stream_options out with API version %s, which refuses it: the stream answers, without usage', async (apiVersion) => {
    const chunks = await stream(apiVersion);
    expect(bodies).toHaveLength(1);
    expect(bodies[0]).not.toHaveProperty('stream_options');
    expect(bodies[0]).toMatchObject({ stream: true });
    expect(chunks.flatMap((c) => c.choices.map((ch) => ch.delta?.content ?? '')).join('')).toBe('Hello');
    // No usage chunk: the ingress meters the stream at its estimate.
    expect(chunks.some((c) => c.usage !== undefined)).toBe(false);
  });

  it.each(['2024-09-01-preview', '2024-10-21', '2025-01-01-preview', 'preview'])('sends stream_options with API version %s and passes the usage on', async (apiVersion) => {
    const chunks = await stream(apiVersion);
    expect(bodies[0]).toMatchObject({ stream_options: { include_usage: true } });
    expect(chunks[chunks.length - 1]).toMatchObject({ choices: [], usage: { promptTokens: 9, completionTokens: 1 } });
  });
});
