import { hash32 } from './seeded-random';

/** OpenAI's moderation categories, in the order its answers list them. */
export const MODERATION_CATEGORIES = [
  'harassment',
  'harassment/threatening',
  'hate',
  'hate/threatening',
  'illicit',
  'illicit/violent',
  'self-harm',
  'self-harm/intent',
  'self-harm/instructions',
  'sexual',
  'sexual/minors',
  'violence',
  'violence/graphic',
] as const;

export type ModerationCategory = (typeof MODERATION_CATEGORIES)[number];

/** The categories OpenAI's omni models judge images for as well as text. */
export const IMAGE_CATEGORIES: ReadonlySet<ModerationCategory> = new Set(['self-harm', 'self-harm/intent', 'self-harm/instructions', 'sexual', 'violence', 'violence/graphic']);

/**
 * Words that make a category score high: each matches at the start of a word, any case ("kill"
 * also matches "Killing"). A hit in a subcategory (`violence/graphic`) raises its parent too.
 */
export const MODERATION_TRIGGERS: Readonly<Record<ModerationCategory, readonly string[]>> = {
  harassment: ['idiot', 'loser', 'moron'],
  'harassment/threatening': ['watch your back', 'i will find you'],
  hate: ['hate'],
  'hate/threatening': ['exterminate'],
  illicit: ['steal', 'shoplift', 'counterfeit'],
  'illicit/violent': ['build a bomb', 'pipe bomb'],
  'self-harm': ['hurt myself', 'self-harm'],
  'self-harm/intent': ['end my life', 'want to die'],
  'self-harm/instructions': ['how to cut myself'],
  sexual: ['explicit', 'nsfw'],
  'sexual/minors': ['underage'],
  violence: ['kill', 'murder', 'attack'],
  'violence/graphic': ['gore', 'dismember'],
};

/** What one input holds: its text (parts' texts joined) and its images' URLs. */
export interface ModerationInput {
  text: string;
  hasText: boolean;
  imageUrls: readonly string[];
}

export interface ModerationVerdict {
  flagged: boolean;
  categories: Record<ModerationCategory, boolean>;
  category_scores: Record<ModerationCategory, number>;
  /** Which kinds of input each category was judged on. */
  appliedInputTypes: Record<ModerationCategory, ('text' | 'image')[]>;
}

export const FLAG_THRESHOLD = 0.5;

const PATTERNS = new Map<ModerationCategory, RegExp>(
  MODERATION_CATEGORIES.map((category) => [category, new RegExp(`\\b(?:${MODERATION_TRIGGERS[category].map(escape).join('|')})`, 'i')]),
);

function escape(word: string): string {
  return word.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Scores one input per category, deterministically for a seed: a trigger word in its text (or,
 * for the categories judged on images, in an image's URL: `https://…/gore.png`) scores 0.90–0.99,
 * anything else below 0.001. A category is true at `FLAG_THRESHOLD` and above.
 */
export function classifyModeration(seed: number, input: ModerationInput): ModerationVerdict {
  const hit = new Set<ModerationCategory>();
  for (const category of MODERATION_CATEGORIES) {
    const pattern = PATTERNS.get(category);
    const judged = [input.text, ...(IMAGE_CATEGORIES.has(category) ? input.imageUrls : [])];
    if (pattern && judged.some((text) => pattern.test(text))) {
      hit.add(category);
      const parent = category.split('/')[0] as ModerationCategory;
      hit.add(parent);
    }
  }
  const key = `${input.text}\u0000${input.imageUrls.join('\u0000')}`;
  const categories = {} as Record<ModerationCategory, boolean>;
  const scores = {} as Record<ModerationCategory, number>;
  const applied = {} as Record<ModerationCategory, ('text' | 'image')[]>;
  for (const category of MODERATION_CATEGORIES) {
    const jitter = hash32(`${category}\u0000${key}`, seed) / 4294967296;
    const score = hit.has(category) ? 0.9 + jitter * 0.09 : 0.00001 + jitter * 0.00099;
    scores[category] = score;
    categories[category] = score >= FLAG_THRESHOLD;
    const types: ('text' | 'image')[] = input.hasText ? ['text'] : [];
    if (input.imageUrls.length > 0 && IMAGE_CATEGORIES.has(category)) types.push('image');
    applied[category] = types;
  }
  return { flagged: Object.values(categories).some(Boolean), categories, category_scores: scores, appliedInputTypes: applied };
}
