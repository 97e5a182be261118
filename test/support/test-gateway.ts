import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { startGateway, type GatewayHandle } from '@openrouter/gateway';
import { createLogger, type TelemetryOptions } from '@openrouter/observability';
import { startSimulator, type RunningSimulator } from '@openrouter/provider-simulator';
import type { DestinationStream } from 'pino';
import { parseConfig } from '@openrouter/config';
import { SIM_KEY, TEST_DEV_KEY, testConfigDocument } from './test-config';

export interface TestGateway {
  baseURL: string;
  url: string;
  apiKey: string;
  sim: RunningSimulator;
  gateway: GatewayHandle;
  client(options?: { maxRetries?: number; apiKey?: string }): OpenAI;
  close(): Promise<void>;
}

export interface TestGatewayOptions {
  /** Changes the configuration document before it is parsed. */
  configure?: (document: Record<string, unknown>) => void;
  /** Receives every service's log lines (the level is then `info`). */
  logs?: DestinationStream;
  /** Tracing exporter for every service (with `observability.tracing.enabled` set by `configure`). */
  telemetry?: TelemetryOptions;
}

/** The embedded gateway in this process, in front of a simulator the test controls. */
export async function startTestGateway(options: TestGatewayOptions = {}): Promise<TestGateway> {
  const sim = await startSimulator({ apiKey: SIM_KEY, seed: 7 });
  const dataDir = mkdtempSync(join(tmpdir(), 'gateway-data-'));
  let gateway: GatewayHandle;
  try {
    const document = testConfigDocument(sim.baseUrl, { ingress: 0, router: 0, adapter: 0 });
    // Its own data directory (the usage bus's outbox): gateways of parallel suites never share one.
    document['gateway'] = { dataDir };
    if (options.logs) document['log'] = { level: 'info' };
    options.configure?.(document);
    const config = parseConfig(document, {});
    gateway = await startGateway(config, createLogger('test', config.log.level, options.logs), options.logs, { telemetry: options.telemetry });
  } catch (error) {
    await sim.close();
    rmSync(dataDir, { recursive: true, force: true });
    throw error;
  }
  return {
    baseURL: `${gateway.url}/v1`,
    url: gateway.url,
    apiKey: TEST_DEV_KEY,
    sim,
    gateway,
    client: (options = {}) => new OpenAI({ baseURL: `${gateway.url}/v1`, apiKey: options.apiKey ?? TEST_DEV_KEY, maxRetries: options.maxRetries ?? 0 }),
    async close() {
      await gateway.close();
      await sim.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
