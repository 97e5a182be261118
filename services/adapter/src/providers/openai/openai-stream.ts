import type { chatv1 } from '@openrouter/contracts';

/**
 * The usage of an OpenAI-style stream, reported once. OpenAI sends it on one last chunk with no
 * choices, but some compatible servers (Google's OpenAI-compatible endpoint, vLLM with
 * `continuous_usage_stats`) put the running total on every chunk, which a reader that adds the
 * usage of each chunk up (the ingress's metering) would count many times over. So chunks pass on
 * without their usage, and the last usage seen goes out once, at the end, as OpenAI's own usage
 * chunk: an OpenAI stream is passed on unchanged.
 *
 * A chunk without choices is passed on only as that usage chunk. Azure OpenAI opens every stream
 * with one that has neither choices nor usage (`id: ""`, only `prompt_filter_results`, since API
 * 2023-06-01-preview), and its asynchronous content filter can send more; OpenAI's clients read
 * `choices[0]` of every chunk but the usage one, and the gateway reads nothing else of them.
 */
export class StreamUsage {
  /** The chunk that carried the latest usage. */
  private latest: chatv1.ChatChunk | undefined;

  /** The chunk to pass on now, without usage; undefined for a chunk without choices (its usage, if any, held for the end). */
  accept(chunk: chatv1.ChatChunk): chatv1.ChatChunk | undefined {
    if (chunk.usage) this.latest = chunk;
    if (chunk.choices.length === 0) return undefined;
    return chunk.usage ? { ...chunk, usage: undefined } : chunk;
  }

  /** After the provider's last chunk: the usage chunk (no choices), if any chunk carried usage. */
  end(): chatv1.ChatChunk | undefined {
    return this.latest && { ...this.latest, choices: [] };
  }
}
