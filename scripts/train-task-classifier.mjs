// Trains the router's task classifier from the datasets in services/router/src/classifier/data,
// writes the weights module, and prints held-out accuracy and the classification time.
//   node scripts/train-task-classifier.mjs            write the weights
//   node scripts/train-task-classifier.mjs --check    fail when the shipped weights differ
import { createRequire } from 'node:module';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { transformFileSync } from '@swc/core';

const root = resolve(import.meta.dirname, '..');
const dir = join(root, 'services/router/src/classifier');
const require = createRequire(import.meta.url);

// Load the TypeScript sources as they are (the classifier imports only @openrouter/config types and TASK_TYPES).
const Module = require('node:module');
const configEntry = join(root, 'libs/config/src/catalog.schema.ts');
const originalResolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  if (request === '@openrouter/config') return configEntry;
  return originalResolve.call(this, request, ...rest);
};
require.extensions['.ts'] = (module, filename) => {
  const { code } = transformFileSync(filename, { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'commonjs' }, swcrc: false });
  module._compile(code, filename);
};

const { trainTaskClassifier, weightsModuleSource, parseLabelled, parseMtBench } = require(join(dir, 'training.ts'));
const { LinearTaskModel } = require(join(dir, 'linear-model.ts'));

const datasets = {
  mtBenchJsonl: readFileSync(join(dir, 'data/mt-bench-questions.jsonl'), 'utf8'),
  labelledJsonl: readFileSync(join(dir, 'data/labelled-prompts.jsonl'), 'utf8'),
};
const weights = trainTaskClassifier(datasets);
const source = weightsModuleSource(weights);
const target = join(dir, 'task-classifier.weights.ts');

const { heldOutAccuracy, heldOutSize, trainSize } = weights.evaluation;
console.log(`trained on ${trainSize} prompts, ${Object.keys(weights.features).length} features`);
console.log(`held-out accuracy: ${(heldOutAccuracy * 100).toFixed(1)}% of ${heldOutSize} prompts`);

// Classification time: every prompt, many rounds, one timing per call.
const model = new LinearTaskModel(weights);
const prompts = [...parseMtBench(datasets.mtBenchJsonl), ...parseLabelled(datasets.labelledJsonl)];
for (let i = 0; i < 2000; i++) model.best(prompts[i % prompts.length].system ?? '', prompts[i % prompts.length].text);
const times = [];
for (let round = 0; round < 20; round++) {
  for (const p of prompts) {
    const start = performance.now();
    model.best(p.system ?? '', p.text);
    times.push(performance.now() - start);
  }
}
times.sort((a, b) => a - b);
const at = (q) => times[Math.min(times.length - 1, Math.floor(q * times.length))];
console.log(`classification: p50 ${(at(0.5) * 1000).toFixed(1)} µs, p99 ${(at(0.99) * 1000).toFixed(1)} µs over ${times.length} calls`);

if (process.argv.includes('--check')) {
  if (readFileSync(target, 'utf8') !== source) {
    console.error('task-classifier.weights.ts is stale: run node scripts/train-task-classifier.mjs');
    process.exit(1);
  }
  console.log('shipped weights are current');
} else {
  writeFileSync(target, source);
  console.log(`wrote ${target}`);
}
