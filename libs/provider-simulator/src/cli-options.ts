import { parseArgs } from 'node:util';
import type { Behaviour } from './core/behaviour-config';
import type { SimulatorOptions } from './simulator-server';

export const CLI_USAGE = `Usage: provider-simulator [options]

  --host H                    interface to bind (default 127.0.0.1)
  --port N                    port (default 0 = any free port)
  --api-key K                 require "Authorization: Bearer K"
  --latency-ms N              delay before response headers
  --ttft-ms N                 stream: delay before the first token
  --tokens-per-second N       stream pacing (0 = unpaced)
  --completion-tokens N       default reply length in tokens
  --embedding-dimensions N    default embedding size
  --context-window N          prompt token limit
  --seed N                    PRNG seed
  --help                      show this text`;

export type CliCommand = { kind: 'help' } | { kind: 'start'; options: SimulatorOptions };

const NUMERIC_BEHAVIOUR_FLAGS: Readonly<Record<string, keyof Omit<Behaviour, 'faults' | 'ignoreMaxTokens' | 'ignoreStreamOptions'>>> = {
  'latency-ms': 'latencyMs',
  'ttft-ms': 'ttftMs',
  'tokens-per-second': 'tokensPerSecond',
  'completion-tokens': 'completionTokens',
  'embedding-dimensions': 'embeddingDimensions',
  'context-window': 'contextWindow',
};

/** Parses argv (without node and script). Throws with a readable message on bad input. */
export function parseCliArgs(argv: readonly string[]): CliCommand {
  const { values } = parseArgs({
    args: [...argv],
    strict: true,
    allowPositionals: false,
    options: {
      host: { type: 'string' },
      port: { type: 'string' },
      'api-key': { type: 'string' },
      seed: { type: 'string' },
      help: { type: 'boolean' },
      'latency-ms': { type: 'string' },
      'ttft-ms': { type: 'string' },
      'tokens-per-second': { type: 'string' },
      'completion-tokens': { type: 'string' },
      'embedding-dimensions': { type: 'string' },
      'context-window': { type: 'string' },
    },
  });
  if (values.help === true) return { kind: 'help' };

  const options: SimulatorOptions = {};
  const strings: Readonly<Record<string, unknown>> = values;
  const text = (flag: string): string | undefined => {
    const value = strings[flag];
    return typeof value === 'string' ? value : undefined;
  };
  const host = text('host');
  if (host !== undefined) options.host = host;
  const apiKey = text('api-key');
  if (apiKey !== undefined) options.apiKey = apiKey;
  const port = text('port');
  if (port !== undefined) options.port = integer('port', port, 0, 65_535);
  const seed = text('seed');
  if (seed !== undefined) options.seed = integer('seed', seed, 0, 0xffffffff);

  const behaviour: Partial<Behaviour> = {};
  for (const [flag, key] of Object.entries(NUMERIC_BEHAVIOUR_FLAGS)) {
    const raw = text(flag);
    if (raw !== undefined) behaviour[key] = number(flag, raw);
  }
  if (Object.keys(behaviour).length > 0) options.behaviour = behaviour;
  return { kind: 'start', options };
}

function number(flag: string, raw: string): number {
  const value = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(value) || value < 0) throw new Error(`--${flag} expects a non-negative number, got "${raw}"`);
  return value;
}

function integer(flag: string, raw: string, min: number, max: number): number {
  const value = number(flag, raw);
  if (!Number.isInteger(value) || value < min || value > max) throw new Error(`--${flag} expects an integer in ${min}..${max}, got "${raw}"`);
  return value;
}
