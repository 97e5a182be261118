import { z } from 'zod';

/** Decimal amounts travel as strings so money never passes through a float. */
const decimal = z
  .union([z.string(), z.number()])
  .transform((v) => String(v))
  .refine((v) => /^\d+(\.\d+)?$/.test(v), { message: 'must be a non-negative decimal number, e.g. "0.15"' });

/** A boolean that may come from an environment variable as text. */
const flag = z.union([z.boolean(), z.enum(['true', 'false', '1', '0', 'yes', 'no'])]).transform((v) => v === true || v === 'true' || v === '1' || v === 'yes');

const port = z.coerce.number().int().min(0).max(65535);
const host = z.string().min(1).default('127.0.0.1');

export const listenSchema = z.object({ host, port });
export type Listen = z.infer<typeof listenSchema>;

/** host:port of a gRPC peer. */
const address = z.string().regex(/^[^\s:]+:\d+$/, 'must be host:port');

export const PROVIDER_TYPES = ['openai'] as const;
export type ProviderType = (typeof PROVIDER_TYPES)[number];

export const providerSchema = z.object({
  type: z.enum(PROVIDER_TYPES),
  baseUrl: z.string().url(),
  apiKey: z.string().default(''),
  headers: z.record(z.string(), z.string()).default({}),
  timeoutMs: z.coerce.number().int().positive().default(600_000),
});
export type ProviderConfig = z.infer<typeof providerSchema>;

export const CAPABILITIES = ['chat', 'tools', 'vision', 'json_object', 'json_schema', 'embeddings', 'completions'] as const;
export type Capability = (typeof CAPABILITIES)[number];

export const pricingSchema = z.object({
  currency: z.string().length(3).default('USD'),
  /** Prices per 1M tokens. */
  input: decimal.default('0'),
  output: decimal.default('0'),
  cachedInput: decimal.optional(),
  cacheWrite: decimal.optional(),
  perRequest: decimal.default('0'),
});
export type Pricing = z.infer<typeof pricingSchema>;

export const deploymentSchema = z.object({
  id: z.string().min(1).optional(),
  provider: z.string().min(1),
  /** The model name the provider knows. */
  model: z.string().min(1),
  weight: z.number().positive().default(1),
});
export type DeploymentConfig = z.infer<typeof deploymentSchema>;

export const modelSchema = z.object({
  id: z.string().min(1),
  ownedBy: z.string().default('open-router'),
  created: z.number().int().nonnegative().default(0),
  capabilities: z.array(z.enum(CAPABILITIES)).default(['chat']),
  contextWindow: z.number().int().positive().default(128_000),
  pricing: pricingSchema.default({ currency: 'USD', input: '0', output: '0', perRequest: '0' }),
  deployments: z.array(deploymentSchema).min(1),
});
export type ModelConfig = z.infer<typeof modelSchema>;

const httpOnly = z.object({ http: listenSchema });

export const configSchema = z
  .object({
    version: z.literal(1),
    gateway: z
      .object({
        dataDir: z.string().min(1).default('.data'),
        simulator: z
          .object({ enabled: flag.default(false), host, port: port.default(0), apiKey: z.string().default('') })
          .default({ enabled: false, host: '127.0.0.1', port: 0, apiKey: '' }),
      })
      .default({ dataDir: '.data', simulator: { enabled: false, host: '127.0.0.1', port: 0, apiKey: '' } }),
    log: z.object({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info') }).default({ level: 'info' }),
    ingress: z.object({
      http: listenSchema,
      router: address,
      /** Development traffic key (embedded mode); empty means generate one at start-up. */
      devKey: z.string().default(''),
      limits: z
        .object({
          bodyBytes: z.number().int().positive().default(10 * 1024 * 1024),
          shutdownGraceMs: z.number().int().nonnegative().default(10_000),
        })
        .default({ bodyBytes: 10 * 1024 * 1024, shutdownGraceMs: 10_000 }),
    }),
    router: z.object({
      grpc: listenSchema,
      http: listenSchema,
      /** Provider id → adapter address; `default` serves every provider not listed. */
      adapters: z.record(z.string(), address).refine((m) => Object.keys(m).length > 0, 'name at least one adapter address'),
    }),
    adapter: z.object({
      grpc: listenSchema,
      http: listenSchema,
      /** Provider ids this instance serves; empty means all. */
      providers: z.array(z.string()).default([]),
    }),
    billing: httpOnly,
    alerting: httpOnly,
    providers: z.record(z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, 'provider ids are lower-case letters, digits, - and _'), providerSchema),
    models: z.array(modelSchema).min(1),
  })
  .superRefine((config, ctx) => {
    const seen = new Set<string>();
    config.models.forEach((model, i) => {
      if (seen.has(model.id)) ctx.addIssue({ code: 'custom', path: ['models', i, 'id'], message: `duplicate model id "${model.id}"` });
      seen.add(model.id);
      model.deployments.forEach((d, j) => {
        if (!(d.provider in config.providers)) {
          ctx.addIssue({ code: 'custom', path: ['models', i, 'deployments', j, 'provider'], message: `unknown provider "${d.provider}"` });
        }
      });
    });
    for (const id of config.adapter.providers) {
      if (!(id in config.providers)) ctx.addIssue({ code: 'custom', path: ['adapter', 'providers'], message: `unknown provider "${id}"` });
    }
  });

export type GatewayConfig = z.infer<typeof configSchema>;
