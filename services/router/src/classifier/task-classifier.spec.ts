import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseChatRequest } from '@openrouter/openai-wire';
import { TaskClassifier } from './task-classifier';
import { TASK_CLASSIFIER_WEIGHTS_JSON } from './task-classifier.weights';
import { trainTaskClassifier, weightsModuleSource } from './training';

const data = (name: string): string => readFileSync(join(__dirname, 'data', name), 'utf8');

describe('task classifier', () => {
  it('ships exactly the weights the script trains from the data in the repo', () => {
    const weights = trainTaskClassifier({ mtBenchJsonl: data('mt-bench-questions.jsonl'), labelledJsonl: data('labelled-prompts.jsonl') });
    expect(weightsModuleSource(weights)).toBe(readFileSync(join(__dirname, 'task-classifier.weights.ts'), 'utf8'));
    expect(JSON.parse(TASK_CLASSIFIER_WEIGHTS_JSON)).toEqual(weights);
  });

  it('reaches the accuracy floor on the held-out split', () => {
    const { evaluation } = JSON.parse(TASK_CLASSIFIER_WEIGHTS_JSON) as { evaluation: { heldOutAccuracy: number; heldOutSize: number } };
    expect(evaluation.heldOutSize).toBeGreaterThanOrEqual(60);
    expect(evaluation.heldOutAccuracy).toBeGreaterThanOrEqual(0.75);
  });

  it('reads the system prompt and the last user turn', () => {
    const classifier = new TaskClassifier();
    const text = (role: string, t: string) => ({ role, text: t, contentIsNull: false, toolCalls: [], extraJson: '' });
    expect(classifier.classify({ messages: [text('user', 'Hello there!'), text('assistant', 'Hi'), text('user', 'Write a Python function that parses a CSV file and returns rows.')] })).toBe('code');
    expect(classifier.classify({ messages: [text('user', 'Translate "good night" into Spanish.')] })).toBe('translation');
    expect(classifier.classify({ messages: [text('user', 'Solve for x: 2x + 5 = 13')] })).toBe('math');
    expect(classifier.classify({ messages: [text('system', 'You summarize documents.'), text('user', 'Here is the memo about the budget review and the hiring freeze.')] })).toBe('summarization');
    const explained = classifier.explain({ messages: [text('user', 'Write a haiku about rain')] });
    expect(explained.taskType).toBe('creative');
    expect(explained.probabilities.reduce((s, p) => s + p.probability, 0)).toBeCloseTo(1);
  });

  it('reads text parts that carry keys of their own (`cache_control`) as text', () => {
    const classifier = new TaskClassifier();
    const ask = 'Write a Python function that parses a CSV file and returns rows.';
    const request = (part: Record<string, unknown>) => parseChatRequest({ model: 'm', messages: [{ role: 'user', content: [part] }] });
    expect(classifier.classify(request({ type: 'text', text: ask, cache_control: { type: 'ephemeral' } }))).toBe('code');
    expect(classifier.classify(request({ type: 'text', text: ask }))).toBe('code');
  });
});
