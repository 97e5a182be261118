import type { Migration } from '../migration';

/**
 * The images a request made (a generation's or an edit's answer), priced each at the model's
 * `perImage` price as DALL·E bills them. Rows written before have none.
 */
export const usageEventImages: Migration = {
  version: 10,
  name: 'usage_event_images',
  statements: [`ALTER TABLE {db:Identifier}.usage_events ADD COLUMN IF NOT EXISTS images UInt32 DEFAULT 0 AFTER image_prompt_tokens`],
};
