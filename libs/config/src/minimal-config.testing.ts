/** The smallest configuration document the schema accepts (one provider, one model), for specs to extend. */
export const MINIMAL_CONFIG = {
  version: 1,
  ingress: { http: { port: 8080 }, router: '127.0.0.1:1' },
  router: { grpc: { port: 1 }, http: { port: 0 }, adapters: { default: '127.0.0.1:2' } },
  adapter: { grpc: { port: 2 }, http: { port: 0 } },
  billing: { http: { port: 0 } },
  alerting: { http: { port: 0 } },
  providers: { sim: { type: 'openai', baseUrl: 'http://127.0.0.1:9/v1', apiKey: 'k' } },
  models: [{ id: 'm', deployments: [{ provider: 'sim', model: 'up' }] }],
};
