import { resolve } from 'node:path';
import { ConfigError, interpolate, loadConfigFile, parseConfig } from './config-loader';
import { loadConfig, readRuntimeEnv } from './runtime-env';

const minimal = {
  version: 1,
  ingress: { http: { port: 8080 }, router: '127.0.0.1:1' },
  router: { grpc: { port: 1 }, http: { port: 0 }, adapters: { default: '127.0.0.1:2' } },
  adapter: { grpc: { port: 2 }, http: { port: 0 } },
  billing: { http: { port: 0 } },
  alerting: { http: { port: 0 } },
  providers: { sim: { type: 'openai', baseUrl: 'http://127.0.0.1:9/v1', apiKey: '${SIM_KEY}' } },
  models: [{ id: 'm', deployments: [{ provider: 'sim', model: 'up' }] }],
};

describe('config', () => {
  it('interpolates variables and defaults', () => {
    const problems: string[] = [];
    expect(interpolate({ a: '${X}', b: ['${Y:-dflt}'], c: 'p${X}s' }, { X: '1' }, '', problems)).toEqual({ a: '1', b: ['dflt'], c: 'p1s' });
    expect(problems).toEqual([]);
  });

  it('parses a minimal document and applies defaults', () => {
    const config = parseConfig(minimal, { SIM_KEY: 'k' });
    expect(config.providers['sim']).toMatchObject({ type: 'openai', apiKey: 'k' });
    expect(config.ingress.http.host).toBe('127.0.0.1');
    expect(config.models[0]?.pricing.input).toBe('0');
    expect(config.models[0]?.deployments[0]?.weight).toBe(1);
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
  });

  it('reports cross-references: unknown providers and duplicate ids', () => {
    const bad = { ...minimal, models: [{ id: 'm', deployments: [{ provider: 'ghost', model: 'x' }] }, { id: 'm', deployments: [{ provider: 'sim', model: 'x' }] }] };
    expect(() => parseConfig(bad, { SIM_KEY: 'k' })).toThrow(/models\[0\]\.deployments\[0\]\.provider: unknown provider "ghost"[\s\S]*models\[1\]\.id: duplicate model id "m"/);
  });

  it('reads booleans given as text from the environment', () => {
    const doc = { ...minimal, gateway: { simulator: { enabled: '${SIM:-true}' } } };
    expect(parseConfig(doc, { SIM_KEY: 'k', SIM: 'false' }).gateway.simulator.enabled).toBe(false);
    expect(parseConfig(doc, { SIM_KEY: 'k' }).gateway.simulator.enabled).toBe(true);
  });

  it('loads the embedded default from the repository', () => {
    const root = resolve(__dirname, '../../..');
    const config = loadConfig(readRuntimeEnv({ PORT: '9999' }, root));
    expect(config.ingress.http.port).toBe(9999);
    expect(config.models.some((m) => m.id.includes('embed'))).toBe(true);
    expect(config.gateway.simulator.enabled).toBe(true);
  });

  it('names the file when it cannot be read or parsed', () => {
    expect(() => loadConfigFile('/nonexistent/x.yaml', {})).toThrow(/cannot read the file/);
  });
});
