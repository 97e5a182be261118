import { performance } from 'node:perf_hooks';
import autocannon from 'autocannon';
import { Pool } from 'undici';
import { BENCH_PROMPT } from './bench-config';
import type { BenchTarget } from './targets/target';

export const SCENARIOS = ['chat', 'stream', 'embeddings'] as const;
export type Scenario = (typeof SCENARIOS)[number];

/** What one load run against one target measured. Latencies in milliseconds, unsorted. */
export interface LoadSample {
  requests: number;
  errors: number;
  durationMs: number;
  latenciesMs: number[];
  /** Streaming only: time to the first body byte. */
  ttfbMs: number[];
}

interface RequestShape {
  path: string;
  body: string;
}


export function requestFor(target: BenchTarget, scenario: Scenario): RequestShape {
  switch (scenario) {
    case 'chat':
      return { path: '/chat/completions', body: JSON.stringify({ model: target.models.chat, messages: [{ role: 'user', content: BENCH_PROMPT }], max_tokens: 64 }) };
    case 'stream':
      return {
        path: '/chat/completions',
        body: JSON.stringify({ model: target.models.chat, messages: [{ role: 'user', content: BENCH_PROMPT }], max_tokens: 64, stream: true, stream_options: { include_usage: true } }),
      };
    case 'embeddings':
      return { path: '/embeddings', body: JSON.stringify({ model: target.models.embeddings, input: BENCH_PROMPT }) };
  }
}

/** Runs one scenario against one target at `connections` for `durationMs`. */
export function drive(target: BenchTarget, scenario: Scenario, connections: number, durationMs: number): Promise<LoadSample> {
  return scenario === 'stream' ? driveStreaming(target, connections, durationMs) : driveAutocannon(target, scenario, connections, durationMs);
}

/**
 * Non-streaming load with autocannon. Its histogram rounds to whole milliseconds, too coarse for
 * sub-millisecond overheads, so latencies are taken from its per-response event instead.
 */
async function driveAutocannon(target: BenchTarget, scenario: Scenario, connections: number, durationMs: number): Promise<LoadSample> {
  const { path, body } = requestFor(target, scenario);
  const latenciesMs: number[] = [];
  let failed = 0;
  const result = await new Promise<autocannon.Result>((done, fail) => {
    const instance = autocannon(
      {
        url: `${target.baseUrl}${path}`,
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: target.authorization },
        body,
        connections,
        pipelining: 1,
        duration: durationMs / 1000,
        timeout: 30,
      },
      (error: unknown, value: autocannon.Result) => (error ? fail(error instanceof Error ? error : new Error(String(error))) : done(value)),
    );
    instance.on('response', (_client, statusCode, _bytes, responseTime) => {
      if (statusCode >= 200 && statusCode < 300) latenciesMs.push(responseTime);
      else failed++;
    });
  });
  return { requests: latenciesMs.length, errors: failed + result.errors, durationMs: result.duration * 1000, latenciesMs, ttfbMs: [] };
}

/**
 * Streaming load: autocannon does not see when the first byte of a body arrives, so a small
 * closed-loop driver on undici keeps `connections` requests in flight and times the first body
 * chunk (the first SSE event) and the end of the stream.
 */
async function driveStreaming(target: BenchTarget, connections: number, durationMs: number): Promise<LoadSample> {
  const { path, body } = requestFor(target, 'stream');
  const url = new URL(target.baseUrl);
  const pool = new Pool(url.origin, { connections, pipelining: 1 });
  const headers = { 'content-type': 'application/json', authorization: target.authorization, accept: 'text/event-stream' };
  const latenciesMs: number[] = [];
  const ttfbMs: number[] = [];
  let errors = 0;
  const started = performance.now();
  const deadline = started + durationMs;
  const loop = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const t0 = performance.now();
      try {
        const response = await pool.request({ path: `${url.pathname}${path}`, method: 'POST', headers, body });
        let first = 0;
        let text = '';
        for await (const chunk of response.body) {
          if (first === 0) first = performance.now();
          if (response.statusCode !== 200) text += String(chunk);
        }
        const end = performance.now();
        if (response.statusCode !== 200) {
          errors++;
          if (errors === 1) process.stderr.write(`${target.name} stream: ${response.statusCode} ${text.slice(0, 300)}\n`);
          continue;
        }
        latenciesMs.push(end - t0);
        ttfbMs.push((first || end) - t0);
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: connections }, loop));
  const elapsed = performance.now() - started;
  await pool.close();
  return { requests: latenciesMs.length, errors, durationMs: elapsed, latenciesMs, ttfbMs };
}

/** One request of each scenario; fails loudly when a target answers anything but 2xx. */
export async function checkTarget(target: BenchTarget): Promise<void> {
  for (const scenario of SCENARIOS) {
    const { path, body } = requestFor(target, scenario);
    const response = await fetch(`${target.baseUrl}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: target.authorization }, body });
    const text = await response.text();
    if (!response.ok) throw new Error(`${target.name} ${scenario}: HTTP ${response.status}: ${text.slice(0, 500)}`);
  }
}
