import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { GatewayError } from '@openrouter/errors';
import { loadImage, parseDataUrl } from './image-source';

const PNG = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex');

describe('image source', () => {
  let server: Server;
  let base: string;
  const userAgents: (string | undefined)[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      userAgents.push(req.headers['user-agent']);
      if (req.url === '/cat.png') return void res.writeHead(200, { 'content-type': 'image/png' }).end(PNG);
      if (req.url === '/moved.png') return void res.writeHead(302, { location: `${base}/cat.png` }).end();
      if (req.url === '/relative.png') return void res.writeHead(301, { location: '/moved.png' }).end();
      if (req.url === '/to-big.png') return void res.writeHead(307, { location: '/big.png' }).end();
      if (req.url === '/to-file') return void res.writeHead(302, { location: 'file:///etc/passwd' }).end();
      if (req.url === '/no-location') return void res.writeHead(302).end();
      const loop = /^\/loop\/(\d+)$/.exec(req.url ?? '');
      if (loop) return void res.writeHead(302, { location: `/loop/${Number(loop[1]) + 1}` }).end();
      if (req.url === '/page.html') return void res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end('<html></html>');
      if (req.url === '/big.png') return void res.writeHead(200, { 'content-type': 'image/png' }).end(Buffer.alloc(4096));
      res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const signal = new AbortController().signal;

  it('decodes a base64 data URL without a network call', async () => {
    const url = `data:image/png;base64,${PNG.toString('base64')}`;
    expect(parseDataUrl(url)).toEqual({ mediaType: 'image/png', base64: PNG.toString('base64') });
    await expect(loadImage(url, { signal })).resolves.toEqual({ mediaType: 'image/png', base64: PNG.toString('base64') });
  });

  it('fetches an http(s) image and inlines it', async () => {
    await expect(loadImage(`${base}/cat.png`, { signal })).resolves.toEqual({ mediaType: 'image/png', base64: PNG.toString('base64') });
  });

  it('follows redirects, relative ones too, and sends a User-Agent on every hop', async () => {
    userAgents.length = 0;
    await expect(loadImage(`${base}/relative.png`, { signal })).resolves.toEqual({ mediaType: 'image/png', base64: PNG.toString('base64') });
    expect(userAgents).toHaveLength(3);
    expect(userAgents.every((agent) => typeof agent === 'string' && agent.length > 0)).toBe(true);
  });

  it.each([
    ['a redirect loop', '/loop/0', /more than 5 redirects/],
    ['a redirect to another scheme', '/to-file', /neither an http\(s\) URL/],
    ['a redirect without a Location', '/no-location', /HTTP 302 without a Location/],
    ['a redirect to an image over the size limit', '/to-big.png', /larger than 1024 bytes/],
  ])('rejects %s as a bad request naming messages', async (_name, path, message) => {
    const failure = await loadImage(`${base}${path}`, { signal, maxBytes: 1024 }).catch((e: unknown) => e);
    expect(failure).toMatchObject({ kind: 'bad_request', param: 'messages', code: 'invalid_image_url' });
    expect((failure as Error).message).toMatch(message);
  });

  it.each([
    ['a missing image', '/missing.png', /HTTP 404/],
    ['a page that is not an image', '/page.html', /type "text\/html"/],
    ['an image over the size limit', '/big.png', /larger than 1024 bytes/],
  ])('rejects %s as a bad request naming messages', async (_name, path, message) => {
    const failure = await loadImage(`${base}${path}`, { signal, maxBytes: 1024 }).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(GatewayError);
    expect(failure).toMatchObject({ kind: 'bad_request', param: 'messages', code: 'invalid_image_url' });
    expect((failure as Error).message).toMatch(message);
  });

  it('rejects URLs of other schemes', async () => {
    await expect(loadImage('file:///etc/passwd', { signal })).rejects.toMatchObject({ kind: 'bad_request', param: 'messages' });
    await expect(loadImage('data:text/plain;base64,aGk=', { signal })).rejects.toMatchObject({ kind: 'bad_request' });
  });
});
