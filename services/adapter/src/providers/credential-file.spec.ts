import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { ConfigError, providerSchema, type ProviderConfig } from '@openrouter/config';
import { createLogger, CredentialFileMetrics, Registry } from '@openrouter/observability';
import { SecretVolume } from '@openrouter/provider-simulator';
import { CredentialFile, type CredentialFileOptions, REFUSAL_REREAD_MS } from './credential-file';
import { ImageSource } from './image-source';
import { createProviderAdapter } from './provider-adapter';
import { PROVIDER_REGISTRY } from './provider.registry';
import { eventually } from './eventually.testing';

const OLD = 'sk-old-0123456789';
const NEW = 'sk-new-9876543210';

/** A logger whose lines a spec reads, and metrics on a registry of their own. */
function observed(now?: () => number): CredentialFileOptions & { lines: () => Array<Record<string, unknown>>; text: () => string; metric: (name: string, labels: Record<string, string>) => Promise<number | undefined> } {
  const written: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      written.push(chunk.toString());
      done();
    },
  });
  const registry = new Registry();
  return {
    logger: createLogger('adapter', 'info', sink),
    metrics: new CredentialFileMetrics(registry),
    ...(now ? { now } : {}),
    lines: () => written.join('').split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as Record<string, unknown>),
    text: () => written.join(''),
    async metric(name, labels) {
      const values = (await registry.getSingleMetric(name)?.get())?.values ?? [];
      return values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))?.value;
    },
  };
}

