import { z } from 'zod';
import { pricingSchema } from './pricing.schema';

export const CAPABILITIES = ['chat', 'tools', 'vision', 'json_object', 'json_schema', 'embeddings', 'completions'] as const;
export type Capability = (typeof CAPABILITIES)[number];

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
  pricing: pricingSchema.prefault({}),
  deployments: z.array(deploymentSchema).min(1),
});
export type ModelConfig = z.infer<typeof modelSchema>;

/** Aliases, strategies, experiments and policies: how a request's model becomes a deployment. */
export const routingSchema = z.object({});
export type RoutingConfig = z.infer<typeof routingSchema>;
