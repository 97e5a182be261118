// The deployment files checked against the code they deploy: deploy/compose.yaml, the Dockerfiles
// under deploy/docker/ and the configurations under deploy/config/. Everything expected is derived
// from the repository (services/, the configurations, the compose file itself), so adding a
// service, a provider or a port in one place and forgetting another fails here.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join, posix, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { DEFAULT_CONFIG_PATH, loadConfigFile, providerApiKey, providerBaseUrl, type GatewayConfig, type Listen, type ProviderConfig } from '@openrouter/config';

const ROOT = resolve(__dirname, '..', '..');
const DEPLOY = join(ROOT, 'deploy');
const COMPOSE_FILE = join(DEPLOY, 'compose.yaml');
const CONFIG_DIR = join(DEPLOY, 'config');
const DOCKER_DIR = join(DEPLOY, 'docker');
const NODE_BASE_IMAGE = 'node:20-slim';
/** The infrastructure each application container is told about (KAFKA_BROKERS is host:port lists). */
const INFRA_VARS = ['KAFKA_BROKERS', 'REDIS_URL', 'CLICKHOUSE_URL'] as const;

type Vars = Record<string, string>;
const byNumber = (a: number, b: number): number => a - b;

interface ComposeService {
  build?: string | { context?: string; dockerfile?: string };
  stop_grace_period?: string;
  image?: string;
  command?: string | string[];
  environment?: Record<string, string | number | boolean | null> | string[];
  volumes?: Array<string | { type?: string; source?: string; target?: string }>;
  ports?: Array<string | number | { target: number }>;
  expose?: Array<string | number>;
  depends_on?: string[] | Record<string, { condition?: string }>;
  healthcheck?: { test?: string | string[]; disable?: boolean };
  profiles?: string[];
}

interface ComposeFile {
  services: Record<string, ComposeService>;
}

// ------------------------------------------------------------------ compose interpolation

/** Compose's own `${NAME}`, `${NAME:-default}`, `${NAME-default}`, `${NAME:?error}`, `${NAME?error}`, `$NAME`, `$$`. */
const COMPOSE_VARIABLE = /\$(?:\$|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))/g;

function interpolateCompose(value: unknown, shell: Readonly<Vars>): unknown {
  if (typeof value === 'string') {
    return value.replace(COMPOSE_VARIABLE, (match, braced: string | undefined, operator: string | undefined, argument: string | undefined, bare: string | undefined) => {
      if (match === '$$') return '$';
      const name = (braced ?? bare) as string;
      const found = shell[name];
      const missing = found === undefined || (operator?.startsWith(':') === true && found === '');
      if (operator === ':-' || operator === '-') return missing ? (argument ?? '') : (found as string);
      if (operator === ':?' || operator === '?') {
        if (missing) throw new Error(`required variable ${name} is missing a value: ${argument ?? ''}`);
        return found as string;
      }
      return found ?? '';
    });
  }
  if (Array.isArray(value)) return value.map((v) => interpolateCompose(v, shell));
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolateCompose(v, shell)]));
  return value;
}

const composeText = readFileSync(COMPOSE_FILE, 'utf8');
/** The document as written (merge keys resolved), before variables are substituted. */
const rawCompose = parseYaml(composeText, { merge: true }) as ComposeFile;
/** Variables compose refuses to run without (`${NAME:?…}`): the ones an operator must export. */
const REQUIRED_SHELL_VARS = [...new Set([...composeText.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*):?\?/g)].map((m) => m[1] as string))];
/** The operator's shell: only what compose requires; everything else takes the file's defaults. */
const SHELL: Vars = Object.fromEntries(REQUIRED_SHELL_VARS.map((name) => [name, `deploy-test-${name.toLowerCase()}`]));
const compose = interpolateCompose(rawCompose, SHELL) as ComposeFile;
const serviceNames = Object.keys(compose.services);

function environmentOf(service: ComposeService): Vars {
  const env = service.environment ?? {};
  if (Array.isArray(env)) {
    return Object.fromEntries(env.map((entry) => (entry.includes('=') ? [entry.slice(0, entry.indexOf('=')), entry.slice(entry.indexOf('=') + 1)] : [entry, ''])));
  }
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v === null ? '' : String(v)]));
}

