/**
 * Features of a chat request for the task classifier: light-stemmed words and word pairs of the
 * system prompt and the last user turn, plus a few cues words miss (code symbols, arithmetic,
 * non-Latin scripts, a long pasted text). Only standard library code, so the training script
 * and the router compute exactly the same features.
 */

/**
 * Longest text read of the system prompt and of the user turn; what matters for the task is nearly
 * always near the start, and it bounds the work a classification does, whatever the request's size.
 */
export const MAX_CHARS = 1_500;

const STOP_WORDS: ReadonlySet<string> = new Set(
  'a an the and or but of to in on at for with by from as is are was were be been it this that these those i you me my your we our he she they them his her its do does did so if then than into about can could would should will shall may might must not no yes please just'.split(' '),
);

const CODE_CUES = /[{};]|=>|\(\)|==|!=|<\/|::|#include|\bdef |\bfunc |\bconst |\bvar |\blet |\breturn\b|\bimport |\bclass |console\.|\w\.\w+\(/;
const ARITHMETIC = /\d\s*[-+*/^=×÷]\s*\d|[a-z]\^\d|\d[a-z]\b|√|∫|∑/;
const NON_LATIN = /[\p{Script=Cyrillic}\p{Script=Hebrew}\p{Script=Arabic}\p{Script=Devanagari}\p{Script=Thai}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Han}\p{Script=Hangul}]/u;
const WORD = /[a-z\u00c0-\u024f]+|\d+/g;

const LANGUAGES =
  'english|spanish|french|german|italian|portuguese|dutch|swedish|norwegian|danish|finnish|polish|czech|greek|turkish|russian|ukrainian|arabic|hebrew|hindi|bengali|urdu|chinese|mandarin|cantonese|japanese|korean|vietnamese|thai|indonesian|malay|latin|swahili';

/**
 * Phrases that name a task outright; each match adds its cue, which the model weighs like any
 * feature. A gap inside a phrase is a bounded lazy `[^\n]{0,80}?`, never `.*`: an unbounded gap
 * makes a failing match quadratic in the text's length.
 */
export const TASK_CUES: ReadonlyArray<readonly [string, RegExp]> = [
  ['code', /\b(python|javascript|typescript|java|kotlin|swift|rust|golang|c\+\+|c#|ruby|php|sql|bash|shell|regex|regular expression|function|method|class|compile|compiler|bug|debug|stack trace|exception|script|api|endpoint|docker|kubernetes|terraform|git|unit tests?|algorithm|implement|refactor|program|code|snippet|library|framework|runtime|segfault|segmentation fault|npm|github actions|workflow|data race|goroutine|concurrency|concurrent writes)\b/],
  ['math', /\b(solve|equation|integral|derivative|differentiate|probability|calculate|compute|sum of|prime|matrix|determinant|eigen\w*|area|volume|percent|fraction|algebra|geometry|theorem|prove|polynomial|factor|logarithm|log base|radius|angle|average speed|interest|times|multiply|divided by)\b/],
  ['reasoning', /\b(puzzle|riddle|logic|logical|deduce|deduction|conclude|conclusion|infer|step by step|trade-?offs?|argument|valid|assumption|weigh|pros and cons|reason(ing)?|explain why|which is heavier|how many [^\n]{0,80}? does)\b/],
  ['creative', /\b(poem|poetry|story|stories|haiku|song|lyrics|limerick|sonnet|fiction|novel|character|roleplay|role-play|pretend|imagine|persona|slogan|tagline|blog post|essay|speech|toast|letter|screenplay|monologue|fable|myth|rap|compose|brainstorm|creative|act as|embody|caption|ad script|email|the role of)\b/],
  ['extraction', /\b(extract|parse|pull out|pull the|identify (all|every|the)|list (all|every)|entities|named entit\w*|json|fields?|key-value|csv|table|label each|return [^\n]{0,80}? as)\b/],
  ['summarization', /\b(summari[sz]e|summary|summaries|tl;?dr|condense|key points|gist|recap|overview|shorten|synopsis|abstract|takeaways|boil [^\n]{0,80}? down|digest)\b/],
  ['translation', new RegExp(`\\b(translate|translation|translator|traduce|traduis|traduire|übersetze|how do (you|i) say|in (${LANGUAGES})\\b|(into|to|from) (${LANGUAGES}))`)],
  ['chat', /^(hi|hello|hey|good (morning|evening|afternoon)|thanks|thank you)\b|\b(recommend|tips|advice|should i|how do i|what is the best|fun fact|who (won|painted|is|was))\b/],
];

function stem(word: string): string {
  if (word.length > 5 && word.endsWith('ing')) return word.slice(0, -3);
  if (word.length > 4 && word.endsWith('ed')) return word.slice(0, -2);
  if (word.length > 4 && word.endsWith('es')) return word.slice(0, -2);
  if (word.length > 3 && word.endsWith('s') && !word.endsWith('ss')) return word.slice(0, -1);
  return word;
}

function addWords(lower: string, prefix: string, visit: (feature: string) => void): void {
  let previous = '';
  WORD.lastIndex = 0;
  for (let match = WORD.exec(lower); match; match = WORD.exec(lower)) {
    const raw = match[0];
    if (raw.length === 1 && raw !== 'x') continue;
    // A match is all digits or has none: its first character tells which.
    const first = raw.charCodeAt(0);
    if (first >= 48 && first <= 57) {
      visit(`${prefix}#num`);
      previous = '';
      continue;
    }
    if (STOP_WORDS.has(raw)) {
      previous = '';
      continue;
    }
    const word = stem(raw);
    visit(prefix + word);
    if (word.length > 6) visit(`${prefix}~${word.slice(0, 6)}`);
    if (previous) visit(`${prefix}${previous}_${word}`);
    previous = word;
  }
}

function cut(text: string): string {
  return text.length > MAX_CHARS ? text.slice(0, MAX_CHARS) : text;
}

/** The features of one request; `system` may be empty. */
export function taskFeatures(system: string, user: string): string[] {
  const out: string[] = [];
  visitTaskFeatures(system, user, (feature) => out.push(feature));
  return out;
}

/**
 * Hands each feature of one request to `visit`, in `taskFeatures`' order (repeats included): the
 * classifier's hot path, which builds no list.
 */
export function visitTaskFeatures(system: string, user: string, visit: (feature: string) => void): void {
  const text = cut(user);
  // The system prompt is read as far as the user turn is: its words and its cues alike.
  const systemText = cut(system);
  const lower = text.toLowerCase();
  const lowerSystem = systemText ? systemText.toLowerCase() : '';
  addWords(lower, '', visit);
  if (lowerSystem) addWords(lowerSystem, 'sys:', visit);
  for (const [task, cue] of TASK_CUES) if (cue.test(lower)) visit(`#cue:${task}`);
  if (lowerSystem) for (const [task, cue] of TASK_CUES) if (cue.test(lowerSystem)) visit(`#sys-cue:${task}`);
  if (CODE_CUES.test(text)) visit('#code-symbols');
  if (ARITHMETIC.test(text)) visit('#arithmetic');
  if (NON_LATIN.test(text)) visit('#non-latin');
  if (user.length > 600) visit('#long-input');
  if (/:\s*\S/.test(text) && text.length - text.indexOf(':') > 80) visit('#payload');
}
