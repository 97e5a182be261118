import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { GatewayError } from '@openrouter/errors';
import { ImageDeadlineExceeded, ImageSource, isBase64, isPublicAddress } from './image-source';

describe('isPublicAddress', () => {
  it.each(['93.184.216.34', '8.8.8.8', '172.32.0.1', '100.128.0.1', '2606:4700:4700::1111', '2a00:1450:4001:80b::200e', '::ffff:8.8.8.8'])('allows the public address %s', (address) => {
    expect(isPublicAddress(address)).toBe(true);
  });

  it.each([
    ['loopback', '127.0.0.1'],
    ['loopback, anywhere in 127/8', '127.53.0.9'],
    ['RFC 1918', '10.1.2.3'],
    ['RFC 1918', '172.16.0.1'],
    ['RFC 1918', '172.31.255.255'],
    ['RFC 1918', '192.168.0.10'],
    ['link-local (cloud metadata)', '169.254.169.254'],
    ['carrier-grade NAT', '100.64.0.1'],
    ['unspecified', '0.0.0.0'],
    ['"this network"', '0.1.2.3'],
    ['broadcast', '255.255.255.255'],
    ['multicast', '239.1.1.1'],
    ['documentation', '192.0.2.10'],
    ['benchmarking', '198.18.0.1'],
    ['IPv6 loopback', '::1'],
    ['IPv6 unspecified', '::'],
    ['IPv6 unique-local', 'fd12:3456::1'],
    ['IPv6 link-local', 'fe80::1'],
    ['IPv6 link-local with a zone', 'fe80::1%eth0'],
    ['IPv6 multicast', 'ff02::1'],
    ['IPv4-mapped loopback', '::ffff:127.0.0.1'],
    ['IPv4-mapped metadata', '::ffff:169.254.169.254'],
    ['NAT64 of a private address', '64:ff9b::a00:1'],
    ['6to4', '2002:7f00:1::1'],
    ['IPv4-compatible loopback', '::7f00:1'],
    ['IPv4-compatible metadata', '::a9fe:a9fe'],
    ['not an address', 'localhost'],
  ])('refuses %s (%s)', (_name, address) => {
    expect(isPublicAddress(address)).toBe(false);
  });
});

describe('isBase64', () => {
  it.each(['iVBORw0KGgo=', 'QUJD', 'QUI=', 'QQ==', 'iVBORw0KGgo', 'QUI', 'a+/9'])('takes %j', (payload) => {
    expect(isBase64(payload)).toBe(true);
  });

  it.each([
    ['empty', ''],
    ['outside the alphabet', '%%%not-base64'],
    ['URL-safe characters', 'ab-_'],
    ['whitespace', 'QUJD QUJD'],
    ['a line break', 'QUJD\nQUJD'],
    ['one character too many', 'QUJDQ'],
    ['padding before the end', 'QQ==QUJD'],
    ['three padding characters', 'Q==='],
    ['padding on a length no byte count makes', 'QUJ=='],
  ])('refuses %s', (_name, payload) => {
    expect(isBase64(payload)).toBe(false);
  });

  // No timing here (tests assert no timings): a single regular-expression scan, without a decode.
  it('reads the largest image whole, its last characters included', () => {
    const payload = Buffer.alloc(20 * 1024 * 1024, 7).toString('base64');
    expect(isBase64(payload)).toBe(true);
    expect(isBase64(`${payload.slice(0, -4)}%AAA`)).toBe(false);
  });
});

describe('ImageSource data URLs', () => {
  const load = (url: string, param?: string) => new ImageSource().load(url, { signal: new AbortController().signal }, param);

  it('returns the type and data of a base64 data URL', async () => {
    await expect(load('data:image/png;base64,iVBORw0KGgo=')).resolves.toEqual({ mediaType: 'image/png', base64: 'iVBORw0KGgo=' });
  });

  it("holds a data URL to the per-image limit (Bedrock's 3.75 MB), naming the part, as a fetched image is held", async () => {
    const url = (bytes: number): string => `data:image/png;base64,${Buffer.alloc(bytes, 1).toString('base64')}`;
    const loader = new ImageSource().loader({ signal: new AbortController().signal, maxBytes: 3_750_000 });
    const refused = loader(url(5_000_000), 'messages[0].content[1]');
    await expect(refused).rejects.toMatchObject({ kind: 'bad_request', param: 'messages[0].content[1]', code: 'invalid_image_url' });
    await expect(refused).rejects.toThrow(/5000000 bytes, more than the 3750000/);
    await expect(loader(url(3_750_000), 'messages[0].content[2]')).resolves.toMatchObject({ mediaType: 'image/png' });
    // Padded payloads count their decoded bytes: one byte over is refused.
    await expect(loader(url(3_750_001), 'messages[0].content[3]')).rejects.toMatchObject({ param: 'messages[0].content[3]' });
  });

  it('refuses data that is not base64 and types providers do not take, naming the part it was given', async () => {
    await expect(load('data:image/png;base64,%%%not-base64', 'messages[2].content[1]')).rejects.toMatchObject({ kind: 'bad_request', param: 'messages[2].content[1]', code: 'invalid_image_url' });
    await expect(load('data:image/png;base64,', 'messages[0].content[0]')).rejects.toMatchObject({ param: 'messages[0].content[0]', code: 'invalid_image_url' });
    await expect(load('data:text/plain;base64,aGk=', 'messages[0].content[0]')).rejects.toMatchObject({ param: 'messages[0].content[0]', code: 'invalid_image_url' });
    await expect(load('data:image/png;base64,%%%')).rejects.toMatchObject({ param: 'messages' });
  });
});

