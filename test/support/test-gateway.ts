import OpenAI from 'openai';
import { startGateway, type GatewayHandle } from '@openrouter/gateway';
import { createLogger } from '@openrouter/observability';
import { startSimulator, type RunningSimulator } from '@openrouter/provider-simulator';
import { SIM_KEY, TEST_DEV_KEY, testConfig } from './test-config';

export interface TestGateway {
  baseURL: string;
  url: string;
  apiKey: string;
  sim: RunningSimulator;
  client(options?: { maxRetries?: number }): OpenAI;
  close(): Promise<void>;
}

/** The embedded gateway in this process, in front of a simulator the test controls. */
export async function startTestGateway(): Promise<TestGateway> {
  const sim = await startSimulator({ apiKey: SIM_KEY, seed: 7 });
  let gateway: GatewayHandle;
  try {
    gateway = await startGateway(testConfig(sim.baseUrl, { ingress: 0, router: 0, adapter: 0 }), createLogger('test', 'silent'));
  } catch (error) {
    await sim.close();
    throw error;
  }
  return {
    baseURL: `${gateway.url}/v1`,
    url: gateway.url,
    apiKey: TEST_DEV_KEY,
    sim,
    client: (options = {}) => new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: TEST_DEV_KEY, maxRetries: options.maxRetries ?? 0 }),
    async close() {
      await gateway.close();
      await sim.close();
    },
  };
}