function containerPort(entry: string | number | { target: number }): number {
  if (typeof entry === 'object') return entry.target;
  const last = String(entry).split(':').at(-1) ?? '';
  return Number(last.split('/')[0]);
}

function dependsOn(service: ComposeService): Record<string, string | undefined> {
  const deps = service.depends_on ?? {};
  return Array.isArray(deps) ? Object.fromEntries(deps.map((d) => [d, undefined])) : Object.fromEntries(Object.entries(deps).map(([k, v]) => [k, v.condition]));
}

function healthcheckText(check: { test?: string | string[] } | undefined): string {
  return Array.isArray(check?.test) ? check.test.join(' ') : (check?.test ?? '');
}

/** `http://127.0.0.1:PORT/PATH` probed by a healthcheck command. */
function probedUrl(text: string): { port: number; path: string } | undefined {
  const match = /https?:\/\/(?:127\.0\.0\.1|localhost):(\d+)(\/[^'"\s)]*)/.exec(text);
  return match ? { port: Number(match[1]), path: match[2] as string } : undefined;
}

function hostAndPort(address: string): { host: string; port: number } {
  const url = new URL(address.includes('://') ? address : `tcp://${address}`);
  return { host: url.hostname, port: Number(url.port) };
}

// ------------------------------------------------------------------ Dockerfiles

interface Instruction {
  keyword: string;
  args: string;
}

interface Dockerfile {
  path: string;
  stages: Instruction[][];
}

function readDockerfile(path: string): Dockerfile {
  const logical = readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => !/^\s*#/.test(line))
    .join('\n')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '');
  const stages: Instruction[][] = [];
  for (const line of logical) {
    const [keyword = '', ...rest] = line.split(/\s+/);
    const instruction = { keyword: keyword.toUpperCase(), args: rest.join(' ') };
    if (instruction.keyword === 'FROM') stages.push([]);
    stages.at(-1)?.push(instruction);
  }
  return { path, stages };
}

function finalStage(file: Dockerfile): Instruction[] {
  return file.stages.at(-1) ?? [];
}

function instructions(stage: Instruction[], keyword: string): string[] {
  return stage.filter((i) => i.keyword === keyword).map((i) => i.args);
}

function dockerCmd(file: Dockerfile): string[] {
  const cmd = instructions(finalStage(file), 'CMD').at(-1);
  if (cmd === undefined) return [];
  return cmd.startsWith('[') ? (JSON.parse(cmd) as string[]) : ['/bin/sh', '-c', cmd];
}

function dockerEnv(file: Dockerfile): Vars {
  const env: Vars = {};
  for (const args of instructions(finalStage(file), 'ENV')) {
    for (const [, key, value] of args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|\S*)/g)) env[key as string] = (value as string).replace(/^"|"$/g, '');
  }
  return env;
}

// ------------------------------------------------------------------ the repository's programs

/** Service programs: every services/<name> with a src/main.ts. */
const SERVICE_PROGRAMS = readdirSync(join(ROOT, 'services')).filter((name) => existsSync(join(ROOT, 'services', name, 'src', 'main.ts')));
/** Library programs (the provider simulator): every libs/<name> with a src/main.ts. */
const LIB_PROGRAMS = readdirSync(join(ROOT, 'libs')).filter((name) => existsSync(join(ROOT, 'libs', name, 'src', 'main.ts')));

/** `dist/services/router/src/main.js` → `services/router/src/main.ts`. */
function sourceOf(entry: string): string | undefined {
  const match = /^(?:\.\/)?dist\/((?:services|libs)\/[^/]+\/src\/.+)\.js$/.exec(entry);
  return match ? `${match[1] as string}.ts` : undefined;
}

/** The program a source entry belongs to: `services/router/src/main.ts` → `router`. */
function programOf(source: string): string {
  return source.split('/')[1] as string;
}

// ------------------------------------------------------------------ what compose runs