describe('ImageSource limits over a call', () => {
  const PNG = Buffer.alloc(600, 1);
  const PNG_DATA_URL = `data:image/png;base64,${Buffer.alloc(300, 2).toString('base64')}`;
  let server: Server;
  let base: string;
  /** Responses of the drip-fed paths, ended when the server closes. */
  const open = new Set<ServerResponse>();
  /** Called when a drip-fed response has sent its headers and first byte. */
  let dripping: () => void = () => undefined;
  const debug: Record<string, unknown>[] = [];
  const source = new ImageSource({ allowPrivateNetworks: true, allowedHosts: [] }, { logger: { debug: (details) => void debug.push(details) } });
  const signal = new AbortController().signal;
  const failure = (promise: Promise<unknown>): Promise<GatewayError> => promise.then(() => Promise.reject(new Error('expected a failure')), (e: unknown) => e as GatewayError);

  beforeAll(async () => {
    server = createServer((req, res) => {
      const path = req.url ?? '';
      if (path.startsWith('/img/')) return void res.writeHead(200, { 'content-type': 'image/png' }).end(PNG);
      if (path === '/drip.png') {
        // A byte now and then, for ever: no idle timeout ever fires.
        open.add(res);
        res.writeHead(200, { 'content-type': 'image/png' });
        res.write('x', () => dripping());
        const drip = setInterval(() => res.write('x'), 20);
        res.on('close', () => clearInterval(drip));
        return;
      }
      if (path === '/silent.png') {
        // Never answers: only an idle timeout as long as the test's would stop it.
        open.add(res);
        return;
      }
      res.writeHead(404).end();
    });
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    for (const res of open) res.destroy();
    await source.close();
    server.closeAllConnections();
    await new Promise<void>((done) => server.close(() => done()));
  });
  beforeEach(() => {
    debug.length = 0;
  });

  it('shares one byte budget between the images of a loader, refusing the part that goes over it', async () => {
    const load = source.loader({ signal, maxTotalBytes: 1_500 });
    await expect(load(`${base}/img/0.png`, 'messages[0].content[0]')).resolves.toEqual({ mediaType: 'image/png', base64: PNG.toString('base64') });
    await expect(load(`${base}/img/1.png`, 'messages[0].content[1]')).resolves.toMatchObject({ mediaType: 'image/png' });
    const error = await failure(load(`${base}/img/2.png`, 'messages[1].content[0]'));
    expect(error).toBeInstanceOf(GatewayError);
    expect(error).toMatchObject({ kind: 'bad_request', param: 'messages[1].content[0]', code: 'invalid_image_url' });
    expect(error.message).toBe('The images in the messages total more than 1500 bytes, the most the gateway sends a provider in one call: send fewer or smaller images.');
    // Another call (another loader) has a budget of its own.
    await expect(source.loader({ signal, maxTotalBytes: 1_500 })(`${base}/img/3.png`, 'messages[0].content[0]')).resolves.toMatchObject({ mediaType: 'image/png' });
  });

  it('charges data URLs to the budget by the bytes they decode to', async () => {
    const load = source.loader({ signal, maxTotalBytes: 800 });
    await expect(load(PNG_DATA_URL, 'messages[0].content[0]')).resolves.toMatchObject({ mediaType: 'image/png' });
    await expect(load(`${base}/img/0.png`, 'messages[0].content[1]')).rejects.toMatchObject({ param: 'messages[0].content[1]', message: expect.stringMatching(/total more than 800 bytes/) });
    const data = source.loader({ signal, maxTotalBytes: 500 });
    await expect(data(PNG_DATA_URL, 'messages[0].content[0]')).resolves.toMatchObject({ mediaType: 'image/png' });
    await expect(data(PNG_DATA_URL, 'messages[0].content[1]')).rejects.toMatchObject({ param: 'messages[0].content[1]', code: 'invalid_image_url' });
  });

  it('gives up a body drip-fed past the deadline, with the message every failed fetch gets', async () => {
    const error = await failure(source.load(`${base}/drip.png`, { signal, deadlineMs: 200 }, 'messages[0].content[2]'));
    expect(error).toMatchObject({ kind: 'bad_request', param: 'messages[0].content[2]', code: 'invalid_image_url' });
    expect(error.message).toMatch(/^An image in the messages could not be fetched/);
    expect(error.cause).toBeInstanceOf(ImageDeadlineExceeded);
    expect(debug.map((d) => (d['err'] as Error).message)).toEqual(['not fetched within 200 ms']);
  }, 10_000);

  it('gives up a server that never answers before its idle timeout, and still tells a cancelled call apart', async () => {
    const error = await failure(source.load(`${base}/silent.png`, { signal, timeoutMs: 60_000, deadlineMs: 200 }));
    expect(error).toMatchObject({ kind: 'bad_request', param: 'messages', code: 'invalid_image_url' });
    expect(error.cause).toBeInstanceOf(ImageDeadlineExceeded);

    // The call's own cancellation still stops a fetch within its deadline, as a cancellation.
    const call = new AbortController();
    dripping = () => call.abort();
    const cancelled = await failure(source.load(`${base}/drip.png`, { signal: call.signal, deadlineMs: 60_000 }));
    expect(cancelled).toMatchObject({ kind: 'cancelled' });
  }, 10_000);
});
