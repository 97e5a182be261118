import { createHash } from 'node:crypto';
import type { z } from 'zod';
import { ConfigError, parseConfig } from './config-loader';
import { policyFor } from './catalog.schema';
import { configSchema } from './config.schema';
import { MINIMAL_CONFIG } from './minimal-config.testing';

const SECRET = 'sk-live-0123456789abcdef0123456789abcdef';

/** The problems `parseConfig` reports for the minimal configuration with `changes` laid over it. */
function problems(changes: Record<string, unknown>, env: Record<string, string> = {}): string[] {
  try {
    parseConfig({ ...MINIMAL_CONFIG, ...changes }, env);
    return [];
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
}

describe('unknown keys', () => {
  it('are refused at the top level, with the key they most likely misspell', () => {
    expect(problems({ verison: 1 })).toEqual(['(root): unknown key "verison" (did you mean "version"?)']);
    expect(problems({ budget: { list: [] } })).toEqual(['(root): unknown key "budget" (did you mean "budgets"?)']);
  });

  it('are refused in security switches, which would otherwise fail open: a misspelt token leaves gRPC unauthenticated', () => {
    expect(problems({ grpc: { auth: { tokens: SECRET } } })).toEqual(['grpc.auth: unknown key "tokens" (did you mean "token"?)']);
    expect(problems({ grpc: { tls: { certificate: '/tls/router.crt', key: '/tls/router.key' } } })).toEqual([
      'grpc.tls: unknown key "certificate" (did you mean "cert"?)',
      // The certificate is missing too, as far as the schema knows.
      'grpc.tls.cert: required with grpc.tls.key: the certificate of the private key',
    ]);
  });

  it('are refused in a provider (of every family) and in an item of a list', () => {
    const sim = { ...MINIMAL_CONFIG.providers.sim, timeout: 5_000 };
    expect(problems({ providers: { sim } })).toEqual(['providers.sim: unknown key "timeout" (did you mean "timeoutMs"?)']);
    const anthropic = { type: 'anthropic', apiKey: SECRET, default_max_tokens: 512 };
    expect(problems({ providers: { ...MINIMAL_CONFIG.providers, anthropic } })).toEqual(['providers.anthropic: unknown key "default_max_tokens" (did you mean "defaultMaxTokens"?)']);
    const bedrock = { type: 'bedrock', region: 'eu-west-1', credentials: { accessKeyId: 'AKIA', secretAccessKey: SECRET, sessionTokens: SECRET } };
    expect(problems({ providers: { ...MINIMAL_CONFIG.providers, bedrock } })).toEqual(['providers.bedrock.credentials: unknown key "sessionTokens" (did you mean "sessionToken"?)']);
    expect(problems({ models: [{ id: 'm', deployments: [{ provider: 'sim', model: 'up', wieght: 3 }] }] })).toEqual(['models[0].deployments[0]: unknown key "wieght" (did you mean "weight"?)']);
    const budgets = { list: [{ id: 'b', scope: { org: 'acme' }, period: 'monthly', amount: '10', enforcment: 'soft' }] };
    expect(problems({ budgets })).toEqual(['budgets.list[0]: unknown key "enforcment" (did you mean "enforcement"?)']);
  });

  it('are refused in the values of a map, whose own keys stay free: provider ids, model-keyed limits, headers', () => {
    const rateLimits = { models: { m: { rpm: 10, rmp: 5 } } };
    expect(problems({ access: { rateLimits } })).toEqual(['access.rateLimits.models.m: unknown key "rmp" (did you mean "rpm"?)']);
    const sim = { ...MINIMAL_CONFIG.providers.sim, headers: { 'x-anything': 'yes', 'OpenAI-Organization': 'org-1' } };
    expect(problems({ providers: { sim }, access: { rateLimits: { models: { m: { rpm: 10 } } } } })).toEqual([]);
  });

  it('are listed together with every other problem, all in one pass', () => {
    expect(problems({ grpc: { auth: { tokens: SECRET } }, ingress: { ...MINIMAL_CONFIG.ingress, http: { port: '' } }, observability: { tracing: { sampleRatio: '${RATIO:-}' } } })).toEqual([
      'ingress.http.port: expected a number, got an empty value',
      'grpc.auth: unknown key "tokens" (did you mean "token"?)',
      'observability.tracing.sampleRatio: expected a number, got an empty value',
    ]);
  });

  it('never come with the value they were given (it may be a secret)', () => {
    const all = problems({ grpc: { auth: { tokens: SECRET } }, providers: { sim: { ...MINIMAL_CONFIG.providers.sim, apikey: SECRET } } });
    expect(all).toEqual(['grpc.auth: unknown key "tokens" (did you mean "token"?)', 'providers.sim: unknown key "apikey" (did you mean "apiKey"?)']);
    expect(all.join('\n')).not.toContain(SECRET);
  });

  it('starting with x- are allowed at the top level only, to hold YAML anchors, and are not interpolated', () => {
    expect(problems({ 'x-defaults': { provider: 'sim', key: '${UNSET_ANCHOR_VARIABLE}' }, 'x-ports': [1, 2] })).toEqual([]);
    expect(problems({ gateway: { 'x-defaults': { dataDir: '.data' } } })).toEqual(['gateway: unknown key "x-defaults" (keys starting with x- are allowed at the top level only)']);
    expect(problems({ X: 1 })).toEqual(['(root): unknown key "X"']);
  });
});

describe('the configuration schema', () => {
  it('refuses unknown keys in every object it has', () => {
    expect(looseObjects(configSchema, '')).toEqual([]);
  });
});

/** Paths of the objects under `schema` that take keys they do not declare. */
function looseObjects(schema: z.core.$ZodType, path: string): string[] {
  const def = (schema as z.core.$ZodTypes)._zod.def;
  switch (def.type) {
    case 'object': {
      const strict = def.catchall !== undefined && (def.catchall as z.core.$ZodTypes)._zod.def.type === 'never';
      return [...(strict ? [] : [path || '(root)']), ...Object.entries(def.shape).flatMap(([key, value]) => looseObjects(value, path ? `${path}.${key}` : key))];
    }
    case 'optional':
    case 'nullable':
    case 'default':
    case 'prefault':
    case 'nonoptional':
    case 'readonly':
    case 'catch':
      return looseObjects(def.innerType, path);
    case 'pipe':
      return [...looseObjects(def.in, path), ...looseObjects(def.out, path)];
    case 'array':
      return looseObjects(def.element, `${path}[]`);
    case 'record':
      return looseObjects(def.valueType, `${path}.<key>`);
    case 'union':
      return [...new Set(def.options.flatMap((option) => looseObjects(option, path)))];
    default:
      return [];
  }
}

describe('configured budgets', () => {
  const access = { orgs: [{ id: 'acme', teams: [{ id: 'platform', projects: [{ id: 'search' }] }, { id: 'labs', projects: [{ id: 'vision' }] }] }] };
  const budgets = (...scopes: Array<Record<string, string>>) => ({ list: scopes.map((scope, i) => ({ id: `b${i}`, scope, period: 'monthly', amount: '10' })) });

  it('must name tenants a request can come from: each scope field is matched exactly, so a typo would leave the budget never applied', () => {
    expect(problems({ access, budgets: budgets({ org: 'nosuchorg', project: 'search' }, { org: 'acme', project: 'serach' }, { org: 'acme', team: 'labs', project: 'search' }, { org: 'acme', team: 'lab' }) })).toEqual([
      'budgets.list[0].scope.org: unknown organisation "nosuchorg": declare it, with its teams and projects, in access.orgs',
      'budgets.list[1].scope.project: unknown project "serach" in "acme"',
      'budgets.list[2].scope.project: the project "search" is not in the team "labs" of "acme"',
      'budgets.list[3].scope.team: unknown team "lab" in "acme"',
    ]);
  });

  it('may name an org declared nowhere (a bare tenant, as keys may), a project without its team, and any key', () => {
    expect(problems({ access, budgets: budgets({ org: 'default' }, { org: 'acme', project: 'search' }, { org: 'acme', team: 'platform', project: 'search', key: 'issued-at-run-time' }) })).toEqual([]);
  });
});

describe('configured keys', () => {
  const key = (id: string, allowedModels: string[]) => ({ id, hash: createHash('sha256').update(id).digest('hex'), org: 'acme', allowedModels });

  it('allow only names a request can be matched with: a model id, an alias or auto, so a typo does not leave a key that can use nothing', () => {
    const routing = { aliases: { smart: { models: ['m'] } } };
    expect(problems({ routing, access: { keys: [key('k0', ['m', 'smart', 'auto']), key('k1', ['smart', 'mm'])] } })).toEqual([
      'access.keys[1].allowedModels[1]: unknown model or alias "mm": name a model id, an alias (routing.aliases) or "auto"',
    ]);
  });
});

describe('settings keyed by a model or a provider', () => {
  const routing = { aliases: { smart: { models: ['m'] } } };

  it('name one that exists: a misspelt one would leave its model unlimited, its reservation at the default, its provider on the default adapter', () => {
    expect(
      problems({
        routing,
        access: { rateLimits: { models: { m: { rpm: 5 }, smart: { rpm: 5 }, auto: { tpm: 9 }, 'gpt-4o-mnii': { rpm: 5 } } } },
        budgets: { maxOutputTokens: { m: 100, smart: 100 } },
        router: { ...MINIMAL_CONFIG.router, adapters: { default: '127.0.0.1:2', sim: '127.0.0.1:3', smi: '127.0.0.1:4' } },
      }),
    ).toEqual([
      'router.adapters.smi: unknown provider "smi": name a provider id (providers) or "default"',
      'access.rateLimits.models.gpt-4o-mnii: unknown model or alias "gpt-4o-mnii": name a model id, an alias (routing.aliases) or "auto"',
      // Reservations look the maximum up by the models a request may reach, never by an alias.
      'budgets.maxOutputTokens.smart: unknown model "smart": name a model id',
    ]);
  });
});

describe('routing policies', () => {
  it('have unique ids and matches: of two matching the same callers, one would silently never apply', () => {
    const policies = [{ id: 'p' }, { id: 'acme', match: { org: 'acme' } }, { id: 'p', match: { org: 'beta' } }, { id: 'acme-2', match: { org: 'acme' } }, { id: 'search', match: { org: 'acme', project: 'search' } }];
    expect(problems({ routing: { policies } })).toEqual([
      'routing.policies[2].id: duplicate policy id "p"',
      'routing.policies[3].match: matches the same callers as the policy "acme": of two policies as specific, only the first would ever apply',
    ]);
  });

  it('name the organisation of a project: project ids are unique only within an organisation', () => {
    const policies = [{ id: 'search', match: { project: 'search' } }];
    expect(problems({ routing: { policies } })).toEqual(['routing.policies[0].match.org: required with match.project: project ids are unique only within an organisation, so name the organisation of "search"']);
  });

  it("match a project as the pair with its organisation, more specific than the organisation's own policy", () => {
    const policies = [
      { id: 'everyone', match: {} },
      { id: 'acme', match: { org: 'acme' } },
      { id: 'acme-search', match: { org: 'acme', project: 'search' } },
      { id: 'beta-search', match: { org: 'beta', project: 'search' } },
    ];
    const routing = parseConfig({ ...MINIMAL_CONFIG, routing: { policies } }, {}).routing;
    const policy = (orgId: string, projectId: string) => policyFor(routing.policies, { orgId, projectId })?.id;
    expect(policy('acme', 'search')).toBe('acme-search');
    expect(policy('acme', 'docs')).toBe('acme');
    expect(policy('beta', 'search')).toBe('beta-search');
    // Another organisation's project of the same id is not acme's or beta's.
    expect(policy('gamma', 'search')).toBe('everyone');
    // Whatever their order, the project's policy wins over its organisation's.
    expect(policyFor([...routing.policies].reverse(), { orgId: 'acme', projectId: 'search' })?.id).toBe('acme-search');
    // A policy naming a project alone (refused by configuration) matches no one, not every organisation's project.
    const unscoped = { ...routing.policies[0]!, id: 'search-anywhere', match: { project: 'search' } };
    expect(policyFor([routing.policies[1]!, unscoped], { orgId: 'acme', projectId: 'search' })?.id).toBe('acme');
    expect(policyFor([unscoped], { orgId: 'gamma', projectId: 'search' })).toBeUndefined();
  });
});

describe('listeners of one process', () => {
  const listen = (port: number, host = '127.0.0.1') => ({ host, port });

  it('have ports of their own: a second listener on a port would fail the start with "address already in use", after the configuration was accepted', () => {
    expect(
      problems({
        gateway: { simulator: { enabled: true, port: 8080 } },
        ingress: { ...MINIMAL_CONFIG.ingress, http: listen(8080, '0.0.0.0'), internalHttp: listen(8080) },
        router: { ...MINIMAL_CONFIG.router, grpc: listen(50051), http: listen(50051) },
        billing: { http: listen(8093, '0.0.0.0'), grpc: listen(8093, '::') },
      }),
    ).toEqual([
      'ingress.internalHttp.port: 8080 is the port of ingress.http too: each listener of the ingress needs a port of its own',
      'router.http.port: 50051 is the port of router.grpc too: each listener of the router needs a port of its own',
      'billing.grpc.port: 8093 is the port of billing.http too: each listener of billing needs a port of its own',
      'gateway.simulator.port: 8080 is the port of ingress.http too: the embedded gateway runs the simulated provider and the ingress in one process',
    ]);
  });

  it('may share a port on different interfaces, or leave it to the system (0), and in different processes', () => {
    expect(
      problems({
        gateway: { simulator: { enabled: false, port: 8080 } },
        ingress: { ...MINIMAL_CONFIG.ingress, http: listen(8080, '10.0.0.5'), internalHttp: listen(8080, '127.0.0.1') },
        router: { ...MINIMAL_CONFIG.router, grpc: listen(8080), http: listen(0) },
        adapter: { grpc: listen(0), http: listen(0) },
      }),
    ).toEqual([]);
  });
});

describe('request size limits', () => {
  const MiB = 1024 * 1024;
  const limits = (l: Record<string, number>) => ({ ingress: { ...MINIMAL_CONFIG.ingress, limits: l } });

  it('let through no request one gRPC message cannot carry: a conversation continued with a full turn, or an upload, fits in 64 MiB less 4 MiB', () => {
    // The defaults fit: a 48 MiB conversation and a 10 MiB body, a 26 MiB audio upload, a 50 MiB image edit.
    expect(problems({})).toEqual([]);
    expect(problems({ ...limits({ bodyBytes: 10 * MiB }), responses: { maxConversationBytes: 50 * MiB } })).toEqual([]);
    expect(problems({ responses: { maxConversationBytes: 64 * MiB } })).toEqual([
      "responses.maxConversationBytes: 67108864 plus ingress.limits.bodyBytes (10485760) is more than the 67108864 bytes (64 MiB) one gRPC message between the gateway's services carries, less 4194304 bytes (4 MiB) kept for the request's other fields: a conversation continued with a full turn could not be sent. Lower it to at most 52428800, or lower ingress.limits.bodyBytes",
    ]);
    expect(problems({ ...limits({ bodyBytes: 20 * MiB }) })).toEqual([expect.stringMatching(/^responses\.maxConversationBytes: 50331648 plus ingress\.limits\.bodyBytes \(20971520\).*at most 41943040/)]);
    expect(problems(limits({ bodyBytes: 60 * MiB, audioBytes: 61 * MiB, imageEditBytes: 100 * MiB }))).toEqual([
      expect.stringMatching(/^ingress\.limits\.bodyBytes: 62914560 is more than .* with room for no conversation/),
      expect.stringMatching(/^ingress\.limits\.audioBytes: 63963136 is more than .*at most 62914560$/),
      expect.stringMatching(/^ingress\.limits\.imageEditBytes: 104857600 is more than .*at most 62914560$/),
    ]);
  });
});

describe('moderation models', () => {
  it('are deployed on providers with a moderations API: elsewhere no call could ever answer', () => {
    const providers = { ...MINIMAL_CONFIG.providers, claude: { type: 'anthropic', apiKey: SECRET } };
    const models = [
      ...MINIMAL_CONFIG.models,
      { id: 'omni-moderation-latest', capabilities: ['moderation'], deployments: [{ provider: 'sim', model: 'omni-moderation-latest' }, { provider: 'claude', model: 'claude-haiku' }] },
    ];
    expect(problems({ providers, models })).toEqual([
      'models[1].deployments[1].provider: provider "claude" (type anthropic) has no moderations API: a model with the moderation capability is deployed on providers of type openai',
    ]);
    expect(problems({ providers, models: [models[0], { ...models[1], deployments: [models[1]?.deployments[0]] }] })).toEqual([]);
  });
});

describe('audio models', () => {
  it('are deployed on providers with an audio API (OpenAI-compatible or Azure OpenAI), and priced per minute or per character', () => {
    const providers = { ...MINIMAL_CONFIG.providers, azure: { type: 'azure', baseUrl: 'https://acme.openai.azure.com', apiKey: SECRET }, gemini: { type: 'gemini', apiKey: SECRET } };
    const on = (provider: string, model: string) => ({ provider, model });
    const models = [
      ...MINIMAL_CONFIG.models,
      { id: 'whisper-1', capabilities: ['transcription'], pricing: { perAudioMinute: '0.006' }, deployments: [on('sim', 'whisper-1'), on('azure', 'whisper'), on('gemini', 'gemini-2.5-flash')] },
      { id: 'tts-1', capabilities: ['speech'], pricing: { perMillionCharacters: '15' }, deployments: [on('sim', 'tts-1'), on('gemini', 'gemini-tts')] },
    ];
    expect(problems({ providers, models })).toEqual([
      'models[1].deployments[2].provider: provider "gemini" (type gemini) has no transcriptions API: a model with the transcription capability is deployed on providers of type openai, azure',
      'models[2].deployments[1].provider: provider "gemini" (type gemini) has no speech API: a model with the speech capability is deployed on providers of type openai, azure',
    ]);
    const config = parseConfig({ ...MINIMAL_CONFIG, models: [...MINIMAL_CONFIG.models, { ...models[1], deployments: [on('sim', 'whisper-1')] }] }, {});
    expect(config.models[1]?.pricing).toMatchObject({ perAudioMinute: '0.006', perMillionCharacters: '0' });
    expect(config.budgets.audio).toEqual({ maxSeconds: 1500, tokensPerSecond: 25 });
    expect(config.ingress.limits.audioBytes).toBe(26 * 1024 * 1024);
    expect(problems({ providers, models: [...MINIMAL_CONFIG.models, { ...models[1], deployments: [on('sim', 'whisper-1')], pricing: { perAudioMinute: '-1' } }] })).toEqual([expect.stringMatching(/^models\[1\]\.pricing\.perAudioMinute: /)]);
  });
});

describe('image models', () => {
  it('are deployed on providers with an images API (OpenAI-compatible or Azure OpenAI)', () => {
    const providers = { ...MINIMAL_CONFIG.providers, azure: { type: 'azure', baseUrl: 'https://acme.openai.azure.com', apiKey: SECRET }, claude: { type: 'anthropic', apiKey: SECRET } };
    const image = (provider: string) => ({ provider, model: 'gpt-image-1' });
    const models = [...MINIMAL_CONFIG.models, { id: 'gpt-image-1', capabilities: ['images'], deployments: [image('sim'), image('azure'), image('claude')] }];
    expect(problems({ providers, models })).toEqual([
      'models[1].deployments[2].provider: provider "claude" (type anthropic) has no image generation API: a model with the images capability is deployed on providers of type openai, azure',
    ]);
  });
});

describe('Kafka topics and consumer groups', () => {
  const kafka = (kafkaSettings: Record<string, unknown> = {}) => ({ bus: 'kafka', kafka: { brokers: ['kafka:9092'], ...kafkaSettings } });

  it('give alerting a consumer group of its own: in billing’s it would commit usage partitions billing never stored', () => {
    expect(problems({ usage: kafka(), observability: { alerting: { consumerGroup: 'billing' } } })).toEqual([
      expect.stringMatching(/^observability\.alerting\.consumerGroup: "billing" is usage\.kafka\.consumerGroup too \(billing's\): .*billing would lose usage/),
    ]);
    expect(problems({ usage: kafka({ consumerGroup: 'metering' }), observability: { alerting: { consumerGroup: 'metering' } } })).toHaveLength(1);
    expect(problems({ usage: kafka({ consumerGroup: 'metering' }), observability: { alerting: { consumerGroup: 'billing' } } })).toEqual([]);
  });

  it('give the usage events, their dead letters and the budget events a topic each: a poison message sent back to the usage topic would loop for ever', () => {
    expect(problems({ usage: kafka({ dlqTopic: 'openrouter.usage.v1' }) })).toEqual(['usage.kafka.dlqTopic: "openrouter.usage.v1" is usage.kafka.topic too: the usage events, their dead letters and the budget events each need a topic of their own']);
    expect(problems({ usage: kafka(), budgets: { topic: 'openrouter.usage.v1' } })).toEqual([expect.stringMatching(/^budgets\.topic: "openrouter\.usage\.v1" is usage\.kafka\.topic too/)]);
    expect(problems({ usage: kafka(), budgets: { topic: 'openrouter.usage.v1.dlq' } })).toEqual([expect.stringMatching(/^budgets\.topic: "openrouter\.usage\.v1\.dlq" is usage\.kafka\.dlqTopic too/)]);
    // Kafka takes "." and "_" as one in topic names, and refuses to create the second of two such.
    expect(problems({ usage: kafka({ dlqTopic: 'openrouter_usage_v1' }) })).toEqual([expect.stringMatching(/^usage\.kafka\.dlqTopic: "openrouter_usage_v1" is one topic with usage\.kafka\.topic \("openrouter\.usage\.v1"\) to Kafka/)]);
  });

  it('refuses topic names Kafka refuses: other characters than letters, digits, ".", "_" and "-", "." and "..", more than 249 characters', () => {
    expect(problems({ usage: kafka({ topic: 'usage events' }) })).toEqual(['usage.kafka.topic: a topic name takes only letters, digits, ".", "_" and "-" (Kafka refuses any other character, spaces included)']);
    expect(problems({ usage: kafka({ dlqTopic: '..' }), budgets: { topic: 'budget/v1' } })).toEqual([
      'usage.kafka.dlqTopic: a topic cannot be named "." or ".." (Kafka refuses them)',
      expect.stringMatching(/^budgets\.topic: a topic name takes only/),
    ]);
    expect(problems({ usage: kafka({ topic: 'u'.repeat(250) }) })).toEqual(['usage.kafka.topic: is 250 characters long: Kafka takes topic names of at most 249']);
    expect(problems({ usage: kafka({ topic: '' }) })).toEqual(['usage.kafka.topic: name a topic (it is empty)']);
    expect(problems({ usage: kafka({ topic: `Usage-events_2.${'x'.repeat(234)}` }) })).toEqual([]);
  });

  it('are checked with the in-process bus too: the file may be switched to Kafka', () => {
    expect(problems({ usage: { kafka: { dlqTopic: 'openrouter.usage.v1' } } })).toHaveLength(1);
  });
});

describe('durations waited for with a timer', () => {
  const tooLong = 2 ** 31;
  const message = 'must be at most 2147483647 (ms, about 24.8 days), the longest a Node.js timer waits: a longer one would fire after 1 ms';

  it("are refused past 2^31 − 1 ms, which Node's timers take as 1 ms (a timeout firing at once, a retry or a poll coming again and again)", () => {
    const found = problems({
      ingress: { ...MINIMAL_CONFIG.ingress, limits: { shutdownGraceMs: tooLong } },
      // grpc.maxConnectionAgeMs has a lower maximum of its own (grpc.schema.spec.ts).
      grpc: { shutdownGraceMs: tooLong, callTimeoutMs: tooLong, reportTimeoutMs: tooLong, resolveIntervalMs: tooLong },
      providers: { sim: { ...MINIMAL_CONFIG.providers.sim, timeoutMs: tooLong, credentialFileCheckIntervalMs: tooLong } },
      routing: {
        retry: { deadlineMs: tooLong, attemptTimeoutMs: tooLong, completionTimeoutMs: tooLong, baseDelayMs: tooLong, maxDelayMs: tooLong, maxRetryAfterMs: tooLong },
        breaker: { windowMs: tooLong, cooldownMs: tooLong },
        grayReleaseSyncMs: tooLong,
      },
      usage: {
        kafka: { sendTimeoutMs: tooLong, connectionTimeoutMs: tooLong, lingerMs: tooLong },
        outbox: { replayIntervalMs: tooLong },
        clickhouse: { requestTimeoutMs: tooLong },
        consumer: { coalesceLingerMs: tooLong, maxWaitMs: tooLong, retryInitialMs: String(tooLong), retryMaxMs: tooLong },
      },
      budgets: { reservationTtlMs: tooLong, reconcileIntervalMs: tooLong },
      billing: { http: { port: 0 }, rollup: { reconcileIntervalMs: tooLong, settleMs: tooLong } },
      guardrails: { moderationTimeoutMs: tooLong },
      observability: { tracing: { exportTimeoutMs: tooLong } },
      access: { requests: { webSocketHeartbeatMs: tooLong, streamStallMs: tooLong } },
    });
    expect(found.map((p) => p.split(': ')[0]).sort()).toEqual(
      [
        'ingress.limits.shutdownGraceMs',
        'grpc.shutdownGraceMs',
        'grpc.callTimeoutMs',
        'grpc.reportTimeoutMs',
        'grpc.resolveIntervalMs',
        'providers.sim.timeoutMs',
        'providers.sim.credentialFileCheckIntervalMs',
        'routing.retry.deadlineMs',
        'routing.retry.attemptTimeoutMs',
        'routing.retry.completionTimeoutMs',
        'routing.retry.baseDelayMs',
        'routing.retry.maxDelayMs',
        'routing.retry.maxRetryAfterMs',
        'routing.breaker.windowMs',
        'routing.breaker.cooldownMs',
        'routing.grayReleaseSyncMs',
        'usage.kafka.sendTimeoutMs',
        'usage.kafka.connectionTimeoutMs',
        'usage.kafka.lingerMs',
        'usage.outbox.replayIntervalMs',
        'usage.clickhouse.requestTimeoutMs',
        'usage.consumer.coalesceLingerMs',
        'usage.consumer.maxWaitMs',
        'usage.consumer.retryInitialMs',
        'usage.consumer.retryMaxMs',
        'budgets.reservationTtlMs',
        'budgets.reconcileIntervalMs',
        'billing.rollup.reconcileIntervalMs',
        'billing.rollup.settleMs',
        'guardrails.moderationTimeoutMs',
        'observability.tracing.exportTimeoutMs',
        'access.requests.webSocketHeartbeatMs',
        'access.requests.streamStallMs',
      ].sort(),
    );
    expect(new Set(found.map((p) => p.slice(p.indexOf(': ') + 2)))).toEqual(new Set([message]));
  });

  it('are taken up to 2^31 − 1 ms', () => {
    const most = tooLong - 1;
    expect(
      problems({
        ingress: { ...MINIMAL_CONFIG.ingress, limits: { shutdownGraceMs: most } },
        grpc: { shutdownGraceMs: most, reportTimeoutMs: most },
        routing: { retry: { deadlineMs: most, attemptTimeoutMs: most, completionTimeoutMs: most } },
        observability: { tracing: { exportTimeoutMs: most } },
        access: { requests: { streamStallMs: most } },
      }),
    ).toEqual([]);
  });

  it('leave alone what no timer waits for: the retention of the usage topics (30 days by default) is Kafka’s', () => {
    expect(problems({ usage: { kafka: { retentionMs: 400 * 24 * 60 * 60_000 } } })).toEqual([]);
  });
});