describe('a credential file', () => {
  const volumes: SecretVolume[] = [];
  const files: CredentialFile[] = [];
  const volume = (content: Record<string, string>): SecretVolume => {
    const v = new SecretVolume(content);
    volumes.push(v);
    return v;
  };
  const open = (path: string, options: CredentialFileOptions = {}, checkIntervalMs = 3_600_000): CredentialFile => {
    const file = CredentialFile.open({ provider: 'openai', key: 'apiKeyFile', path, checkIntervalMs }, options);
    files.push(file);
    return file;
  };
  afterEach(() => {
    for (const file of files.splice(0)) file.close();
    for (const v of volumes.splice(0)) v.remove();
  });

  it('is read at start-up, trimmed of the white space and newline around it', () => {
    const v = volume({ 'api-key': `  ${OLD}\n\n` });
    expect(open(v.path('api-key')).value()).toBe(OLD);
  });

  it('that is missing or empty at start-up stops the adapter, naming the provider, the setting and the path, never the content', () => {
    const v = volume({ 'api-key': ' \n', other: OLD });
    const missing = join(v.dir, 'no-such-key');
    expect(() => open(missing)).toThrow(ConfigError);
    expect(() => open(missing)).toThrow(`providers.openai.apiKeyFile: cannot read ${missing}: ENOENT`);
    expect(() => open(v.path('api-key'))).toThrow(`providers.openai.apiKeyFile: ${v.path('api-key')} is empty`);
    expect(() => open(v.dir)).toThrow(`providers.openai.apiKeyFile: cannot read ${v.dir}: EISDIR`);
  });

  it('takes a new version of a Kubernetes Secret (the ..data symlink swapped) at the next check, not before', async () => {
    const v = volume({ 'api-key': OLD });
    const file = open(v.path('api-key'));
    v.write({ 'api-key': `${NEW}\n` });
    // A call made now still starts with the key in hand.
    expect(file.value()).toBe(OLD);
    await file.check();
    expect(file.value()).toBe(NEW);
  });

  it('is checked on its own every checkIntervalMs', async () => {
    const v = volume({ 'api-key': OLD });
    const file = open(v.path('api-key'), {}, 100);
    v.write({ 'api-key': NEW });
    await eventually(() => file.value() === NEW, 'the new key taken by a check');
  });

  it('takes a file rewritten in place too', async () => {
    const v = volume({ 'api-key': OLD });
    const file = open(v.path('api-key'));
    writeFileSync(join(v.dir, '..data', 'api-key'), `${NEW}-longer`);
    await file.check();
    expect(file.value()).toBe(`${NEW}-longer`);
  });

  it('keeps the last good key while the file is unreadable or empty, warning once per change of state, and says when it reads again', async () => {
    const seen = observed();
    const v = volume({ 'api-key': OLD });
    const file = open(v.path('api-key'), seen);
    expect(await seen.metric('openrouter_provider_credential_file_ok', { provider: 'openai', file: 'apiKeyFile' })).toBe(1);

    v.write({ other: 'x' });
    await file.check();
    await file.check();
    expect(file.value()).toBe(OLD);
    v.write({ 'api-key': '\n' });
    await file.check();
    await file.check();
    expect(file.value()).toBe(OLD);
    expect(await seen.metric('openrouter_provider_credential_file_ok', { provider: 'openai', file: 'apiKeyFile' })).toBe(0);
    expect(await seen.metric('openrouter_provider_credential_file_reloads_total', { provider: 'openai', file: 'apiKeyFile', outcome: 'failed' })).toBe(4);

    v.write({ 'api-key': NEW });
    await file.check();
    expect(file.value()).toBe(NEW);
    expect(await seen.metric('openrouter_provider_credential_file_ok', { provider: 'openai', file: 'apiKeyFile' })).toBe(1);
    expect(await seen.metric('openrouter_provider_credential_file_reloads_total', { provider: 'openai', file: 'apiKeyFile', outcome: 'changed' })).toBe(1);

    expect(seen.lines().map((line) => [line['level'], line['msg'], line['reason']])).toEqual([
      [40, 'provider credential file cannot be read (or is empty): calls keep the secret read last', 'ENOENT'],
      [40, 'provider credential file cannot be read (or is empty): calls keep the secret read last', 'empty'],
      [30, 'provider credential file readable again', undefined],
      [30, 'provider credential file changed: the calls made from now on use its new secret', undefined],
    ]);
    expect(seen.lines()[0]).toMatchObject({ provider: 'openai', setting: 'apiKeyFile', path: v.path('api-key') });
    expect(seen.text()).not.toContain(OLD);
    expect(seen.text()).not.toContain(NEW);
  });

  it('is read again at once when the provider refuses the key, at most once a second', async () => {
    let now = 1_000_000;
    const v = volume({ 'api-key': OLD });
    const file = open(v.path('api-key'), { now: () => now });
    v.write({ 'api-key': NEW });
    await file.reread();
    expect(file.value()).toBe(NEW);

    // A key rotated again within the second: a refusal does not read the file.
    v.write({ 'api-key': 'sk-third' });
    now += REFUSAL_REREAD_MS - 1;
    await file.reread();
    expect(file.value()).toBe(NEW);
    now += 1;
    await file.reread();
    expect(file.value()).toBe('sk-third');
  });

  it('shares one re-read among the calls refused together', async () => {
    const v = volume({ 'api-key': OLD });
    const file = open(v.path('api-key'), { now: () => 5_000_000 });
    v.write({ 'api-key': NEW });
    // Each waits for the one read (none returns at once, rate limited, with the refused key in hand).
    const seenBy = await Promise.all([1, 2, 3].map(() => file.reread().then(() => file.value())));
    expect(seenBy).toEqual([NEW, NEW, NEW]);
  });

  describe('whose content is checked (problemsOf)', () => {
    // A stand-in for a structured credential: JSON with a `key` field.
    const problemsOf = (text: string): string[] => {
      try {
        return typeof (JSON.parse(text) as { key?: unknown }).key === 'string' ? [] : ['key: expected a string'];
      } catch {
        return ['not JSON'];
      }
    };
    const openChecked = (path: string, options: CredentialFileOptions = {}): CredentialFile => {
      const file = CredentialFile.open({ provider: 'vertex', key: 'credentialsFile', path, checkIntervalMs: 3_600_000, problemsOf }, options);
      files.push(file);
      return file;
    };

    it('that has problems at start-up stops the adapter, listing them under the setting', () => {
      const v = volume({ 'sa.json': '{"key": 42}' });
      expect(() => openChecked(v.path('sa.json'))).toThrow(new ConfigError('providers.vertex', ['providers.vertex.credentialsFile: key: expected a string']));
    });

    it('keeps the last good content while the file is malformed (half written), warning once, and takes the next good one', async () => {
      const seen = observed();
      const v = volume({ 'sa.json': `{"key": "${OLD}"}` });
      const file = openChecked(v.path('sa.json'), seen);
      v.write({ 'sa.json': `{"key": "${NEW}` });
      await file.check();
      await file.reread();
      expect(file.value()).toBe(`{"key": "${OLD}"}`);
      v.write({ 'sa.json': '{"key": null}' });
      await file.check();
      expect(file.value()).toBe(`{"key": "${OLD}"}`);
      expect(await seen.metric('openrouter_provider_credential_file_ok', { provider: 'vertex', file: 'credentialsFile' })).toBe(0);
      expect(await seen.metric('openrouter_provider_credential_file_reloads_total', { provider: 'vertex', file: 'credentialsFile', outcome: 'failed' })).toBe(3);

      v.write({ 'sa.json': `{"key": "${NEW}"}\n` });
      await file.check();
      expect(file.value()).toBe(`{"key": "${NEW}"}`);
      expect(await seen.metric('openrouter_provider_credential_file_ok', { provider: 'vertex', file: 'credentialsFile' })).toBe(1);
      expect(seen.lines().map((line) => [line['level'], line['msg'], line['reason'], line['problems']])).toEqual([
        [40, 'provider credential file does not hold a usable credential: calls keep the secret read last', 'invalid', ['not JSON']],
        [30, 'provider credential file readable again', undefined, undefined],
        [30, 'provider credential file changed: the calls made from now on use its new secret', undefined, undefined],
      ]);
      expect(seen.text()).not.toContain(OLD);
      expect(seen.text()).not.toContain(NEW);
    });
  });

  it('reads nothing once closed', async () => {
    const v = volume({ 'api-key': OLD });
    const file = open(v.path('api-key'));
    file.close();
    v.write({ 'api-key': NEW });
    await file.check();
    await file.reread();
    expect(file.value()).toBe(OLD);
  });
});

