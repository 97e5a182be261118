import { hash32, mixSeeds, SeededRandom } from './seeded-random';
import { isSingleToken, splitIntoTokenPieces } from './token-counter';

export type ContentFinishReason = 'stop' | 'length';

export interface GeneratedContent {
  /** One entry per streamed chunk; joined they form `text`. */
  pieces: string[];
  text: string;
  /** Tokens generated (one per piece). */
  completionTokens: number;
  finishReason: ContentFinishReason;
  /** The stop sequence the text was cut at (its first match, within the length limit). */
  stopSequence?: string;
}

const CANDIDATE_WORDS = [
  'the', 'quick', 'brown', 'fox', 'over', 'lazy', 'dog', 'reply', 'from', 'provider', 'model', 'answer',
  'token', 'stream', 'gateway', 'request', 'response', 'router', 'network', 'cloud', 'server', 'client',
  'system', 'signal', 'value', 'result', 'number', 'river', 'mountain', 'forest', 'ocean', 'light', 'green',
  'blue', 'red', 'yellow', 'bright', 'simple', 'clear', 'small', 'large', 'early', 'later', 'today', 'always',
  'never', 'often', 'data', 'question', 'idea', 'plan', 'note', 'list', 'page', 'line', 'word', 'time',
  'place', 'world', 'people', 'water', 'music', 'story', 'paper', 'table', 'window', 'garden', 'morning',
  'summer', 'winter', 'travel', 'friend', 'market', 'city', 'street', 'bridge',
];

const capitalise = (word: string): string => word.charAt(0).toUpperCase() + word.slice(1);

/**
 * Only words whose every spelling we emit (" word", "Word", " Word") is a single o200k token,
 * so a reply built from them tokenises back to exactly one token per piece.
 */
export const REPLY_VOCABULARY: readonly string[] = CANDIDATE_WORDS.filter(
  (word) => isSingleToken(` ${word}`) && isSingleToken(capitalise(word)) && isSingleToken(` ${capitalise(word)}`),
);

export const TOOL_RESULT_OPENING: readonly string[] = splitIntoTokenPieces('Tool result received.').pieces;

/**
 * Deterministic natural reply of exactly `tokenCount` single-token pieces: sentences of
 * vocabulary words with the odd comma, ending in a full stop.
 */
export function generateReplyPieces(
  seed: number,
  seedText: string,
  tokenCount: number,
  opening: readonly string[] = [],
): string[] {
  const random = new SeededRandom(hash32(seedText, seed));
  const pieces = opening.slice(0, tokenCount);
  let sentenceStart = true;
  let lastWasWord = false;
  let wordsInSentence = 0;
  let sentenceLength = 4 + random.int(8);
  while (pieces.length < tokenCount) {
    const remaining = tokenCount - pieces.length;
    if (lastWasWord && (remaining === 1 || wordsInSentence >= sentenceLength)) {
      pieces.push('.');
      sentenceStart = true;
      lastWasWord = false;
      wordsInSentence = 0;
      sentenceLength = 4 + random.int(8);
      continue;
    }
    if (lastWasWord && wordsInSentence >= 3 && remaining > 2 && random.next() < 0.12) {
      pieces.push(',');
      lastWasWord = false;
      continue;
    }
    const word = REPLY_VOCABULARY[random.int(REPLY_VOCABULARY.length)] ?? 'the';
    const spelled = sentenceStart ? capitalise(word) : word;
    pieces.push(pieces.length === 0 ? spelled : ` ${spelled}`);
    sentenceStart = false;
    lastWasWord = true;
    wordsInSentence++;
  }
  return pieces;
}

/** The seed text for choice `index`: choice 0 of an n>1 request equals the n=1 reply. */
export function choiceSeed(seed: number, index: number): number {
  return index === 0 ? seed : mixSeeds(seed, index);
}

/**
 * Applies the caller's limits to a naturally finished reply: truncation to `maxTokens`
 * (finish "length"), then cutting at the earliest stop sequence (finish "stop", the stop
 * sequence itself is not returned, a partially kept token still counts as one).
 */
export function finalizeContent(
  naturalPieces: readonly string[],
  limits: { maxTokens?: number; stop?: readonly string[] },
): GeneratedContent {
  let pieces = naturalPieces.slice();
  let finishReason: ContentFinishReason = 'stop';
  if (limits.maxTokens !== undefined && pieces.length > limits.maxTokens) {
    pieces = pieces.slice(0, limits.maxTokens);
    finishReason = 'length';
  }
  let text = pieces.join('');
  const found = earliestStop(text, limits.stop ?? []);
  const cut = found?.at;
  if (cut !== undefined) {
    const kept: string[] = [];
    let offset = 0;
    for (const piece of pieces) {
      if (offset >= cut) break;
      const end = offset + piece.length;
      kept.push(end <= cut ? piece : piece.slice(0, cut - offset));
      offset = end;
    }
    pieces = kept;
    text = text.slice(0, cut);
    finishReason = 'stop';
  }
  return { pieces, text, completionTokens: pieces.length, finishReason, ...(found ? { stopSequence: found.stop } : {}) };
}

/** The stop sequence found first in `text`, and where. */
function earliestStop(text: string, stops: readonly string[]): { at: number; stop: string } | undefined {
  let earliest: { at: number; stop: string } | undefined;
  for (const stop of stops) {
    if (stop.length === 0) continue;
    const at = text.indexOf(stop);
    if (at !== -1 && (earliest === undefined || at < earliest.at)) earliest = { at, stop };
  }
  return earliest;
}