interface Runner {
  /** Compose service name. */
  name: string;
  service: ComposeService;
  dockerfile: Dockerfile;
  /** What the container runs: compose's command, else the image's CMD. */
  argv: string[];
  /** Repository source of the entry file. */
  source: string | undefined;
  program: string;
  /** The container's environment: the image's ENV, then compose's environment. */
  env: Vars;
  /** Host path of the configuration the container reads (services only). */
  configPath: string | undefined;
}

function dockerfilePathOf(service: ComposeService): string | undefined {
  if (service.build === undefined) return undefined;
  const build = typeof service.build === 'string' ? { context: service.build } : service.build;
  return resolve(DEPLOY, build.context ?? '.', build.dockerfile ?? 'Dockerfile');
}

/** Maps a path inside the container to the host through the service's bind mounts; relative paths are under the image's WORKDIR, a copy of the repository root. */
function hostPathOf(service: ComposeService, containerPath: string): string {
  if (!containerPath.startsWith('/')) return resolve(ROOT, containerPath);
  for (const volume of service.volumes ?? []) {
    const [source, target] = typeof volume === 'string' ? volume.split(':') : [volume.source, volume.target];
    if (source === undefined || target === undefined || !/^[./]/.test(source)) continue;
    const rel = posix.relative(target, containerPath);
    if (!rel.startsWith('..') && !posix.isAbsolute(rel)) return resolve(DEPLOY, source, rel);
  }
  return containerPath;
}

const runners: Runner[] = serviceNames.flatMap((name) => {
  const service = compose.services[name] as ComposeService;
  const dockerfilePath = dockerfilePathOf(service);
  if (dockerfilePath === undefined) return [];
  const dockerfile: Dockerfile = existsSync(dockerfilePath) ? readDockerfile(dockerfilePath) : { path: dockerfilePath, stages: [] };
  const argv = service.command === undefined ? dockerCmd(dockerfile) : Array.isArray(service.command) ? service.command : service.command.split(/\s+/);
  const entry = argv[0] === 'node' ? argv[1] : undefined;
  const source = entry === undefined ? undefined : sourceOf(entry);
  const program = source === undefined ? '' : programOf(source);
  const env = { ...dockerEnv(dockerfile), ...environmentOf(service) };
  const isService = source?.startsWith('services/') === true;
  const configPath = isService ? hostPathOf(service, env['OPENROUTER_CONFIG'] || DEFAULT_CONFIG_PATH) : undefined;
  return [{ name, service, dockerfile, argv, source, program, env, configPath }];
});

const configCache = new Map<string, GatewayConfig>();
/** The configuration a runner's process would load, validated by the real schema. */
function configOf(runner: Runner): GatewayConfig {
  if (runner.configPath === undefined) throw new Error(`${runner.name} reads no configuration`);
  const key = `${runner.name}\u0000${runner.configPath}`;
  let config = configCache.get(key);
  if (!config) {
    config = loadConfigFile(runner.configPath, runner.env);
    configCache.set(key, config);
  }
  return config;
}

const serviceRunners = runners.filter((r) => r.configPath !== undefined);
const runnersOf = (program: string): Runner[] => runners.filter((r) => r.program === program);
const runnerNamed = (name: string): Runner | undefined => runners.find((r) => r.name === name);

/** The listeners a service program opens from its configuration (the embedded gateway exposes only the ingress). */
function listenersOf(runner: Runner): Record<string, Listen> {
  const config = configOf(runner);
  const section: unknown = runner.program === 'gateway' ? { http: config.ingress.http } : (config as unknown as Record<string, unknown>)[runner.program];
  if (section === null || typeof section !== 'object') return {};
  return Object.fromEntries(
    Object.entries(section).filter((entry): entry is [string, Listen] => {
      const value: unknown = entry[1];
      return value !== null && typeof value === 'object' && 'host' in value && 'port' in value;
    }),
  );
}

/** The adapter instance (compose service) the router sends a provider's calls to. */
function adapterServiceFor(config: GatewayConfig, provider: string): string | undefined {
  const address = config.router.adapters[provider] ?? config.router.adapters['default'];
  return address === undefined ? undefined : hostAndPort(address).host;
}