describe('a provider whose credential file is missing at start-up', () => {
  const MISSING = join(__dirname, 'no-such-dir', 'secret');
  it.each([
    ['apiKeyFile', { type: 'openai', baseUrl: 'http://127.0.0.1:9/v1', apiKeyFile: MISSING }],
    ['apiKeyFile', { type: 'azure', baseUrl: 'http://127.0.0.1:9', apiKeyFile: MISSING }],
    ['entra.clientSecretFile', { type: 'azure', baseUrl: 'http://127.0.0.1:9', entra: { tenantId: 't', clientId: 'c', clientSecretFile: MISSING } }],
    ['apiKeyFile', { type: 'anthropic', apiKeyFile: MISSING }],
    ['apiKeyFile', { type: 'gemini', apiKeyFile: MISSING }],
    ['credentials.secretAccessKeyFile', { type: 'bedrock', region: 'us-east-1', credentials: { accessKeyId: 'AKIA', secretAccessKeyFile: MISSING } }],
    ['accessTokenFile', { type: 'vertex', project: 'p', accessTokenFile: MISSING }],
    ['credentialsFile', { type: 'vertex', project: 'p', credentialsFile: MISSING }],
  ])('does not start, naming the provider, %s and the path', (key, fields) => {
    const images = new ImageSource();
    const config = providerSchema.parse(fields) as ProviderConfig;
    expect(() => createProviderAdapter(PROVIDER_REGISTRY, 'mounted', config, { images })).toThrow(new ConfigError('providers.mounted', [`providers.mounted.${key}: cannot read ${MISSING}: ENOENT`]));
    void images.close();
  });
});
