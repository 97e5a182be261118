import type { TaskType } from '@openrouter/config';
import type { chatv1 } from '@openrouter/contracts';
import { partContent } from '@openrouter/openai-wire';
import { LinearTaskModel, type TaskClassifierWeights, type TaskPrediction } from './linear-model';
import { TASK_CLASSIFIER_WEIGHTS_JSON } from './task-classifier.weights';

/** What the classifier reads of a chat request: the system prompt and the last user turn. */
export function classifierInput(request: Pick<chatv1.ChatRequest, 'messages'>): { system: string; user: string } {
  let system = '';
  let user = '';
  for (const message of request.messages) {
    if ((message.role === 'system' || message.role === 'developer') && !system) system = textOf(message);
  }
  for (let i = request.messages.length - 1; i >= 0; i--) {
    const message = request.messages[i];
    if (message?.role === 'user') {
      user = textOf(message);
      break;
    }
  }
  return { system, user };
}

function textOf(message: chatv1.Message): string {
  if (message.text !== undefined) return message.text;
  if (!message.parts) return '';
  let text = '';
  for (const part of message.parts.parts) {
    // A text part kept as JSON (it had `cache_control`, say) is text all the same.
    const partText = part.text ?? (part.rawJson ? partContent(part).text : undefined);
    if (partText !== undefined) text += (text ? '\n' : '') + partText;
  }
  return text;
}

/** Recognises the task type of a chat request in-process (naive Bayes, shipped weights). */
export class TaskClassifier {
  private readonly model: LinearTaskModel;

  constructor(weights: TaskClassifierWeights = JSON.parse(TASK_CLASSIFIER_WEIGHTS_JSON) as TaskClassifierWeights) {
    this.model = new LinearTaskModel(weights);
  }

  classify(request: Pick<chatv1.ChatRequest, 'messages'>): TaskType {
    const { system, user } = classifierInput(request);
    return this.model.best(system, user);
  }

  explain(request: Pick<chatv1.ChatRequest, 'messages'>): TaskPrediction {
    const { system, user } = classifierInput(request);
    return this.model.predict(system, user);
  }
}