function servesProvider(runner: Runner, provider: string): boolean {
  const served = configOf(runner).adapter.providers;
  return served.length === 0 || served.includes(provider);
}

/** `${NAME}` placeholders in a raw configuration value. */
function placeholders(value: unknown, withDefault: boolean | 'any' = 'any'): string[] {
  const text = typeof value === 'string' ? value : JSON.stringify(value ?? '');
  return [...text.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}/g)].filter((m) => withDefault === 'any' || (m[2] !== undefined) === withDefault).map((m) => m[1] as string);
}

const configFiles = readdirSync(CONFIG_DIR).filter((f) => /\.ya?ml$/.test(f));
const dockerfiles = readdirSync(DOCKER_DIR).filter((f) => /^Dockerfile(\..+)?$/.test(f));
const adapterRunners = runnersOf('adapter');
const routerRunner = runnersOf('router')[0];
const ingressRunner = runnersOf('ingress')[0];

// ------------------------------------------------------------------ the checks

describe('deploy/compose.yaml', () => {
  it('runs every service under services/ in a container of its own (the embedded gateway runs all of them, opt-in)', () => {
    expect(SERVICE_PROGRAMS.length).toBeGreaterThan(0);
    for (const program of SERVICE_PROGRAMS) {
      const running = runnersOf(program);
      expect({ program, services: running.length > 0 }).toEqual({ program, services: true });
      if (program === 'gateway') {
        for (const runner of running) expect({ service: runner.name, optIn: (runner.service.profiles?.length ?? 0) > 0 }).toEqual({ service: runner.name, optIn: true });
      } else if (program !== 'adapter') {
        expect(running.map((r) => r.name)).toContain(program);
      }
    }
  });

  it('runs one adapter instance per provider of the distributed configuration, named adapter-<provider>', () => {
    expect(adapterRunners.length).toBeGreaterThan(0);
    const configPaths = new Set(adapterRunners.map((r) => r.configPath));
    expect(configPaths.size).toBe(1);
    const providers = Object.keys(configOf(adapterRunners[0] as Runner).providers);
    expect(adapterRunners.map((r) => r.name).sort()).toEqual(providers.map((p) => `adapter-${p}`).sort());
    for (const runner of adapterRunners) expect({ instance: runner.name, serves: servesProvider(runner, runner.name.slice('adapter-'.length)) }).toEqual({ instance: runner.name, serves: true });
  });

  it('routes every provider to its own adapter instance, and every router.adapters address names a compose adapter service and its gRPC port', () => {
    expect(routerRunner).toBeDefined();
    const config = configOf(routerRunner as Runner);
    for (const provider of Object.keys(config.providers)) {
      expect({ provider, instance: adapterServiceFor(config, provider) }).toEqual({ provider, instance: `adapter-${provider}` });
    }
    for (const [provider, address] of Object.entries(config.router.adapters)) {
      const { host, port } = hostAndPort(address);
      expect({ provider, host, known: serviceNames.includes(host) }).toEqual({ provider, host, known: true });
      const adapter = runnerNamed(host) as Runner;
      expect({ provider, program: adapter.program }).toEqual({ provider, program: 'adapter' });
      expect({ provider, port }).toEqual({ provider, port: configOf(adapter).adapter.grpc.port });
      if (provider !== 'default') expect({ provider, served: servesProvider(adapter, provider) }).toEqual({ provider, served: true });
    }
  });

  it('points the ingress at the router service and its gRPC port', () => {
    expect(ingressRunner).toBeDefined();
    const { host, port } = hostAndPort(configOf(ingressRunner as Runner).ingress.router);
    const router = runnerNamed(host);
    expect(router?.program).toBe('router');
    expect(port).toBe(configOf(router as Runner).router.grpc.port);
  });

  it('runs each provider that is a compose service on the port, and with the key, the configuration gives it', () => {
    const config = configOf(routerRunner as Runner);
    const local = Object.entries(config.providers).filter(([, provider]) => serviceNames.includes(new URL(providerBaseUrl(provider)).hostname));
    expect(local.length).toBeGreaterThan(0);
    for (const [id, provider] of local) {
      const url = new URL(providerBaseUrl(provider));
      const server = runnerNamed(url.hostname);
      expect(server).toBeDefined();
      const flag = (name: string): string | undefined => {
        const at = (server as Runner).argv.indexOf(`--${name}`);
        return at === -1 ? undefined : (server as Runner).argv[at + 1];
      };
      expect({ id, host: flag('host'), port: Number(flag('port')) }).toEqual({ id, host: '0.0.0.0', port: Number(url.port) });
      // The key the provider's adapter instance sends is the one the simulator requires.
      const adapter = runnerNamed(`adapter-${id}`) as Runner;
      expect({ id, apiKey: flag('api-key') ?? '' }).toEqual({ id, apiKey: providerApiKey(configOf(adapter).providers[id] as ProviderConfig) });
    }
  });

  it('gives a provider key only to that provider’s adapter instance (and the all-in-one gateway)', () => {
    const file = (routerRunner as Runner).configPath as string;
    const raw = parseYaml(readFileSync(file, 'utf8')) as { providers: Record<string, { apiKey?: unknown; headers?: unknown }> };
    for (const [id, provider] of Object.entries(raw.providers)) {
      for (const name of placeholders([provider.apiKey, provider.headers])) {
        const holders = runners.filter((r) => name in environmentOf(r.service)).map((r) => r.name);
        const allowed = [`adapter-${id}`, ...runnersOf('gateway').map((r) => r.name)];
        expect({ variable: name, holders: holders.filter((h) => !allowed.includes(h)) }).toEqual({ variable: name, holders: [] });
        expect({ variable: name, adapter: holders.includes(`adapter-${id}`) }).toEqual({ variable: name, adapter: true });
      }
    }
  });

  it('starts a service only after the peers it calls are healthy', () => {
    const needs = new Map<string, string[]>();
    const add = (runner: Runner | undefined, peer: string): void => {
      if (runner && serviceNames.includes(peer)) needs.set(runner.name, [...(needs.get(runner.name) ?? []), peer]);
    };
    if (ingressRunner) add(ingressRunner, hostAndPort(configOf(ingressRunner).ingress.router).host);
    if (routerRunner) for (const address of Object.values(configOf(routerRunner).router.adapters)) add(routerRunner, hostAndPort(address).host);
    for (const adapter of adapterRunners) {
      const provider = configOf(adapter).providers[adapter.name.slice('adapter-'.length)];
      if (provider) add(adapter, new URL(providerBaseUrl(provider)).hostname);
    }
    expect(needs.size).toBeGreaterThan(0);
    for (const [name, peers] of needs) {
      const deps = dependsOn(compose.services[name] as ComposeService);
      for (const peer of peers) expect({ service: name, peer, condition: deps[peer] }).toEqual({ service: name, peer, condition: 'service_healthy' });
    }
    for (const name of serviceNames) {
      for (const [peer, condition] of Object.entries(dependsOn(compose.services[name] as ComposeService))) {
        expect({ service: name, peer, known: serviceNames.includes(peer) }).toEqual({ service: name, peer, known: true });
        if (condition === 'service_healthy') {
          const check = compose.services[peer]?.healthcheck;
          const hasCheck = (check !== undefined && check.disable !== true) || instructions(finalStage(runnerNamed(peer)?.dockerfile ?? { path: '', stages: [] }), 'HEALTHCHECK').length > 0;
          expect({ service: name, peer, hasCheck }).toEqual({ service: name, peer, hasCheck: true });
        }
      }
    }
  });

  it('tells every service where Kafka, Redis and ClickHouse are, by compose service name', () => {
    for (const runner of serviceRunners.filter((r) => r.program !== 'gateway')) {
      for (const variable of INFRA_VARS) {
        const value = runner.env[variable];
        expect({ service: runner.name, variable, set: (value ?? '') !== '' }).toEqual({ service: runner.name, variable, set: true });
        for (const address of (value as string).split(',')) {
          const { host } = hostAndPort(address);
          expect({ service: runner.name, variable, host, known: serviceNames.includes(host) }).toEqual({ service: runner.name, variable, host, known: true });
        }
      }
    }
  });

  it('runs Kafka as a single KRaft node that advertises the address the services are given', () => {
    const brokers = serviceRunners.map((r) => r.env['KAFKA_BROKERS']).filter((v): v is string => v !== undefined);
    expect(brokers.length).toBeGreaterThan(0);
    for (const address of new Set(brokers.flatMap((b) => b.split(',')))) {
      const { host, port } = hostAndPort(address);
      const env = environmentOf(compose.services[host] as ComposeService);
      expect(env['KAFKA_PROCESS_ROLES']?.split(',').sort()).toEqual(['broker', 'controller']);
      expect(env['KAFKA_ADVERTISED_LISTENERS']?.split(',')).toContainEqual(expect.stringMatching(new RegExp(`^[A-Z_]+://${host}:${port}$`)));
      const controller = env['KAFKA_CONTROLLER_LISTENER_NAMES'] as string;
      const controllerPort = /:(\d+)$/.exec(env['KAFKA_LISTENERS']?.split(',').find((l) => l.startsWith(`${controller}://`)) ?? '')?.[1];
      expect(controllerPort).toBeDefined();
      expect(env['KAFKA_CONTROLLER_QUORUM_VOTERS']).toBe(`${env['KAFKA_NODE_ID']}@${host}:${controllerPort}`);
      expect(env['CLUSTER_ID']).toMatch(/^[A-Za-z0-9_-]{22}$/);
    }
  });

  it("passes the alert webhook's address and signing secret from the operator's shell to alerting", () => {
    const shell = { ...SHELL, OPENROUTER_ALERT_WEBHOOK_URL: 'https://alerts.example.com/hook', OPENROUTER_ALERT_WEBHOOK_SECRET: 'webhook-signing-secret' };
    const env = environmentOf((interpolateCompose(rawCompose, shell) as ComposeFile).services['alerting'] as ComposeService);
    expect(env).toMatchObject({ OPENROUTER_ALERT_WEBHOOK_URL: 'https://alerts.example.com/hook', OPENROUTER_ALERT_WEBHOOK_SECRET: 'webhook-signing-secret' });
    const alerting = serviceRunners.find((r) => r.program === 'alerting');
    if (!alerting) throw new Error('no alerting service');
    const config = loadConfigFile(alerting.configPath as string, { ...alerting.env, ...env });
    expect(config.observability.alerting?.channels.find((c) => c.id === 'ops')).toMatchObject({ url: 'https://alerts.example.com/hook', secret: 'webhook-signing-secret' });
  });

  it("gives the embedded gateway the operator's hash secret, not the development one its file falls back to", () => {
    expect(environmentOf(compose.services['gateway'] as ComposeService)['OPENROUTER_KEY_HASH_SECRET']).toBe(SHELL['OPENROUTER_KEY_HASH_SECRET']);
  });

  it('requires, with a message, every variable the configuration needs and has no default for', () => {
    for (const runner of serviceRunners) {
      const needed = placeholders(parseYaml(readFileSync(runner.configPath as string, 'utf8')), false);
      const env = environmentOf(rawCompose.services[runner.name] as ComposeService);
      for (const name of needed) {
        const value = env[name] ?? '';
        const guarded = /\$\{[A-Za-z_][A-Za-z0-9_]*:\?[^}]+\}/.test(value) || (value !== '' && !value.includes('$'));
        expect({ service: runner.name, variable: name, guarded }).toEqual({ service: runner.name, variable: name, guarded: true });
      }
    }
    for (const name of REQUIRED_SHELL_VARS) {
      const { [name]: _dropped, ...without } = SHELL;
      expect(() => interpolateCompose(rawCompose, without)).toThrow(name);
    }
  });
});

