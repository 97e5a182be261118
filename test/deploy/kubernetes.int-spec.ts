// The Kubernetes manifests (deploy/kubernetes/) checked against what they deploy: the configuration
// deploy/config/distributed.yaml, the Dockerfiles under deploy/docker/ and the Kubernetes API
// itself. As in deploy.int-spec.ts, everything expected is derived from the repository, so a port,
// a provider, a required variable or an image changed in one place and not the other fails here.
// The manifests are also validated against the Kubernetes OpenAPI schemas, strictly, by the
// PyPI package kubernetes-validate (.ci/run installs it); without it this spec fails.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join, posix, resolve } from 'node:path';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { parseConfig, providerApiKey, providerBaseUrl, type GatewayConfig, type Listen, type ProviderConfig } from '@openrouter/config';

const ROOT = resolve(__dirname, '..', '..');
const K8S_DIR = join(ROOT, 'deploy', 'kubernetes');
const SECRET_TEMPLATE_DIR = join(K8S_DIR, 'secret-template');
const DOCKER_DIR = join(ROOT, 'deploy', 'docker');
const DISTRIBUTED = join(ROOT, 'deploy', 'config', 'distributed.yaml');
const NAMESPACE = 'open-router';
const KUBERNETES_VERSION = '1.30.0';
const INFRA_VARS = ['KAFKA_BROKERS', 'REDIS_URL', 'CLICKHOUSE_URL'] as const;

type Vars = Record<string, string>;

// ------------------------------------------------------------------ the manifests

interface Meta {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
}
interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: Meta;
  spec?: unknown;
  data?: Record<string, string>;
  stringData?: Record<string, string>;
  file: string;
}
interface Probe {
  httpGet?: { path?: string; port?: number | string };
}
interface Container {
  name: string;
  image?: string;
  command?: string[];
  args?: string[];
  env?: Array<{ name: string; value?: string; valueFrom?: { secretKeyRef?: KeyRef; configMapKeyRef?: KeyRef } }>;
  envFrom?: Array<{ configMapRef?: { name: string; optional?: boolean }; secretRef?: { name: string; optional?: boolean } }>;
  ports?: Array<{ name?: string; containerPort: number }>;
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  lifecycle?: { preStop?: { exec?: { command?: string[] } } };
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number; allowPrivilegeEscalation?: boolean; readOnlyRootFilesystem?: boolean; capabilities?: { drop?: string[]; add?: string[] } };
  volumeMounts?: Array<{ name: string; mountPath: string; readOnly?: boolean }>;
}
interface KeyRef {
  name: string;
  key: string;
  optional?: boolean;
}
interface PodSpec {
  containers: Container[];
  terminationGracePeriodSeconds?: number;
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number; seccompProfile?: { type?: string } };
  volumes?: Array<{ name: string; configMap?: { name: string }; persistentVolumeClaim?: unknown; emptyDir?: unknown }>;
}
interface WorkloadSpec {
  replicas?: number;
  selector: { matchLabels: Record<string, string> };
  strategy?: { type?: string; rollingUpdate?: { maxSurge?: number | string; maxUnavailable?: number | string } };
  template: { metadata: { labels: Record<string, string> }; spec: PodSpec };
  volumeClaimTemplates?: Array<{ metadata: { name: string } }>;
  serviceName?: string;
}
interface ServiceSpec {
  clusterIP?: string;
  selector?: Record<string, string>;
  ports: Array<{ name?: string; port: number; targetPort?: number | string }>;
}
interface NetworkPolicySpec {
  podSelector: { matchLabels?: Record<string, string> };
  policyTypes?: string[];
  ingress?: Array<{ from?: Array<{ podSelector?: { matchLabels?: Record<string, string> }; namespaceSelector?: unknown; ipBlock?: unknown }>; ports?: Array<{ port?: number | string }> }>;
}

