import { classifyModeration, FLAG_THRESHOLD, MODERATION_CATEGORIES, MODERATION_TRIGGERS } from './moderation-classifier';

const text = (t: string) => ({ text: t, hasText: true, imageUrls: [] });

describe('classifyModeration', () => {
  it('scores every category low for harmless text, and flags nothing', () => {
    const verdict = classifyModeration(1, text('What a lovely day for a picnic.'));
    expect(Object.keys(verdict.category_scores)).toEqual([...MODERATION_CATEGORIES]);
    expect(Object.values(verdict.category_scores).every((score) => score > 0 && score < 0.001)).toBe(true);
    expect(Object.values(verdict.categories).every((flag) => !flag)).toBe(true);
    expect(verdict.flagged).toBe(false);
  });

  it.each(MODERATION_CATEGORIES.map((category) => [category, MODERATION_TRIGGERS[category][0] ?? '']))('flags %s for "%s", whatever its case, and its parent with it', (category, word) => {
    const verdict = classifyModeration(1, text(`Something about ${word.toUpperCase()}ing here.`));
    expect(verdict.category_scores[category]).toBeGreaterThanOrEqual(0.9);
    expect(verdict.categories[category]).toBe(true);
    expect(verdict.categories[category.split('/')[0] as typeof category]).toBe(true);
    expect(verdict.flagged).toBe(true);
  });

  it('matches a trigger at the start of a word only', () => {
    expect(classifyModeration(1, text('She has the skill.')).categories.violence).toBe(false);
    expect(classifyModeration(1, text('The killer left.')).categories.violence).toBe(true);
  });

  it('is the same for the same seed and input, and differs in its low scores for another seed', () => {
    expect(classifyModeration(3, text('hello'))).toEqual(classifyModeration(3, text('hello')));
    expect(classifyModeration(4, text('hello')).category_scores.hate).not.toBe(classifyModeration(3, text('hello')).category_scores.hate);
    expect(FLAG_THRESHOLD).toBe(0.5);
  });

  it('judges images, by a trigger in their URL, only on the categories OpenAI judges images for', () => {
    const verdict = classifyModeration(1, { text: '', hasText: false, imageUrls: ['https://example.com/gore-and-hate.png'] });
    expect(verdict.categories['violence/graphic']).toBe(true);
    expect(verdict.categories.hate).toBe(false);
    expect(verdict.appliedInputTypes.violence).toEqual(['image']);
    expect(verdict.appliedInputTypes.hate).toEqual([]);
    const both = classifyModeration(1, { text: 'look', hasText: true, imageUrls: ['data:image/png;base64,AA=='] });
    expect(both.appliedInputTypes.sexual).toEqual(['text', 'image']);
    expect(both.appliedInputTypes.harassment).toEqual(['text']);
  });
});