/** A Markdown file's section under `heading`, up to the next heading of the same or a higher level (outside code blocks). */
function section(file: string, heading: string): string {
  const lines = readFileSync(join(ROOT, file), 'utf8').split('\n');
  const start = lines.indexOf(heading);
  if (start < 0) throw new Error(`${file} has no section ${heading}`);
  const level = (heading.split(' ')[0] as string).length;
  let inCode = false;
  let end = lines.length;
  for (let i = start + 1; i < lines.length; i++) {
    const line = lines[i] as string;
    if (line.startsWith('```')) inCode = !inCode;
    const hashes = /^(#+) /.exec(line)?.[1]?.length;
    if (!inCode && hashes !== undefined && hashes <= level) {
      end = i;
      break;
    }
  }
  return lines.slice(start + 1, end).join('\n');
}

/** compose's duration text (`20s`, `1m30s`) in milliseconds. */
function durationMs(text: string): number {
  let ms = 0;
  for (const [, amount, unit] of text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) ms += Number(amount) * { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }[unit as 'ms' | 's' | 'm' | 'h'];
  return ms;
}

describe('the documented ways to run the distributed stack', () => {
  const distributed = join(CONFIG_DIR, 'distributed.yaml');
  const required = placeholders(parseYaml(readFileSync(distributed, 'utf8')), false);
  const recipes = [
    ['README.md', section('README.md', '## Run it distributed')],
    ['docs/deploy.md', section('docs/deploy.md', '## Run it as processes')],
  ] as const;

  it('export every variable the configuration requires, and say where Kafka, Redis and ClickHouse are', () => {
    expect(required.length).toBeGreaterThan(0);
    for (const [file, recipe] of recipes) {
      for (const name of [...required, ...INFRA_VARS]) expect({ file, variable: name, exported: new RegExp(`\\b${name}=`).test(recipe) }).toEqual({ file, variable: name, exported: true });
    }
  });

  it('pass every variable the configuration requires to an image run on its own with it', () => {
    const runs = readFileSync(join(ROOT, 'docs/deploy.md'), 'utf8').split('\n').filter((l) => /^docker run .*OPENROUTER_CONFIG=deploy\/config\/distributed\.yaml/.test(l));
    expect(runs.length).toBeGreaterThan(0);
    for (const run of runs) for (const name of required) expect({ run, variable: name, passed: run.includes(`-e ${name}=`) }).toEqual({ run, variable: name, passed: true });
  });

  it('list every variable compose requires in the table of variables compose reads', () => {
    const table = section('docs/deploy.md', '## Run it with Docker Compose');
    for (const name of REQUIRED_SHELL_VARS) expect({ variable: name, listed: table.includes(`| \`${name}\` |`) }).toEqual({ variable: name, listed: true });
  });

  it('give every service a shutdown grace below the time compose waits before it kills the container', () => {
    for (const runner of serviceRunners.filter((r) => r.program !== 'gateway')) {
      const stopGrace = durationMs(String(compose.services[runner.name]?.stop_grace_period ?? '10s'));
      const config = configOf(runner);
      for (const [key, grace] of [['grpc.shutdownGraceMs', config.grpc.shutdownGraceMs], ['ingress.limits.shutdownGraceMs', config.ingress.limits.shutdownGraceMs]] as const) {
        expect({ service: runner.name, key, below: grace < stopGrace, aboveDefault: grace > 5_000 }).toEqual({ service: runner.name, key, below: true, aboveDefault: true });
      }
    }
  });
});

describe.each(runners.map((r) => [r.name, r] as const))('compose service %s', (_name, runner) => {
  it('builds from a Dockerfile that exists: Node 20 slim, npm ci, npm run build, a non-root user, a health check', () => {
    expect(existsSync(runner.dockerfile.path)).toBe(true);
    // The image, after any flag (`--platform=…`).
    for (const stage of runner.dockerfile.stages) expect(stage[0]?.args.split(/\s+/).find((word) => !word.startsWith('--'))).toBe(NODE_BASE_IMAGE);
    const runs = runner.dockerfile.stages.flatMap((stage) => instructions(stage, 'RUN')).join('\n');
    expect(runs).toMatch(/\bnpm ci\b/);
    expect(runs).toMatch(/\bnpm run build\b/);
    const user = instructions(finalStage(runner.dockerfile), 'USER').at(-1);
    expect(user).toBeDefined();
    expect(['root', '0']).not.toContain(user?.split(':')[0]);
    expect(instructions(finalStage(runner.dockerfile), 'HEALTHCHECK').at(-1)).toMatch(/\bCMD\b/);
  });

  it('runs a program whose source is in the repository', () => {
    expect(runner.argv[0]).toBe('node');
    expect(runner.source).toBeDefined();
    expect(existsSync(join(ROOT, runner.source as string))).toBe(true);
    expect([...SERVICE_PROGRAMS, ...LIB_PROGRAMS]).toContain(runner.program);
  });

  if (runner.configPath !== undefined) {
    it('loads its configuration, mounted from deploy/config/, under the real schema with the environment compose gives it', () => {
      expect(runner.configPath?.startsWith(`${CONFIG_DIR}/`)).toBe(true);
      expect(() => configOf(runner)).not.toThrow();
    });

    it('listens on 0.0.0.0 on fixed ports that the image and compose expose, and is health-checked on /health of its HTTP port', () => {
      const listeners = listenersOf(runner);
      const http = listeners['http'];
      expect(http).toBeDefined();
      const ports = Object.values(listeners).map((l) => l.port).sort(byNumber);
      for (const listen of Object.values(listeners)) {
        expect(listen.host).toBe('0.0.0.0');
        expect(listen.port).toBeGreaterThan(0);
      }
      const composePorts = [...(runner.service.expose ?? []), ...(runner.service.ports ?? [])].map(containerPort);
      expect([...new Set(composePorts)].sort(byNumber)).toEqual(ports);
      const imagePorts = instructions(finalStage(runner.dockerfile), 'EXPOSE').flatMap((args) => args.split(/\s+/)).map((p) => Number(p.split('/')[0]));
      expect([...new Set(imagePorts)].sort(byNumber)).toEqual(ports);
      expect(probedUrl(healthcheckText(runner.service.healthcheck))).toEqual({ port: http?.port, path: '/health' });
      expect(probedUrl(instructions(finalStage(runner.dockerfile), 'HEALTHCHECK').join(' '))).toEqual({ port: http?.port, path: '/health' });
    });
  } else {
    it('is health-checked on the port it listens on, which its image exposes', () => {
      const port = Number(runner.argv[runner.argv.indexOf('--port') + 1]);
      expect(port).toBeGreaterThan(0);
      expect(probedUrl(healthcheckText(runner.service.healthcheck))?.port).toBe(port);
      expect(instructions(finalStage(runner.dockerfile), 'EXPOSE').flatMap((args) => args.split(/\s+/)).map(Number)).toContain(port);
      expect((runner.service.expose ?? []).map(containerPort)).toContain(port);
    });
  }
});

describe('deploy/docker', () => {
  it('has a Dockerfile per program (each service, the simulator), and compose builds every one of them', () => {
    const programs = [...SERVICE_PROGRAMS, ...LIB_PROGRAMS];
    const built = new Set(runners.map((r) => basename(r.dockerfile.path)));
    for (const file of dockerfiles) expect({ file, built: built.has(file) }).toEqual({ file, built: true });
    for (const program of programs) {
      const images = dockerfiles.map((file) => ({ file, source: sourceOf(dockerCmd(readDockerfile(join(DOCKER_DIR, file)))[1] ?? '') })).filter((d) => d.source !== undefined && programOf(d.source) === program);
      expect({ program, images: images.length }).toEqual({ program, images: 1 });
      expect(images[0]?.file).toMatch(new RegExp(`^Dockerfile\\.(${program}|${program.split('-').at(-1) as string})$`));
    }
  });
});

describe('deploy/config', () => {
  it.each(configFiles)('%s is read by a compose service and valid with the environment compose gives it', (file) => {
    const readers = serviceRunners.filter((r) => r.configPath === join(CONFIG_DIR, file));
    expect(readers.length).toBeGreaterThan(0);
    for (const reader of readers) expect(() => loadConfigFile(join(CONFIG_DIR, file), reader.env)).not.toThrow();
  });

  it('the distributed configuration leaves the in-process simulator off: the simulator is its own service', () => {
    for (const runner of serviceRunners.filter((r) => r.program !== 'gateway')) expect({ service: runner.name, simulator: configOf(runner).gateway.simulator.enabled }).toEqual({ service: runner.name, simulator: false });
  });
});
