import type { LookupAddress } from 'node:dns';
import { createServer, type Server } from 'node:http';
import { isIPv6, type AddressInfo } from 'node:net';
import { GatewayError } from '@openrouter/errors';
import { ImageAddressRefused, ImageSource, parseDataUrl, type ImageFetchPolicy } from './image-source';

const PNG = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex');
const FETCH_FAILED = /^An image in the messages could not be fetched: give a base64 data URL or an http\(s\) URL of a png, jpeg, gif or webp image of at most \d+ bytes, reachable from the public internet\.$/;

/** Host names the tests resolve themselves, so no lookup leaves the machine. */
const NAMES: Record<string, string> = { localhost: '127.0.0.1', 'images.test': '127.0.0.1', 'internal.test': '127.0.0.1', 'metadata.test': '169.254.169.254', 'mixed.test': '10.0.0.7' };
const resolve = async (hostname: string): Promise<LookupAddress[]> => {
  const address = NAMES[hostname];
  if (!address) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
  return [{ address, family: isIPv6(address) ? 6 : 4 }];
};

describe('image source', () => {
  let server: Server;
  let port: number;
  let base: string;
  const userAgents: (string | undefined)[] = [];
  const secretHits: string[] = [];
  const debug: Record<string, unknown>[] = [];
  const sources: ImageSource[] = [];
  const source = (policy: ImageFetchPolicy): ImageSource => {
    const created = new ImageSource(policy, { resolve, logger: { debug: (details) => void debug.push(details) } });
    sources.push(created);
    return created;
  };
  /** The policy the tests and the simulator need: images on loopback. */
  const local = (): ImageSource => source({ allowPrivateNetworks: true, allowedHosts: [] });

  beforeAll(async () => {
    server = createServer((req, res) => {
      userAgents.push(req.headers['user-agent']);
      const path = (req.url ?? '').split('?')[0];
      if (path === '/secret') {
        secretHits.push(req.url ?? '');
        return void res.writeHead(200, { 'content-type': 'image/png' }).end(PNG);
      }
      if (path === '/cat.png') return void res.writeHead(200, { 'content-type': 'image/png' }).end(PNG);
      if (path === '/moved.png') return void res.writeHead(302, { location: `${base}/cat.png` }).end();
      if (path === '/relative.png') return void res.writeHead(301, { location: '/moved.png' }).end();
      if (path === '/to-big.png') return void res.writeHead(307, { location: '/big.png' }).end();
      if (path === '/to-file') return void res.writeHead(302, { location: 'file:///etc/passwd' }).end();
      if (path === '/no-location') return void res.writeHead(302).end();
      if (path === '/to-loopback') return void res.writeHead(302, { location: `http://127.0.0.1:${port}/secret` }).end();
      if (path === '/to-internal-name') return void res.writeHead(302, { location: `http://internal.test:${port}/secret` }).end();
      if (path === '/to-metadata') return void res.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/iam/security-credentials/' }).end();
      if (path === '/to-metadata-name') return void res.writeHead(302, { location: 'http://metadata.test/latest/meta-data/' }).end();
      if (path === '/to-ipv6-loopback') return void res.writeHead(302, { location: `http://[::1]:${port}/secret` }).end();
      const loop = /^\/loop\/(\d+)$/.exec(path ?? '');
      if (loop) return void res.writeHead(302, { location: `/loop/${Number(loop[1]) + 1}` }).end();
      if (path === '/page.html') return void res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end('<html></html>');
      if (path === '/big.png') return void res.writeHead(200, { 'content-type': 'image/png' }).end(Buffer.alloc(4096));
      res.writeHead(404).end();
    });
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    port = (server.address() as AddressInfo).port;
    base = `http://127.0.0.1:${port}`;
  });
  afterAll(async () => {
    await Promise.all(sources.map((s) => s.close()));
    await new Promise<void>((done) => server.close(() => done()));
  });
  beforeEach(() => {
    secretHits.length = 0;
    debug.length = 0;
  });

  const signal = new AbortController().signal;
  const failure = (promise: Promise<unknown>): Promise<GatewayError> => promise.then(() => Promise.reject(new Error('expected a failure')), (e: unknown) => e as GatewayError);

  describe('with private networks allowed (tests, the simulator)', () => {
    it('decodes a base64 data URL without a network call', async () => {
      const url = `data:image/png;base64,${PNG.toString('base64')}`;
      expect(parseDataUrl(url)).toEqual({ mediaType: 'image/png', base64: PNG.toString('base64') });
      await expect(local().load(url, { signal })).resolves.toEqual({ mediaType: 'image/png', base64: PNG.toString('base64') });
    });

    it('fetches an http(s) image and inlines it', async () => {
      await expect(local().load(`${base}/cat.png`, { signal })).resolves.toEqual({ mediaType: 'image/png', base64: PNG.toString('base64') });
    });

    it('follows redirects, relative ones too, and sends a User-Agent on every hop', async () => {
      userAgents.length = 0;
      await expect(local().load(`${base}/relative.png`, { signal })).resolves.toEqual({ mediaType: 'image/png', base64: PNG.toString('base64') });
      expect(userAgents).toHaveLength(3);
      expect(userAgents.every((agent) => typeof agent === 'string' && agent.length > 0)).toBe(true);
    });

    it.each([
      ['a redirect loop', '/loop/0', 'more than 5 redirects'],
      ['a redirect to another scheme', '/to-file', 'not http(s)'],
      ['a redirect without a Location', '/no-location', 'HTTP 302 without a Location'],
      ['a redirect to an image over the size limit', '/to-big.png', 'more than 1024 bytes'],
      ['a missing image', '/missing.png', 'HTTP 404'],
      ['a page that is not an image', '/page.html', 'content type "text/html"'],
      ['an image over the size limit', '/big.png', 'more than 1024 bytes'],
    ])('answers %s with the one message that tells nothing of what answered, and logs why', async (_name, path, reason) => {
      const error = await failure(local().load(`${base}${path}`, { signal, maxBytes: 1024 }));
      expect(error).toBeInstanceOf(GatewayError);
      expect(error).toMatchObject({ kind: 'bad_request', param: 'messages', code: 'invalid_image_url' });
      expect(error.message).toMatch(FETCH_FAILED);
      expect(debug.map((d) => (d['err'] as Error).message).join('\n')).toContain(reason);
    });

    it('answers a closed port with the same message', async () => {
      const error = await failure(local().load('http://127.0.0.1:1/cat.png', { signal }));
      expect(error.message).toMatch(FETCH_FAILED);
    });

    it('logs the failing URL without its query', async () => {
      await failure(local().load(`${base}/missing.png?X-Amz-Signature=secret-token`, { signal }));
      expect(debug).toHaveLength(1);
      expect(debug[0]?.['image']).toBe(`${base}/missing.png`);
      expect(JSON.stringify(debug[0]?.['image'])).not.toContain('secret-token');
    });

    it('rejects URLs of other schemes', async () => {
      await expect(local().load('file:///etc/passwd', { signal })).rejects.toMatchObject({ kind: 'bad_request', param: 'messages', message: expect.stringMatching(/neither an http\(s\) URL/) });
      await expect(local().load('data:text/plain;base64,aGk=', { signal })).rejects.toMatchObject({ kind: 'bad_request', message: expect.stringMatching(/type "text\/plain"/) });
    });
  });

  describe('by default: public addresses only', () => {
    const strict = () => source({ allowPrivateNetworks: false, allowedHosts: [] });

    it.each([
      ['loopback', 'http://127.0.0.1:PORT/secret'],
      ['loopback by name', 'http://localhost:PORT/secret'],
      ['IPv6 loopback', 'http://[::1]:PORT/secret'],
      ['IPv4-mapped loopback', 'http://[::ffff:127.0.0.1]:PORT/secret'],
      ['the unspecified address', 'http://0.0.0.0:PORT/secret'],
      ['RFC 1918 10/8', 'http://10.0.0.1/x.png'],
      ['RFC 1918 172.16/12', 'http://172.16.5.4/x.png'],
      ['RFC 1918 192.168/16', 'http://192.168.1.1/x.png'],
      ['link-local cloud metadata', 'http://169.254.169.254/latest/meta-data/'],
      ['carrier-grade NAT', 'http://100.64.0.1/x.png'],
      ['IPv4 multicast', 'http://224.0.0.1/x.png'],
      ['IPv6 unique-local', 'http://[fd00::1]/x.png'],
      ['IPv6 link-local', 'http://[fe80::1]/x.png'],
      ['IPv6 multicast', 'http://[ff02::1]/x.png'],
      ['a name that resolves to cloud metadata', 'http://metadata.test/latest/meta-data/'],
      ['a name that resolves to a private address', 'http://mixed.test/x.png'],
    ])('refuses %s without connecting, with the uniform message', async (_name, template) => {
      const error = await failure(strict().load(template.replace('PORT', String(port)), { signal }));
      expect(error).toMatchObject({ kind: 'bad_request', param: 'messages', code: 'invalid_image_url' });
      expect(error.message).toMatch(FETCH_FAILED);
      expect(error.cause).toBeInstanceOf(ImageAddressRefused);
      expect(secretHits).toEqual([]);
    });

    describe('on every redirect hop, from a host that is allowed', () => {
      // images.test resolves to the test server on loopback and is allowed by name, as an operator
      // allows an internal image store; where it redirects to must pass the check on its own.
      const allowingImagesHost = () => source({ allowPrivateNetworks: false, allowedHosts: ['Images.Test'] });
      const from = (path: string) => `http://images.test:${port}${path}`;

      it('fetches from the allowed host itself', async () => {
        await expect(allowingImagesHost().load(from('/cat.png'), { signal })).resolves.toEqual({ mediaType: 'image/png', base64: PNG.toString('base64') });
      });

      it.each([
        ['loopback', '/to-loopback'],
        ['IPv6 loopback', '/to-ipv6-loopback'],
        ['another name on loopback', '/to-internal-name'],
        ['cloud metadata', '/to-metadata'],
        ['a name of cloud metadata', '/to-metadata-name'],
      ])('refuses a redirect to %s', async (_name, path) => {
        const error = await failure(allowingImagesHost().load(from(path), { signal }));
        expect(error.message).toMatch(FETCH_FAILED);
        expect(error.cause).toBeInstanceOf(ImageAddressRefused);
        expect(secretHits).toEqual([]);
      });
    });
  });
});
