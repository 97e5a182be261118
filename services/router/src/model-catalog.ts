import type { Capability, DeploymentConfig, GatewayConfig, ModelConfig } from '@openrouter/config';
import { GatewayError } from '@openrouter/errors';

export interface Deployment extends DeploymentConfig {
  id: string;
}

export interface CatalogModel extends Omit<ModelConfig, 'deployments'> {
  deployments: Deployment[];
}

/** The models the gateway offers, from configuration. */
export class ModelCatalog {
  private readonly models: ReadonlyMap<string, CatalogModel>;

  constructor(config: GatewayConfig) {
    this.models = new Map(
      config.models.map((m) => [m.id, { ...m, deployments: m.deployments.map((d, i) => ({ ...d, id: d.id ?? `${m.id}#${i}` })) }]),
    );
  }

  list(): CatalogModel[] {
    return [...this.models.values()];
  }

  /** The model a request names, if it exists, serves the capability and the caller may use it. */
  resolve(id: string, capability: Capability, allowed: readonly string[]): CatalogModel {
    const model = this.models.get(id);
    if (!model || (allowed.length > 0 && !allowed.includes(id))) {
      throw new GatewayError('not_found', `The model \`${id}\` does not exist or you do not have access to it.`, { param: 'model', code: 'model_not_found' });
    }
    if (!model.capabilities.includes(capability)) {
      throw new GatewayError('bad_request', `The model \`${id}\` does not support ${capability}.`, { param: 'model', code: 'model_not_supported' });
    }
    return model;
  }
}