function readManifests(dir: string): Manifest[] {
  return readdirSync(dir)
    .filter((f) => /\.(ya?ml|json)$/.test(f))
    .sort()
    .flatMap((file) => {
      const docs = parseAllDocuments(readFileSync(join(dir, file), 'utf8'));
      if (!Array.isArray(docs)) throw new Error(`${file}: not a YAML stream`);
      return docs.map((doc) => {
        if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors.map((e) => e.message).join('; ')}`);
        return { ...(doc.toJS() as Omit<Manifest, 'file'>), file: join(dir, file) };
      });
    });
}

/** What `kubectl apply -f deploy/kubernetes/` applies: the directory's own files, not its subdirectories. */
const applied = readManifests(K8S_DIR);
const secretTemplate = readManifests(SECRET_TEMPLATE_DIR);
const all = [...applied, ...secretTemplate];
const appliedFiles = readdirSync(K8S_DIR).filter((f) => /\.(ya?ml|json)$/.test(f)).sort();

const ofKind = (kind: string): Manifest[] => all.filter((m) => m.kind === kind);
const named = (kind: string, name: string): Manifest | undefined => all.find((m) => m.kind === kind && m.metadata.name === name);
const workloads = all.filter((m) => m.kind === 'Deployment' || m.kind === 'StatefulSet');
const services = ofKind('Service');
const specOf = <T>(m: Manifest): T => m.spec as T;
const podOf = (w: Manifest): PodSpec => specOf<WorkloadSpec>(w).template.spec;
const podLabels = (w: Manifest): Record<string, string> => specOf<WorkloadSpec>(w).template.metadata.labels;
const matches = (selector: Record<string, string> | undefined, labels: Record<string, string>): boolean =>
  selector !== undefined && Object.entries(selector).every(([k, v]) => labels[k] === v);
const selectedWorkloads = (selector: Record<string, string> | undefined): Manifest[] => workloads.filter((w) => matches(selector, podLabels(w)));

// ------------------------------------------------------------------ the images and the programs they run

/** `docker build -f deploy/docker/Dockerfile.router -t open-router/router .` in each Dockerfile's header: image name → the program its CMD runs. */
const IMAGES = new Map(
  readdirSync(DOCKER_DIR)
    .filter((f) => f.startsWith('Dockerfile.'))
    .flatMap((file) => {
      const text = readFileSync(join(DOCKER_DIR, file), 'utf8');
      const image = new RegExp(`docker build -f deploy/docker/${file.replace('.', '\\.')} -t (\\S+) \\.`).exec(text)?.[1];
      const cmd = /^CMD (\[.*\])\s*$/m.exec(text)?.[1];
      const entry = cmd === undefined ? undefined : (JSON.parse(cmd) as string[])[1];
      const program = /^dist\/(?:services|libs)\/([^/]+)\/src\/main\.js$/.exec(entry ?? '')?.[1];
      return image === undefined || program === undefined ? [] : [[image, { file, program }] as const];
    }),
);

interface Runner {
  workload: Manifest;
  container: Container;
  /** Image name without the tag. */
  image: string;
  tag: string;
  program: string;
  /** The container's environment as the kubelet would build it, secrets from the template. */
  env: Vars;
  /** Variables from sources marked optional (they may be missing). */
  optional: Set<string>;
}

function imageParts(image: string): { image: string; tag: string } {
  const at = image.lastIndexOf(':');
  return at > image.lastIndexOf('/') ? { image: image.slice(0, at), tag: image.slice(at + 1) } : { image, tag: '' };
}

function valuesOf(kind: 'ConfigMap' | 'Secret', name: string): Vars | undefined {
  const m = named(kind, name);
  return m === undefined ? undefined : { ...(m.data ?? {}), ...(m.stringData ?? {}) };
}

function environmentOf(container: Container): { env: Vars; optional: Set<string> } {
  const env: Vars = {};
  const optional = new Set<string>();
  for (const from of container.envFrom ?? []) {
    const ref = from.configMapRef ?? from.secretRef;
    const values = valuesOf(from.configMapRef ? 'ConfigMap' : 'Secret', ref?.name ?? '');
    if (values === undefined) throw new Error(`${container.name}: envFrom names ${ref?.name}, which no manifest defines`);
    for (const [k, v] of Object.entries(values)) {
      env[k] = v;
      if (ref?.optional === true) optional.add(k);
      else optional.delete(k);
    }
  }
  for (const entry of container.env ?? []) {
    const ref = entry.valueFrom?.secretKeyRef ?? entry.valueFrom?.configMapKeyRef;
    if (ref === undefined) {
      env[entry.name] = entry.value ?? '';
      optional.delete(entry.name);
      continue;
    }
    const value = valuesOf(entry.valueFrom?.secretKeyRef ? 'Secret' : 'ConfigMap', ref.name)?.[ref.key];
    if (value === undefined) throw new Error(`${container.name}: ${entry.name} names ${ref.name}/${ref.key}, which no manifest defines`);
    env[entry.name] = value;
    if (ref.optional === true) optional.add(entry.name);
    else optional.delete(entry.name);
  }
  return { env, optional };
}

const runners: Runner[] = workloads.flatMap((workload) =>
  podOf(workload).containers.map((container) => {
    const { image, tag } = imageParts(container.image ?? '');
    const fromCommand = /^dist\/(?:services|libs)\/([^/]+)\/src\/main\.js$/.exec(container.command?.[1] ?? '')?.[1];
    const program = fromCommand ?? IMAGES.get(image)?.program ?? '';
    return { workload, container, image, tag, program, ...environmentOf(container) };
  }),
);
const serviceRunners = runners.filter((r) => r.program !== 'provider-simulator');
const MIB = 1024 * 1024;

/** A Kubernetes memory quantity in bytes (`512Mi`, `2Gi`, `1G`, `1000`); NaN for anything else. */
function bytesOf(quantity: string | undefined): number {
  const match = /^(\d+)(Ki|Mi|Gi|K|M|G)?$/.exec(quantity ?? '');
  if (!match) return Number.NaN;
  const unit = { Ki: 1024, Mi: MIB, Gi: 1024 * MIB, K: 1e3, M: 1e6, G: 1e9 }[match[2] ?? ''] ?? 1;
  return Number(match[1]) * unit;
}

const runnersOf = (program: string): Runner[] => runners.filter((r) => r.program === program);
const runnerNamed = (name: string): Runner | undefined => runners.find((r) => r.workload.metadata.name === name);

// ------------------------------------------------------------------ the configuration each container loads

const distributedText = readFileSync(DISTRIBUTED, 'utf8');

/** `${NAME}` placeholders in a raw configuration value; withDefault false: only those without a default. */
function placeholders(value: unknown, withDefault: boolean | 'any' = 'any'): string[] {
  const text = typeof value === 'string' ? value : JSON.stringify(value ?? '');
  return [...text.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}/g)].filter((m) => withDefault === 'any' || (m[2] !== undefined) === withDefault).map((m) => m[1] as string);
}
const REQUIRED_VARS = [...new Set(placeholders(parseYaml(distributedText), false))];
/** Keys of the Secret template, which holds placeholders the services must refuse. */
const SECRET_KEYS = new Set(secretTemplate.flatMap((m) => Object.keys(m.stringData ?? m.data ?? {})));

/** The text of the file OPENROUTER_CONFIG names, read through the container's ConfigMap mounts. */
function configTextOf(runner: Runner): string {
  const path = runner.env['OPENROUTER_CONFIG'];
  if (path === undefined) throw new Error(`${runner.workload.metadata.name}: no OPENROUTER_CONFIG`);
  for (const mount of runner.container.volumeMounts ?? []) {
    const rel = posix.relative(mount.mountPath, path);
    if (rel.startsWith('..') || posix.isAbsolute(rel)) continue;
    const volume = podOf(runner.workload).volumes?.find((v) => v.name === mount.name);
    const text = volume?.configMap ? valuesOf('ConfigMap', volume.configMap.name)?.[rel] : undefined;
    if (text !== undefined) return text;
  }
  throw new Error(`${runner.workload.metadata.name}: ${path} is on no mounted ConfigMap`);
}

/** Valid stand-ins for the template's placeholders: what an operator puts there. */
const filled = (env: Vars): Vars => Object.fromEntries(Object.entries(env).map(([k, v]) => [k, SECRET_KEYS.has(k) && v.startsWith('REPLACE') ? `k8s-test-${k.toLowerCase()}-${'x'.repeat(32)}` : v]));

const configCache = new Map<Runner, GatewayConfig>();
function configOf(runner: Runner): GatewayConfig {
  let config = configCache.get(runner);
  if (!config) {
    config = parseConfig(parseYaml(configTextOf(runner), { merge: true }), filled(runner.env), runner.workload.metadata.name);
    configCache.set(runner, config);
  }
  return config;
}

function listenersOf(runner: Runner): Record<string, Listen> {
  const section: unknown = (configOf(runner) as unknown as Record<string, unknown>)[runner.program];
  if (section === null || typeof section !== 'object') return {};
  return Object.fromEntries(
    Object.entries(section).filter((entry): entry is [string, Listen] => {
      const value: unknown = entry[1];
      return value !== null && typeof value === 'object' && 'host' in value && 'port' in value;
    }),
  );
}

/** The port /health and /ready are probed on: the ingress's internal port when it has one, else the HTTP port. */
function probePortOf(runner: Runner): number | undefined {
  const listeners = listenersOf(runner);
  return (listeners['internalHttp'] ?? listeners['http'])?.port;
}

function containerPortOf(container: Container, port: number | string | undefined): number | undefined {
  return typeof port === 'number' ? port : container.ports?.find((p) => p.name === port)?.containerPort;
}

function hostAndPort(address: string): { host: string; port: number } {
  const url = new URL(address.includes('://') ? address : `tcp://${address}`);
  return { host: url.hostname, port: Number(url.port) };
}

/** The Service a peer address names (a short name, resolved in the namespace), the workloads behind it and the container port it reaches. */
function peerOf(address: string): { service: Manifest | undefined; behind: Runner[]; targetPort: number | undefined } {
  const { host, port } = hostAndPort(address);
  const [name, namespace] = host.split('.');
  const service = namespace === undefined || namespace === NAMESPACE ? named('Service', name as string) : undefined;
  const spec = service === undefined ? undefined : specOf<ServiceSpec>(service);
  const behind = runners.filter((r) => matches(spec?.selector, podLabels(r.workload)));
  const servicePort = spec?.ports.find((p) => p.port === port);
  const targets = behind.map((r) => containerPortOf(r.container, servicePort?.targetPort ?? servicePort?.port));
  return { service, behind, targetPort: targets.every((t) => t === targets[0]) ? targets[0] : undefined };
}

const isHeadless = (service: Manifest | undefined): boolean => service !== undefined && specOf<ServiceSpec>(service).clusterIP === 'None';

const hpaTargets = ofKind('HorizontalPodAutoscaler').map((h) => specOf<{ scaleTargetRef: { kind: string; name: string } }>(h).scaleTargetRef);
const isAutoscaled = (w: Manifest): boolean => hpaTargets.some((t) => t.kind === w.kind && t.name === w.metadata.name);

const routerRunner = runnersOf('router')[0] as Runner;
const ingressRunner = runnersOf('ingress')[0] as Runner;
const alertingRunner = runnersOf('alerting')[0] as Runner;
const adapterRunners = runnersOf('adapter');

// ------------------------------------------------------------------ the checks

describe('deploy/kubernetes: the files', () => {
  it('applies the Namespace first (the first file by name holds it alone), and puts every other object in it', () => {
    const first = applied.filter((m) => m.file === join(K8S_DIR, appliedFiles[0] as string));
    expect(first.map((m) => [m.kind, m.metadata.name])).toEqual([['Namespace', NAMESPACE]]);
    expect(applied.filter((m) => m.kind === 'Namespace')).toHaveLength(1);
    for (const m of all.filter((m) => m.kind !== 'Namespace')) expect({ object: `${m.kind}/${m.metadata.name}`, namespace: m.metadata.namespace }).toEqual({ object: `${m.kind}/${m.metadata.name}`, namespace: NAMESPACE });
  });

  it('gives no object name twice per kind', () => {
    const keys = all.map((m) => `${m.kind}/${m.metadata.name}`);
    expect(keys.filter((k, i) => keys.indexOf(k) !== i)).toEqual([]);
  });

  it('keeps the Secrets out of the directory apply: they are a template of placeholders the services refuse', () => {
    expect(applied.filter((m) => m.kind === 'Secret')).toEqual([]);
    expect(secretTemplate.length).toBeGreaterThan(0);
    for (const m of secretTemplate) {
      expect(m.kind).toBe('Secret');
      for (const [key, value] of Object.entries(m.stringData ?? {})) {
        expect({ key, placeholder: value === '' || value === 'disabled' || value.startsWith('REPLACE') }).toEqual({ key, placeholder: true });
      }
    }
    // Applied unfilled, the template starts no service: the secrets it leaves as placeholders are refused.
    for (const runner of serviceRunners) {
      expect(() => parseConfig(parseYaml(configTextOf(runner), { merge: true }), runner.env, runner.workload.metadata.name)).toThrow(/OPENROUTER_INTERNAL_TOKEN|grpc\.auth\.token/);
      // Every other secret filled, the development key's placeholder alone is refused too: it
      // would be a working key everyone knows.
      const devKeyLeft = { ...filled(runner.env), OPENROUTER_DEV_KEY: runner.env['OPENROUTER_DEV_KEY'] ?? '' };
      expect(devKeyLeft['OPENROUTER_DEV_KEY']).toMatch(/^REPLACE/);
      expect(() => parseConfig(parseYaml(configTextOf(runner), { merge: true }), devKeyLeft, runner.workload.metadata.name)).toThrow(/ingress\.devKey/);
    }
  });

  it('ships deploy/config/distributed.yaml in the ConfigMap byte for byte', () => {
    const configMaps = ofKind('ConfigMap').filter((m) => m.data?.['distributed.yaml'] !== undefined);
    expect(configMaps).toHaveLength(1);
    // If this fails after editing distributed.yaml, regenerate 01-config.yaml with the command at its top.
    expect(configMaps[0]?.data?.['distributed.yaml'] === distributedText).toBe(true);
  });

  it(`validates against the Kubernetes ${KUBERNETES_VERSION} OpenAPI schemas, strictly (kubernetes-validate)`, () => {
    const files = all.map((m) => m.file).filter((f, i, list) => list.indexOf(f) === i);
    const run = spawnSync('python3', ['-m', 'kubernetes_validate', '--strict', '--kubernetes-version', KUBERNETES_VERSION, ...files], { encoding: 'utf8', timeout: 120_000 });
    const output = `${run.error?.message ?? ''}${run.stdout ?? ''}${run.stderr ?? ''}`;
    if (run.error !== undefined || /No module named kubernetes_validate/.test(output)) {
      throw new Error(`kubernetes-validate is not installed (pip3 install kubernetes-validate, as .ci/run does): ${output}`);
    }
    expect({ status: run.status, output }).toEqual({ status: 0, output: expect.any(String) as string });
    // One "passed" line per object: every object was checked, none skipped for an unknown kind.
    expect((output.match(/ passed for resource /g) ?? []).length).toBe(all.length);
  });
});

describe('deploy/kubernetes: what runs', () => {
  it('runs every service under services/ but the embedded gateway, and one adapter per provider, named adapter-<provider>', () => {
    const programs = readdirSync(join(ROOT, 'services')).filter((p) => p !== 'gateway');
    for (const program of programs) expect({ program, workloads: runnersOf(program).length }).toEqual({ program, workloads: program === 'adapter' ? expect.any(Number) as number : 1 });
    const providers = Object.keys(configOf(routerRunner).providers);
    expect(adapterRunners.map((r) => r.workload.metadata.name).sort()).toEqual(providers.map((p) => `adapter-${p}`).sort());
  });

  it.each(runners.map((r) => [r.workload.metadata.name, r] as const))('%s runs an image deploy/docker builds, by the name the docs build it under, with a pinned tag', (_name, runner) => {
    expect(IMAGES.has(runner.image)).toBe(true);
    expect(IMAGES.get(runner.image)?.program).toBe(runner.program);
    expect(runner.tag).not.toBe('');
    expect(runner.tag).not.toBe('latest');
    expect(new Set(runners.map((r) => r.tag)).size).toBe(1);
  });

  it('gives every service each variable distributed.yaml requires (no default), from a source that is not optional', () => {
    expect(REQUIRED_VARS.length).toBeGreaterThan(0);
    for (const runner of serviceRunners) {
      for (const name of REQUIRED_VARS) {
        expect({ workload: runner.workload.metadata.name, variable: name, given: name in runner.env && !runner.optional.has(name) }).toEqual({ workload: runner.workload.metadata.name, variable: name, given: true });
      }
    }
  });

  it('tells every service where Kafka, Redis and ClickHouse are (the platform runs them: no manifest here does)', () => {
    for (const runner of serviceRunners) {
      for (const name of INFRA_VARS) expect({ workload: runner.workload.metadata.name, variable: name, set: (runner.env[name] ?? '') !== '' }).toEqual({ workload: runner.workload.metadata.name, variable: name, set: true });
    }
    for (const image of ['kafka', 'clickhouse', 'redis']) expect(runners.filter((r) => r.image.includes(image))).toEqual([]);
  });

  it('gives a provider key only to that provider’s adapter', () => {
    const raw = parseYaml(distributedText) as { providers: Record<string, { apiKey?: unknown; headers?: unknown }> };
    for (const [id, provider] of Object.entries(raw.providers)) {
      for (const name of placeholders([provider.apiKey, provider.headers])) {
        const holders = runners.filter((r) => name in r.env).map((r) => r.workload.metadata.name);
        expect({ variable: name, others: holders.filter((h) => h !== `adapter-${id}`) }).toEqual({ variable: name, others: [] });
      }
    }
    expect('OPENAI_API_KEY' in (runnerNamed('adapter-openai')?.env ?? {})).toBe(true);
  });

  it.each(serviceRunners.map((r) => [r.workload.metadata.name, r] as const))('%s loads distributed.yaml with its environment, listens on 0.0.0.0 on the ports its container declares, and is probed on its health port', (_name, runner) => {
    const listeners = listenersOf(runner);
    expect(Object.keys(listeners).length).toBeGreaterThan(0);
    for (const listen of Object.values(listeners)) expect(listen.host).toBe('0.0.0.0');
    expect((runner.container.ports ?? []).map((p) => p.containerPort).sort()).toEqual(Object.values(listeners).map((l) => l.port).sort());
    const port = probePortOf(runner);
    expect(port).toBeDefined();
    expect({ path: runner.container.livenessProbe?.httpGet?.path, port: containerPortOf(runner.container, runner.container.livenessProbe?.httpGet?.port) }).toEqual({ path: '/health', port });
    expect({ path: runner.container.readinessProbe?.httpGet?.path, port: containerPortOf(runner.container, runner.container.readinessProbe?.httpGet?.port) }).toEqual({ path: '/ready', port });
  });

  it.each(runners.map((r) => [r.workload.metadata.name, r] as const))('%s has resources, probes and a restrictive security context', (_name, runner) => {
    const pod = podOf(runner.workload);
    const c = runner.container;
    for (const kind of ['requests', 'limits'] as const) for (const resource of ['cpu', 'memory']) expect({ kind, resource, set: c.resources?.[kind]?.[resource] !== undefined }).toEqual({ kind, resource, set: true });
    expect(c.livenessProbe?.httpGet).toBeDefined();
    expect(c.readinessProbe?.httpGet).toBeDefined();
    expect(c.securityContext?.runAsNonRoot ?? pod.securityContext?.runAsNonRoot).toBe(true);
    // The images' user is `node`, a name: the kubelet can only check a numeric user is not root.
    expect(c.securityContext?.runAsUser ?? pod.securityContext?.runAsUser).toBeGreaterThan(0);
    expect(c.securityContext?.allowPrivilegeEscalation).toBe(false);
    expect(c.securityContext?.readOnlyRootFilesystem).toBe(true);
    expect(c.securityContext?.capabilities?.drop).toContain('ALL');
    expect(c.securityContext?.capabilities?.add ?? []).toEqual([]);
    expect(pod.securityContext?.seccompProfile?.type).toBe('RuntimeDefault');
  });

  // Measured (on loopback): creating a batch from a 100 MiB file raised the ingress's peak by ~580 MB,
  // two 48 MiB image edits at once took the router and the adapter to ~590 MB: bodies are held several
  // times over (the upload, its parts, the gRPC message on each side). A pod killed for memory cuts
  // every stream on it and loses the usage of requests mid-way.
  it.each(serviceRunners.filter((r) => ['ingress', 'router', 'adapter'].includes(r.program)).map((r) => [r.workload.metadata.name, r] as const))(
    '%s has memory for the largest bodies the configuration accepts, two at once',
    (_name, runner) => {
      const config = configOf(runner);
      const { bodyBytes, audioBytes, imageEditBytes } = config.ingress.limits;
      // Only ingress reads uploaded batch files; the other two carry requests.
      const largest = Math.max(bodyBytes, audioBytes, imageEditBytes, runner.program === 'ingress' ? config.batches.maxFileBytes : 0);
      const needed = 256 * MIB + 2 * 6 * largest;
      expect(bytesOf(runner.container.resources?.limits?.['memory'])).toBeGreaterThanOrEqual(needed);
    },
  );

  it.each(serviceRunners.map((r) => [r.workload.metadata.name, r] as const))('%s is given longer to stop than its preStop pause and its drain together', (_name, runner) => {
    const config = configOf(runner);
    const drainMs = Math.max(config.grpc.shutdownGraceMs, runner.program === 'ingress' ? config.ingress.limits.shutdownGraceMs : 0);
    const preStop = runner.container.lifecycle?.preStop?.exec?.command;
    const pauseMs = preStop?.[0] === 'sleep' ? Number(preStop[1]) * 1000 : 0;
    const graceMs = (podOf(runner.workload).terminationGracePeriodSeconds ?? 30) * 1000;
    expect(graceMs).toBeGreaterThan(config.grpc.shutdownGraceMs);
    expect(graceMs).toBeGreaterThanOrEqual(pauseMs + drainMs + 5_000);
  });
});

describe('deploy/kubernetes: how the services reach each other', () => {
  it('points the ingress at the router and billing through headless Services on their gRPC ports', () => {
    const config = configOf(ingressRunner);
    for (const [peer, address, port] of [['router', config.ingress.router, configOf(routerRunner).router.grpc.port], ['billing', config.ingress.billing, configOf(runnersOf('billing')[0] as Runner).billing.grpc.port]] as const) {
      expect({ peer, address }).toEqual({ peer, address: expect.any(String) as string });
      const found = peerOf(address ?? '');
      expect({ peer, headless: isHeadless(found.service), programs: [...new Set(found.behind.map((r) => r.program))], targetPort: found.targetPort }).toEqual({ peer, headless: true, programs: [peer], targetPort: port });
    }
  });

  it('routes every provider to its own adapter through a headless Service on the adapter gRPC port', () => {
    const config = configOf(routerRunner);
    for (const provider of Object.keys(config.providers)) {
      const address = config.router.adapters[provider] ?? config.router.adapters['default'];
      expect(address).toBeDefined();
      const found = peerOf(address as string);
      const adapter = found.behind[0] as Runner;
      expect({ provider, headless: isHeadless(found.service), behind: found.behind.map((r) => r.workload.metadata.name) }).toEqual({ provider, headless: true, behind: [`adapter-${provider}`] });
      expect({ provider, targetPort: found.targetPort }).toEqual({ provider, targetPort: configOf(adapter).adapter.grpc.port });
      const served = configOf(adapter).adapter.providers;
      expect({ provider, served: served.length === 0 || served.includes(provider) }).toEqual({ provider, served: true });
    }
  });

  it('has alerting poll every router replica, through a headless Service', () => {
    const config = configOf(alertingRunner);
    expect(config.observability.alerting.routerDiscovery).toBe('dns');
    const found = peerOf(config.observability.alerting.router);
    expect({ headless: isHeadless(found.service), programs: [...new Set(found.behind.map((r) => r.program))], targetPort: found.targetPort }).toEqual({ headless: true, programs: ['router'], targetPort: configOf(routerRunner).router.grpc.port });
  });

  it('makes every Service that selects router or adapter pods headless', () => {
    for (const service of services) {
      const programs = selectedWorkloads(specOf<ServiceSpec>(service).selector).flatMap((w) => runners.filter((r) => r.workload === w).map((r) => r.program));
      if (programs.some((p) => p === 'router' || p === 'adapter')) expect({ service: service.metadata.name, headless: isHeadless(service) }).toEqual({ service: service.metadata.name, headless: true });
    }
  });

  it('serves the ingress API on port 80 of an ordinary Service', () => {
    const api = services.filter((s) => !isHeadless(s) && selectedWorkloads(specOf<ServiceSpec>(s).selector).includes(ingressRunner.workload));
    expect(api).toHaveLength(1);
    const port = specOf<ServiceSpec>(api[0] as Manifest).ports.find((p) => p.port === 80);
    expect(containerPortOf(ingressRunner.container, port?.targetPort)).toBe(configOf(ingressRunner).ingress.http.port);
  });

  it('runs each provider whose base URL is a Service here on that port, with the key its adapter sends', () => {
    const adapter = runnerNamed('adapter-simulated') as Runner;
    const provider = configOf(adapter).providers['simulated'] as ProviderConfig;
    const url = new URL(providerBaseUrl(provider));
    const found = peerOf(`${url.hostname}:${url.port}`);
    const simulator = found.behind[0] as Runner;
    expect(simulator.program).toBe('provider-simulator');
    const argv = [...(simulator.container.command ?? []), ...(simulator.container.args ?? [])];
    const flag = (name: string): string | undefined => argv[argv.indexOf(`--${name}`) + 1];
    expect({ host: flag('host'), port: Number(flag('port')), target: found.targetPort }).toEqual({ host: '0.0.0.0', port: Number(url.port), target: Number(url.port) });
    expect(flag('api-key')).toBe(providerApiKey(provider));
  });
});

describe('deploy/kubernetes: scaling and availability', () => {
  it('runs alerting as two replicas, one active and one standing by on a lease in Redis: rolled one at a time, no autoscaler, a disruption budget of one', () => {
    const w = alertingRunner.workload;
    expect(runnersOf('alerting')).toHaveLength(1);
    expect(w.kind).toBe('Deployment');
    expect(specOf<WorkloadSpec>(w).replicas).toBe(2);
    expect(specOf<WorkloadSpec>(w).strategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } });
    expect(isAutoscaled(w)).toBe(false);
    const budgets = ofKind('PodDisruptionBudget').filter((p) => matches(specOf<{ selector: { matchLabels: Record<string, string> } }>(p).selector.matchLabels, podLabels(w)));
    expect(budgets.map((p) => specOf<{ maxUnavailable?: number }>(p).maxUnavailable)).toEqual([1]);
    // The lease lives in Redis: without `access.redis` every replica would be active.
    expect(configOf(alertingRunner).access.redis.url).not.toBe('');
  });

  it('autoscales the ingress, the router and every adapter on CPU, leaving them no fixed replica count to reset, with a disruption budget each', () => {
    const scaled = [ingressRunner, routerRunner, ...adapterRunners].map((r) => r.workload);
    for (const w of scaled) {
      const name = w.metadata.name;
      expect({ name, autoscaled: isAutoscaled(w), replicas: specOf<WorkloadSpec>(w).replicas }).toEqual({ name, autoscaled: true, replicas: undefined });
      const budgets = ofKind('PodDisruptionBudget').filter((p) => matches(specOf<{ selector: { matchLabels: Record<string, string> } }>(p).selector.matchLabels, podLabels(w)));
      expect({ name, budgets: budgets.length }).toEqual({ name, budgets: 1 });
    }
    for (const hpa of ofKind('HorizontalPodAutoscaler')) {
      const spec = specOf<{ scaleTargetRef: { kind: string; name: string }; minReplicas?: number; metrics?: Array<{ type: string; resource?: { name: string } }> }>(hpa);
      expect(named(spec.scaleTargetRef.kind, spec.scaleTargetRef.name)).toBeDefined();
      expect(spec.metrics?.map((m) => m.resource?.name)).toEqual(['cpu']);
      expect(spec.minReplicas).toBeGreaterThanOrEqual(2);
    }
  });

  it('gives each ingress replica a volume of its own for its usage outbox, from a claim per replica', () => {
    const w = ingressRunner.workload;
    expect(w.kind).toBe('StatefulSet');
    const spec = specOf<WorkloadSpec>(w);
    expect(isHeadless(named('Service', spec.serviceName ?? ''))).toBe(true);
    const config = configOf(ingressRunner);
    const workdir = /^WORKDIR (\S+)/m.exec(readFileSync(join(DOCKER_DIR, IMAGES.get(ingressRunner.image)?.file ?? ''), 'utf8'))?.[1] ?? '/';
    const outbox = posix.resolve(workdir, config.usage.outbox.dir || posix.join(config.gateway.dataDir, 'outbox', 'ingress'));
    const claims = (spec.volumeClaimTemplates ?? []).map((t) => t.metadata.name);
    const mount = (ingressRunner.container.volumeMounts ?? []).find((m) => !posix.relative(m.mountPath, outbox).startsWith('..'));
    expect({ outbox, mountedFrom: mount !== undefined && claims.includes(mount.name) && mount.readOnly !== true }).toEqual({ outbox, mountedFrom: true });
  });
});

describe('deploy/kubernetes: network policies', () => {
  const policies = ofKind('NetworkPolicy').map((m) => specOf<NetworkPolicySpec>(m));
  /** Whether a pod of `from` may open a connection to `port` on a pod of `to`, both in the namespace. */
  function allowed(from: Runner, to: Runner, port: number): boolean {
    const selecting = policies.filter((p) => (p.policyTypes ?? ['Ingress']).includes('Ingress') && matches(p.podSelector.matchLabels ?? {}, podLabels(to.workload)));
    if (selecting.length === 0) return true;
    return selecting.some((p) =>
      (p.ingress ?? []).some(
        (rule) =>
          (rule.ports === undefined || rule.ports.some((r) => r.port === undefined || containerPortOf(to.container, r.port) === port)) &&
          (rule.from === undefined || rule.from.some((peer) => peer.namespaceSelector === undefined && peer.ipBlock === undefined && matches(peer.podSelector?.matchLabels ?? {}, podLabels(from.workload)))),
      ),
    );
  }
  const grpcPort = (r: Runner): number => (listenersOf(r)['grpc'] as Listen).port;
  const billingRunner = (): Runner => runnersOf('billing')[0] as Runner;

  it('lets every caller reach its peers', () => {
    expect(policies.length).toBeGreaterThan(0);
    const calls: Array<[Runner, Runner, number]> = [
      [ingressRunner, routerRunner, grpcPort(routerRunner)],
      [ingressRunner, billingRunner(), grpcPort(billingRunner())],
      [alertingRunner, routerRunner, grpcPort(routerRunner)],
      ...adapterRunners.map((a) => [routerRunner, a, grpcPort(a)] as [Runner, Runner, number]),
    ];
    const simulator = runnersOf('provider-simulator')[0];
    const simulated = runnerNamed('adapter-simulated');
    if (simulator && simulated) calls.push([simulated, simulator, Number(new URL(providerBaseUrl(configOf(simulated).providers['simulated'] as ProviderConfig)).port)]);
    for (const [from, to, port] of calls) {
      expect({ from: from.workload.metadata.name, to: to.workload.metadata.name, port, allowed: allowed(from, to, port) }).toEqual({ from: from.workload.metadata.name, to: to.workload.metadata.name, port, allowed: true });
    }
  });

  it('keeps the gRPC ports from everyone else', () => {
    const callers = new Map<string, string[]>([['router', ['ingress', 'alerting']], ['adapter', ['router']], ['billing', ['ingress']]]);
    for (const to of runners.filter((r) => callers.has(r.program))) {
      for (const from of runners.filter((r) => !(callers.get(to.program) ?? []).includes(r.program))) {
        expect({ from: from.workload.metadata.name, to: to.workload.metadata.name, allowed: allowed(from, to, grpcPort(to)) }).toEqual({ from: from.workload.metadata.name, to: to.workload.metadata.name, allowed: false });
      }
    }
  });
});

describe('deploy/kubernetes: the documentation', () => {
  const text = readFileSync(join(ROOT, 'docs', 'deploy.md'), 'utf8');
  const start = text.indexOf('\n## Kubernetes\n');
  const section = start < 0 ? '' : text.slice(start, text.indexOf('\n## ', start + 1));

  it('describes every manifest file in the Kubernetes section of docs/deploy.md', () => {
    expect(section).not.toBe('');
    for (const file of [...appliedFiles, ...readdirSync(SECRET_TEMPLATE_DIR).map((f) => `secret-template/${f}`)]) {
      expect({ file, described: section.includes(`\`${file}\``) }).toEqual({ file, described: true });
    }
  });
});
