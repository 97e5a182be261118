import { TASK_TYPES, type TaskType } from '@openrouter/config';
import { taskFeatures, visitTaskFeatures } from './task-features';

/** The shipped weights of the task classifier: a linear model over `taskFeatures` (one weight per feature and label). */
export interface TaskClassifierWeights {
  format: 'open-router/task-classifier@1';
  labels: TaskType[];
  /** Bias per label. */
  logPriors: number[];
  /** Per feature, one weight per label (same order as `labels`). */
  features: Record<string, number[]>;
  evaluation: { trainSize: number; heldOutSize: number; heldOutAccuracy: number };
}

export interface LabelledPrompt {
  label: TaskType;
  text: string;
  system?: string | undefined;
}

const DIGITS = 4;
const round = (x: number): number => Number(x.toFixed(DIGITS));

export interface TrainingSettings {
  epochs: number;
  learningRate: number;
  /** L2 penalty per weight. */
  l2: number;
}

export const DEFAULT_TRAINING: Readonly<TrainingSettings> = { epochs: 200, learningRate: 0.5, l2: 0.002 };

/**
 * Multinomial logistic regression on binary features, trained by full-batch gradient descent
 * from zero weights: no randomness, so the same data always gives the same weights.
 */
export function trainLogisticRegression(samples: readonly LabelledPrompt[], settings: TrainingSettings = DEFAULT_TRAINING): Omit<TaskClassifierWeights, 'evaluation'> {
  const labels = [...TASK_TYPES];
  const k = labels.length;
  const index = new Map<string, number>();
  const rows = samples.map((sample) => {
    const ids = new Set<number>();
    for (const feature of taskFeatures(sample.system ?? '', sample.text)) {
      let id = index.get(feature);
      if (id === undefined) index.set(feature, (id = index.size));
      ids.add(id);
    }
    return { ids: [...ids], label: labels.indexOf(sample.label) };
  });
  const n = rows.length;
  const weights = new Float64Array(index.size * k);
  const bias = new Float64Array(k);
  const gradient = new Float64Array(index.size * k);
  const biasGradient = new Float64Array(k);
  const p = new Float64Array(k);
  for (let epoch = 0; epoch < settings.epochs; epoch++) {
    gradient.fill(0);
    biasGradient.fill(0);
    for (const row of rows) {
      let max = -Infinity;
      for (let c = 0; c < k; c++) {
        let s = bias[c] ?? 0;
        for (const id of row.ids) s += weights[id * k + c] ?? 0;
        p[c] = s;
        if (s > max) max = s;
      }
      let sum = 0;
      for (let c = 0; c < k; c++) sum += p[c] = Math.exp((p[c] ?? 0) - max);
      for (let c = 0; c < k; c++) {
        const error = (p[c] ?? 0) / sum - (c === row.label ? 1 : 0);
        biasGradient[c] = (biasGradient[c] ?? 0) + error;
        for (const id of row.ids) gradient[id * k + c] = (gradient[id * k + c] ?? 0) + error;
      }
    }
    for (let i = 0; i < weights.length; i++) weights[i] = (weights[i] ?? 0) - settings.learningRate * ((gradient[i] ?? 0) / n + settings.l2 * (weights[i] ?? 0));
    for (let c = 0; c < k; c++) bias[c] = (bias[c] ?? 0) - settings.learningRate * ((biasGradient[c] ?? 0) / n);
  }
  const features: Record<string, number[]> = {};
  for (const [feature, id] of [...index.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const row = labels.map((_, c) => round(weights[id * k + c] ?? 0));
    if (row.some((w) => w !== 0)) features[feature] = row;
  }
  return { format: 'open-router/task-classifier@1', labels, logPriors: Array.from(bias, round), features };
}

export interface TaskPrediction {
  taskType: TaskType;
  /** Posterior probability per label, in `TASK_TYPES` order. */
  probabilities: Array<{ taskType: TaskType; probability: number }>;
}

/** Scores features against the weights (each distinct feature counts once); unknown features are ignored. */
export class LinearTaskModel {
  private readonly rows: ReadonlyMap<string, Float64Array>;
  private readonly priors: Float64Array;

  constructor(private readonly weights: Pick<TaskClassifierWeights, 'labels' | 'logPriors' | 'features'>) {
    this.rows = new Map(Object.entries(weights.features).map(([k, v]) => [k, Float64Array.from(v)]));
    this.priors = Float64Array.from(weights.logPriors);
  }

  /** The most likely label only (no probabilities): the hot path. */
  best(system: string, user: string): TaskType {
    const scores = this.score(system, user);
    let best = 0;
    for (let c = 1; c < scores.length; c++) if ((scores[c] ?? -Infinity) > (scores[best] ?? -Infinity)) best = c;
    return this.weights.labels[best] ?? 'chat';
  }

  predict(system: string, user: string): TaskPrediction {
    const scores = this.score(system, user);
    const max = Math.max(...scores);
    const exp = Array.from(scores, (s) => Math.exp(s - max));
    const sum = exp.reduce((a, b) => a + b, 0);
    const probabilities = this.weights.labels.map((taskType, c) => ({ taskType, probability: (exp[c] ?? 0) / sum }));
    return { taskType: this.best(system, user), probabilities };
  }

  private score(system: string, user: string): Float64Array {
    const scores = Float64Array.from(this.priors);
    // Each known feature counts once: one row per feature, so a row seen is a feature seen.
    const seen = new Set<Float64Array>();
    visitTaskFeatures(system, user, (feature) => {
      const row = this.rows.get(feature);
      if (!row || seen.has(row)) return;
      seen.add(row);
      for (let c = 0; c < scores.length; c++) scores[c] = (scores[c] ?? 0) + (row[c] ?? 0);
    });
    return scores;
  }
}
