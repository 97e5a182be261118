import { ImageSource, isBase64, isPublicAddress } from './image-source';

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

  it('refuses data that is not base64 and types providers do not take, naming the part it was given', async () => {
    await expect(load('data:image/png;base64,%%%not-base64', 'messages[2].content[1]')).rejects.toMatchObject({ kind: 'bad_request', param: 'messages[2].content[1]', code: 'invalid_image_url' });
    await expect(load('data:image/png;base64,', 'messages[0].content[0]')).rejects.toMatchObject({ param: 'messages[0].content[0]', code: 'invalid_image_url' });
    await expect(load('data:text/plain;base64,aGk=', 'messages[0].content[0]')).rejects.toMatchObject({ param: 'messages[0].content[0]', code: 'invalid_image_url' });
    await expect(load('data:image/png;base64,%%%')).rejects.toMatchObject({ param: 'messages' });
  });
});
