import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify as stringifyYaml } from 'yaml';
import { ConfigError, interpolate, loadConfigFile, parseConfig } from './config-loader';
import { loadConfig, readRuntimeEnv } from './runtime-env';
import { MINIMAL_CONFIG } from './minimal-config.testing';

// Its provider key comes from the environment, as a deployment's does.
const minimal = { ...MINIMAL_CONFIG, providers: { sim: { ...MINIMAL_CONFIG.providers.sim, apiKey: '${SIM_KEY}' } } };


/** The message a configuration file's load fails with ('' when it loads). */
function loadFailure(file: string): string {
  try {
    loadConfigFile(file, {});
    return '';
  } catch (error) {
    return (error as Error).message;
  }
}

describe('config', () => {
  it('interpolates variables and defaults', () => {
    const problems: string[] = [];
    expect(interpolate({ a: '${X}', b: ['${Y:-dflt}'], c: 'p${X}s' }, { X: '1' }, '', problems)).toEqual({ a: '1', b: ['dflt'], c: 'p1s' });
    expect(problems).toEqual([]);
  });

  it("reads only the environment's own variables: the members every object inherits are none", () => {
    const problems: string[] = [];
    const env = readRuntimeEnv({ HOME: '/home/gw' }).vars;
    expect(interpolate({ a: '${constructor}', b: '${toString:-fallback}', c: '${__proto__}', d: '${HOME}' }, env, '', problems)).toEqual({ a: '', b: 'fallback', c: '', d: '/home/gw' });
    expect(problems).toEqual(['a: environment variable constructor is not set', 'c: environment variable __proto__ is not set']);
  });

  it('refuses a placeholder nested in a default, naming the path but not the text', () => {
    const problems: string[] = [];
    expect(interpolate({ key: 'sk-${A:-${B}}' }, { B: 'b' }, '', problems)).toEqual({ key: 'sk-}' });
    expect(problems).toEqual(['key: placeholders do not nest: the default of ${A:-…} holds a "${" (a default cannot hold a literal "${"; outside placeholders write $${)']);
    expect(() => parseConfig({ ...minimal, providers: { sim: { ...minimal.providers.sim, apiKey: '${SIM_KEY:-${FALLBACK_KEY}}' } } }, { SIM_KEY: 'k', FALLBACK_KEY: 'f' })).toThrow(
      'providers.sim.apiKey: placeholders do not nest',
    );
  });

  it('refuses a "${" that starts no placeholder, and reads $${ as a literal "${"', () => {
    const problems: string[] = [];
    expect(interpolate(['p${PORT-8080}', 'p${ PORT }', 's3cr3t${', '${1}'], { PORT: '1' }, 'x', problems)).toHaveLength(4);
    expect(problems).toEqual(Array.from({ length: 4 }, (_, i) => `x[${i}]: "\${" starts no placeholder: write \${NAME} or \${NAME:-default}, or $\${ for a literal "\${"`));
    expect(problems.join('\n')).not.toContain('s3cr3t');
    const literal: string[] = [];
    expect(interpolate({ a: 'p$${X}s', b: '$${', c: '$$${X}', d: 'a$b$$c', e: '${X:-$}' }, { X: '1' }, '', literal)).toEqual({ a: 'p${X}s', b: '${', c: '$${X}', d: 'a$b$$c', e: '1' });
    expect(literal).toEqual([]);
  });

  it('uses the default for an empty variable, so an empty variable never turns a number into 0 or a switch off', () => {
    const doc = { ...minimal, ingress: { ...minimal.ingress, http: { port: '${PORT:-8080}' } }, gateway: { simulator: { enabled: '${SIM:-true}' } } };
    const config = parseConfig(doc, { SIM_KEY: 'k', PORT: '', SIM: '' });
    expect([config.ingress.http.port, config.gateway.simulator.enabled]).toEqual([8080, true]);
    // Only an empty default, or a blank variable, leaves nothing: refused, not read as 0 or false.
    expect(() => parseConfig({ ...doc, ingress: { ...minimal.ingress, http: { port: '${PORT:-}' } } }, { SIM_KEY: 'k', PORT: '' })).toThrow('ingress.http.port: expected a number, got an empty value');
    expect(() => parseConfig(doc, { SIM_KEY: 'k', PORT: '  ' })).toThrow('ingress.http.port: expected a number, got an empty value');
    expect(() => parseConfig(doc, { SIM_KEY: 'k', SIM: ' ' })).toThrow('gateway.simulator.enabled: expected true or false, got an empty value');
    expect(() => parseConfig({ ...doc, gateway: { simulator: { enabled: '${SIM:-}' } } }, { SIM_KEY: 'k' })).toThrow('gateway.simulator.enabled: expected true or false, got an empty value');
    expect(() => parseConfig({ ...doc, usage: { kafka: { ssl: '${KAFKA_TLS:-}' } } }, { SIM_KEY: 'k' })).toThrow('usage.kafka.ssl: expected true or false (or 1/0, yes/no), or { ca: <PEM file> }');
    // Without a default, an empty variable is a missing one.
    expect(() => parseConfig({ ...doc, ingress: { ...minimal.ingress, http: { port: '${PORT}' } } }, { SIM_KEY: 'k', PORT: '' })).toThrow('ingress.http.port: environment variable PORT is not set');
  });

  it('refuses a number from the environment in any form but plain decimal digits', () => {
    const problems = (env: Record<string, string>): string[] => {
      try {
        parseConfig({ ...minimal, billing: { http: { port: 0 }, rollup: { reconcileIntervalMs: '${RECONCILE_MS}' } }, observability: { tracing: { sampleRatio: '${RATIO}' } } }, { SIM_KEY: 'k', ...env });
        return [];
      } catch (e) {
        return (e as ConfigError).problems;
      }
    };
    expect(problems({ RECONCILE_MS: '600000', RATIO: '0.25' })).toEqual([]);
    expect(problems({ RECONCILE_MS: ' 600000 ', RATIO: '1' })).toEqual([]);
    expect(problems({ RECONCILE_MS: '0x927C0', RATIO: '1e-1' })).toEqual([
      'billing.rollup.reconcileIntervalMs: expected a decimal number (hexadecimal, octal and binary are not read)',
      'observability.tracing.sampleRatio: expected a number written out in digits (1000, not 1e3)',
    ]);
    expect(problems({ RECONCILE_MS: '\t', RATIO: '+0.5' })).toEqual([
      'billing.rollup.reconcileIntervalMs: expected a number, got an empty value',
      'observability.tracing.sampleRatio: expected a number without a leading + (5, not +5)',
    ]);
  });

  it('parses a minimal document and applies defaults', () => {
    const config = parseConfig(minimal, { SIM_KEY: 'k' });
    expect(config.providers['sim']).toMatchObject({ type: 'openai', apiKey: 'k' });
    expect(config.ingress.http.host).toBe('127.0.0.1');
    expect(config.models[0]?.pricing.input).toBe('0');
    expect(config.models[0]?.deployments[0]?.weight).toBe(1);
  });

  it('sends output limits as max_completion_tokens to OpenAI itself, as the client sent them elsewhere, unless told', () => {
    const providers = {
      openai: { type: 'openai', baseUrl: 'https://api.openai.com/v1' },
      'openai-eu': { type: 'openai', baseUrl: 'https://eu.api.openai.com/v1' },
      vllm: { type: 'openai', baseUrl: 'http://vllm.internal:8000/v1' },
      mistral: { type: 'openai', baseUrl: 'https://api.mistral.ai/v1', outputLimit: 'max_tokens' },
      azure: { type: 'azure', baseUrl: 'https://r.openai.azure.com' },
      'azure-o3': { type: 'azure', baseUrl: 'https://r.openai.azure.com', outputLimit: 'max_completion_tokens' },
    };
    const config = parseConfig({ ...minimal, providers: { ...minimal.providers, ...providers } }, { SIM_KEY: 'k' });
    expect(Object.fromEntries(Object.entries(config.providers).map(([id, p]) => [id, p.type === 'openai' || p.type === 'azure' ? p.outputLimit : 'n/a']))).toEqual({
      sim: undefined,
      openai: 'max_completion_tokens',
      'openai-eu': 'max_completion_tokens',
      vllm: undefined,
      mistral: 'max_tokens',
      azure: undefined,
      'azure-o3': 'max_completion_tokens',
    });
    // Anthropic's parameters never go to OpenAI's own API, which refuses them; compatible servers get what the client sent unless told.
    const drop = Object.fromEntries(Object.entries(config.providers).map(([id, p]) => [id, p.type === 'openai' || p.type === 'azure' ? p.dropParams : 'n/a']));
    expect(drop).toEqual({ sim: [], openai: ['thinking', 'top_k', 'cache_control'], 'openai-eu': ['thinking', 'top_k', 'cache_control'], vllm: [], mistral: [], azure: ['thinking', 'top_k', 'cache_control'], 'azure-o3': ['thinking', 'top_k', 'cache_control'] });
    const told = parseConfig({ ...minimal, providers: { ...minimal.providers, groq: { type: 'openai', baseUrl: 'https://api.groq.com/openai/v1', dropParams: ['top_k', 'seed'] }, openai: { type: 'openai', baseUrl: 'https://api.openai.com/v1', dropParams: [] } } }, { SIM_KEY: 'k' });
    expect([told.providers['groq'], told.providers['openai']].map((p) => (p?.type === 'openai' ? p.dropParams : undefined))).toEqual([['top_k', 'seed'], []]);
    // What budgets and metering rely on cannot be dropped.
    expect(() => parseConfig({ ...minimal, providers: { ...minimal.providers, vllm: { type: 'openai', baseUrl: 'http://vllm:8000/v1', dropParams: ['top_k', 'max_tokens', 'stream_options'] } } }, { SIM_KEY: 'k' })).toThrow(
      /providers\.vllm\.dropParams\[1\]: "max_tokens" cannot be dropped[\s\S]*providers\.vllm\.dropParams\[2\]: "stream_options" cannot be dropped/,
    );
  });

  it('lists every problem at once, each with its path', () => {
    const bad = {
      ...minimal,
      ingress: { http: { port: 'nope' }, router: 'no-port' },
      models: [
        { id: 'm', pricing: { input: '-1' }, deployments: [{ provider: 'ghost', model: 'up' }] },
        { id: 'm', deployments: [{ provider: 'sim', model: 'up' }] },
      ],
    };
    let error: unknown;
    try {
      parseConfig(bad, {});
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems.join('\n');
    expect(problems).toContain('providers.sim.apiKey: environment variable SIM_KEY is not set');
    expect(problems).toContain('ingress.http.port');
    expect(problems).toContain('ingress.router: must be host:port');
    expect(problems).toContain('models[0].pricing.input');
  });

  it('refuses a rollup reconciliation that looks back past the raw events\' retention', () => {
    const problems = (doc: Record<string, unknown>): string => {
      try {
        parseConfig(doc, { SIM_KEY: 'k' });
        return '';
      } catch (e) {
        return e instanceof ConfigError ? e.problems.join('\n') : String(e);
      }
    };
    const usage = { clickhouse: { retentionDays: 7 } };
    expect(problems({ ...minimal, usage, billing: { http: { port: 0 }, rollup: { lookbackDays: 7 } } })).toContain('billing.rollup.lookbackDays: must be less than usage.clickhouse.retentionDays (7)');
    expect(problems({ ...minimal, usage, billing: { http: { port: 0 }, rollup: { lookbackDays: 6 } } })).toBe('');
    expect(problems({ ...minimal, usage, billing: { http: { port: 0 }, rollup: { lookbackDays: 30, reconcileIntervalMs: 0 } } })).toBe('');
    // Over Kafka, raw events must outlive the topic's messages: an event stored past its TTL keeps no id, and a redelivery would count twice.
    const kafka = (retentionMs: number) => ({ bus: 'kafka', kafka: { brokers: ['127.0.0.1:9092'], retentionMs }, clickhouse: { retentionDays: 7 } });
    const billing = { http: { port: 0 }, rollup: { lookbackDays: 3 } };
    expect(problems({ ...minimal, usage: kafka(30 * 86_400_000), billing })).toContain('usage.clickhouse.retentionDays: must be longer than usage.kafka.retentionMs (30 days)');
    expect(problems({ ...minimal, usage: kafka(7 * 86_400_000), billing })).toContain('usage.clickhouse.retentionDays: must be longer than usage.kafka.retentionMs (7 days)');
    expect(problems({ ...minimal, usage: kafka(6 * 86_400_000), billing })).toBe('');
    // Kept for good: the topic's age says nothing of how late billing may be; documented instead.
    expect(problems({ ...minimal, usage: kafka(-1), billing })).toBe('');
  });

  it('rejects a budget in another currency than a price it may be charged', () => {
    const problems = (raw: Record<string, unknown>): string => {
      try {
        parseConfig({ ...minimal, ...raw }, { SIM_KEY: 'k' });
        return '';
      } catch (e) {
        return e instanceof ConfigError ? e.problems.join('\n') : String(e);
      }
    };
    const budgets = { list: [{ id: 'b', scope: { org: 'acme' }, period: 'monthly', amount: '10', currency: 'EUR' }] };
    const priced = (pricing: Record<string, unknown>) => [{ id: 'm', pricing, deployments: [{ id: 'd', provider: 'sim', model: 'x' }] }];
    expect(problems({ budgets, models: priced({ currency: 'EUR', input: '1' }) })).toBe('');
    expect(problems({ budgets, models: priced({ input: '1' }) })).toContain('budgets.list[0].currency: budget "b" is in EUR but model "m" is priced in USD');
    expect(problems({ budgets, models: priced({ currency: 'EUR', deployments: { d: { currency: 'GBP', input: '2' } } }) })).toContain('is priced in GBP');
    expect(problems({ budgets, models: priced({ currency: 'EUR', changes: [{ from: '2026-01-01', currency: 'USD', input: '2' }] }) })).toContain('is priced in USD');
    // A service tier's price is charged to the same budgets.
    expect(problems({ budgets, models: priced({ currency: 'EUR', tiers: { priority: { input: '2' } } }) })).toBe('');
    expect(problems({ budgets, models: priced({ currency: 'EUR', tiers: { priority: { currency: 'USD', input: '2' } } }) })).toContain('is priced in USD');
    expect(problems({ budgets, models: priced({ currency: 'EUR', tiers: { flex: { changes: [{ from: '2026-01-01', currency: 'GBP', input: '1' }] } } }) })).toContain('is priced in GBP');
  });

  it('rejects a price override for a deployment the model does not have', () => {
    const models = (deployments: Record<string, unknown>) => [{ id: 'm', pricing: { input: '1', deployments }, deployments: [{ id: 'd', provider: 'sim', model: 'x' }, { provider: 'sim', model: 'y' }] }];
    expect(() => parseConfig({ ...minimal, models: models({ d: { input: '2' }, 'm#1': { input: '3' } }) }, { SIM_KEY: 'k' })).not.toThrow();
    expect(() => parseConfig({ ...minimal, models: models({ dd: { input: '2' } }) }, { SIM_KEY: 'k' })).toThrow('models[0].pricing.deployments.dd: "dd" is not a deployment of model "m" (its deployments: d, m#1)');
  });

  it('reports cross-references: unknown providers and duplicate ids', () => {
    const bad = { ...minimal, models: [{ id: 'm', deployments: [{ provider: 'ghost', model: 'x' }] }, { id: 'm', deployments: [{ provider: 'sim', model: 'x' }] }] };
    expect(() => parseConfig(bad, { SIM_KEY: 'k' })).toThrow(/models\[0\]\.deployments\[0\]\.provider: unknown provider "ghost"[\s\S]*models\[1\]\.id: duplicate model id "m"/);
  });

  it('refuses names that response headers cannot carry', () => {
    const message = 'must be printable ASCII, not starting or ending with a space (it is sent in response headers)';
    expect(() => parseConfig({ ...minimal, models: [{ id: '模型', deployments: [{ provider: 'sim', model: 'x' }] }] }, { SIM_KEY: 'k' })).toThrow(`models[0].id: ${message}`);
    expect(() => parseConfig({ ...minimal, models: [{ id: 'm', deployments: [{ id: 'east 1 ', provider: 'sim', model: 'x' }] }] }, { SIM_KEY: 'k' })).toThrow(`models[0].deployments[0].id: ${message}`);
    expect(() => parseConfig({ ...minimal, models: [{ id: 'm', deployments: [{ id: 'east 1', provider: 'sim', model: 'x' }] }] }, { SIM_KEY: 'k' })).not.toThrow();
    const experiment = { id: 'ab-é', target: 'm', arms: [{ name: 'a', model: 'm', weight: 1 }] };
    expect(() => parseConfig({ ...minimal, models: [{ id: 'm', deployments: [{ provider: 'sim', model: 'x' }] }], routing: { experiments: [experiment] } }, { SIM_KEY: 'k' })).toThrow(`routing.experiments[0].id: ${message}`);
    // An experiment's report takes its id in the URL: 128 characters at most.
    const long = (id: string) => parseConfig({ ...minimal, models: [{ id: 'm', deployments: [{ provider: 'sim', model: 'x' }] }], routing: { experiments: [{ ...experiment, id, arms: [{ name: 'a', model: 'm', weight: 1 }, { name: 'b', model: 'm', weight: 1 }] }] } }, { SIM_KEY: 'k' });
    expect(() => long('e'.repeat(129))).toThrow('routing.experiments[0].id: at most 128 characters');
    expect(() => long('e'.repeat(128))).not.toThrow();
    // Upstream model names are the provider's and never sent back in a header: anything goes.
    expect(() => parseConfig({ ...minimal, models: [{ id: 'vendor/m-1.5:free', deployments: [{ provider: 'sim', model: 'モデル x' }] }] }, { SIM_KEY: 'k' })).not.toThrow();
  });

  it('rejects duplicate deployment ids, the default `<model>#<index>` ids included', () => {
    const problems = (models: unknown[]): string => {
      try {
        parseConfig({ ...minimal, models }, { SIM_KEY: 'k' });
        return '';
      } catch (e) {
        return (e as ConfigError).problems.join('\n');
      }
    };
    expect(
      problems([
        { id: 'a', deployments: [{ id: 'd', provider: 'sim', model: 'x' }] },
        { id: 'b', deployments: [{ id: 'd', provider: 'sim', model: 'y' }] },
      ]),
    ).toContain('models[1].deployments[0].id: deployment id "d" is already used by models[0].deployments[0]; deployment ids must be unique');
    expect(
      problems([
        { id: 'a', deployments: [{ provider: 'sim', model: 'x' }] },
        { id: 'b', deployments: [{ id: 'a#0', provider: 'sim', model: 'y' }] },
      ]),
    ).toContain('models[1].deployments[0].id: deployment id "a#0" is already used by models[0].deployments[0]');
    expect(
      problems([
        { id: 'b', deployments: [{ id: 'a#0', provider: 'sim', model: 'y' }] },
        { id: 'a', deployments: [{ provider: 'sim', model: 'x' }] },
      ]),
    ).toContain('models[1].deployments[0]: the default id "a#0" of this deployment is already used by models[0].deployments[0]');
    expect(problems([{ id: 'a', deployments: [{ provider: 'sim', model: 'x' }, { provider: 'sim', model: 'y' }] }])).toBe('');
  });

  it('rejects a deployment whose provider no adapter serves', () => {
    const doc = { ...minimal, router: { ...minimal.router, adapters: { other: '127.0.0.1:3' } }, providers: { ...minimal.providers, other: { type: 'openai', baseUrl: 'http://127.0.0.1:8/v1' } } };
    expect(() => parseConfig(doc, { SIM_KEY: 'k' })).toThrow('models[0].deployments[0].provider: no adapter serves provider "sim": add router.adapters.sim or router.adapters.default');
    expect(parseConfig({ ...doc, router: { ...doc.router, adapters: { sim: '127.0.0.1:3' } } }, { SIM_KEY: 'k' }).models).toHaveLength(1);
  });

  it('rejects balanced weights that are all zero and a gray release whose canary is its baseline', () => {
    const doc = {
      ...minimal,
      models: [...minimal.models, { id: 'n', deployments: [{ provider: 'sim', model: 'up' }] }],
      routing: { balanced: { quality: 0, cost: 0, latency: 0 }, grayReleases: [{ id: 'g', target: 'm', baseline: 'n', canary: 'n', steps: [{ afterMinutes: 0, percent: 10 }] }] },
    };
    expect(() => parseConfig(doc, { SIM_KEY: 'k' })).toThrow('routing.balanced: at least one of quality, cost and latency must be above 0');
    expect(() => parseConfig({ ...doc, routing: { ...doc.routing, balanced: { quality: 1, cost: 0, latency: 0 } } }, { SIM_KEY: 'k' })).toThrow(
      'routing.grayReleases[0].canary: the canary is the baseline ("n"): a gray release moves traffic to a different model or alias',
    );
  });

  it("takes a gray release's startAt as a date or a date-time with an offset, nothing a time zone or a lenient parser would read", () => {
    const release = (startAt: string) => ({
      ...minimal,
      models: [...minimal.models, { id: 'n', deployments: [{ provider: 'sim', model: 'up' }] }],
      routing: { grayReleases: [{ id: 'g', target: 'm', baseline: 'm', canary: 'n', startAt, steps: [{ afterMinutes: 0, percent: 10 }] }] },
    });
    for (const ok of ['2025-06-01', '2025-06-01T09:00:00Z', '2025-06-01T09:00:00+02:00']) expect(parseConfig(release(ok), { SIM_KEY: 'k' }).routing.grayReleases[0]?.startAt).toBe(ok);
    for (const bad of ['2025-06-01T09:00:00', 'June 1, 2025', '2025-06-31', '1']) {
      expect(() => parseConfig(release(bad), { SIM_KEY: 'k' })).toThrow(/routing\.grayReleases\[0\]\.startAt/);
    }
  });

  it('reads booleans given as text from the environment', () => {
    const doc = { ...minimal, gateway: { simulator: { enabled: '${SIM:-true}' } } };
    expect(parseConfig(doc, { SIM_KEY: 'k', SIM: 'false' }).gateway.simulator.enabled).toBe(false);
    expect(parseConfig(doc, { SIM_KEY: 'k' }).gateway.simulator.enabled).toBe(true);
  });

  it('fetches images from public addresses only unless told otherwise', () => {
    expect(parseConfig(minimal, { SIM_KEY: 'k' }).adapter.imageFetch).toEqual({ allowPrivateNetworks: false, allowedHosts: [] });
    const doc = { ...minimal, adapter: { ...minimal.adapter, imageFetch: { allowPrivateNetworks: '${LAB:-no}', allowedHosts: ['Images.Corp.Internal'] } } };
    expect(parseConfig(doc, { SIM_KEY: 'k', LAB: 'yes' }).adapter.imageFetch).toEqual({ allowPrivateNetworks: true, allowedHosts: ['images.corp.internal'] });
  });

  it('loads the embedded default from the repository', () => {
    const root = resolve(__dirname, '../../..');
    const config = loadConfig(readRuntimeEnv({ PORT: '9999' }, root));
    expect(config.ingress.http.port).toBe(9999);
    expect(config.models.some((m) => m.id.includes('embed'))).toBe(true);
    expect(config.gateway.simulator.enabled).toBe(true);
  });

  it('applies YAML merge keys: the anchored settings, overridden by the keys written beside them', () => {
    const dir = mkdtempSync(join(tmpdir(), 'config-merge-'));
    try {
      const file = join(dir, 'config.yaml');
      const { models: _models, ...rest } = minimal;
      writeFileSync(file, `${stringifyYaml(rest)}
x-pricing: &pricing
  input: "0.15"
  output: "0.60"
x-deployment: &deployment
  provider: sim
  weight: 3
models:
  - id: merged
    pricing: { <<: *pricing, output: "0.90" }
    deployments:
      - { <<: *deployment, model: up }
`);
      const config = loadConfigFile(file, { SIM_KEY: 'k' });
      expect(config.models[0]?.pricing).toMatchObject({ input: '0.15', output: '0.90' });
      expect(config.models[0]?.deployments[0]).toMatchObject({ provider: 'sim', model: 'up', weight: 3 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('keeps every digit of a price written as a YAML number a float cannot hold, and reads numeric settings from such text as before', () => {
    const dir = mkdtempSync(join(tmpdir(), 'config-exact-'));
    try {
      const file = join(dir, 'config.yaml');
      const { models: _models, ...rest } = minimal;
      writeFileSync(file, `${stringifyYaml(rest)}
usage:
  clickhouse:
    retentionDays: 400.00000000000000001
models:
  - id: exact
    pricing:
      input: 0.12345678901234567891
      output: 0.10000000000000000001
      perRequest: 1.50
      cachedInput: \${CACHED_PRICE}
    deployments:
      - { provider: sim, model: up, weight: 0.5 }
`);
      const config = loadConfigFile(file, { SIM_KEY: 'k', CACHED_PRICE: '0.01234567890123456789' });
      // Read through a float these were 0.12345678901234568 and 0.1.
      expect(config.models[0]?.pricing).toMatchObject({ input: '0.12345678901234567891', output: '0.10000000000000000001', perRequest: '1.5', cachedInput: '0.01234567890123456789' });
      expect(config.usage.clickhouse.retentionDays).toBe(400);
      expect(config.models[0]?.deployments[0]?.weight).toBe(0.5);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('says why a setting that takes only a number refuses one written with more digits than a float holds', () => {
    const dir = mkdtempSync(join(tmpdir(), 'config-exact-'));
    try {
      const file = join(dir, 'config.yaml');
      const { models: _models, ...rest } = minimal;
      writeFileSync(file, `${stringifyYaml(rest)}
models:
  - id: m
    deployments:
      - { provider: sim, model: up, weight: 0.33333333333333333 }
`);
      expect(() => loadConfigFile(file, { SIM_KEY: 'k' })).toThrow(
        'models[0].deployments[0].weight: Invalid input: expected number, received string (a number with more significant digits than a binary float holds is read as its text: write at most 15)',
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('names the file when it cannot be read or parsed', () => {
    expect(() => loadConfigFile('/nonexistent/x.yaml', {})).toThrow(/cannot read the file/);
  });

  it('places a YAML error by line and column without quoting the line (it may hold a password)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'or-config-'));
    try {
      const file = join(dir, 'config.yaml');
      for (const [text, line] of [
        ['version: 1\nusage:\n  clickhouse:\n    password: s3cr3t: tail\n', 4],
        ['version: 1\nproviders:\n  - id: p\n    apiKey: "sk-live-s3cr3t\n', 5],
      ] as const) {
        writeFileSync(file, text);
        const message = loadFailure(file);
        expect(message).toContain(file);
        expect(message).toMatch(new RegExp(`not valid YAML at line ${line}, column \\d+: `));
        expect(message).not.toContain('s3cr3t');
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses an unquoted value that YAML reads as a tag, an alias or a block scalar, placing it without quoting it or warning with it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'or-config-'));
    const warnings: unknown[] = [];
    const onWarning = (warning: unknown): number => warnings.push(warning);
    process.on('warning', onWarning);
    try {
      const file = join(dir, 'config.yaml');
      const withKey = (apiKey: string): string => stringifyYaml({ ...minimal, providers: { sim: { ...minimal.providers.sim, apiKey: 'KEY' } } }).replace("apiKey: KEY", `apiKey: ${apiKey}`);
      for (const [apiKey, problem] of [
        // A tag would leave the key empty (or the text after it), an alias names no anchor: both silently, before.
        ['!s3cr3t', 'an unknown tag'],
        ['!s3cr3t tail', 'an unknown tag'],
        ['*s3cr3t', 'an alias'],
        ['|s3cr3t', 'unexpected text'],
        ['"s3\\u12zzcr3t"', 'an invalid escape sequence'],
      ] as const) {
        writeFileSync(file, withKey(apiKey));
        const message = loadFailure(file);
        expect(message).toContain(file);
        expect(message).toMatch(new RegExp(`\\n  - not valid YAML at line \\d+, column \\d+: ${problem}`));
        // The secret's text is not in the message (the file's path, from mkdtemp, may hold any letters).
        expect(message.replace(file, '')).not.toContain('s3');
      }
      expect(warnings).toEqual([]);
    } finally {
      process.off('warning', onWarning);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
