import type { adapterv1, chatv1, routerv1 } from '@openrouter/contracts';

/**
 * A speech answer as an adapter streams it: its audio in `pieces` pieces (the first with the media
 * type), then a last piece without audio carrying the usage and the characters.
 */
export async function* speechStream(answer: chatv1.SpeechResponse, pieces = 1): AsyncGenerator<adapterv1.SpeakResponse> {
  const audio = Buffer.from(answer.audio);
  const size = Math.ceil(audio.length / pieces);
  for (let i = 0; i < pieces; i++) yield { response: { audio: audio.subarray(i * size, (i + 1) * size), contentType: i === 0 ? answer.contentType : '', characters: 0 } };
  yield { response: { audio: Buffer.alloc(0), contentType: '', usage: answer.usage, characters: answer.characters } };
}

/** The router's speech stream read to its end: the decision (on the first message), the answer its pieces make up, and the messages. */
export async function readSpeech(stream: AsyncIterable<routerv1.SpeakResponse>): Promise<{ decision: routerv1.RouteDecision | undefined; response: chatv1.SpeechResponse; messages: routerv1.SpeakResponse[] }> {
  const messages: routerv1.SpeakResponse[] = [];
  for await (const message of stream) messages.push(message);
  const pieces = messages.flatMap((m) => (m.response ? [m.response] : []));
  const last = pieces.findLast((p) => p.usage !== undefined || p.characters > 0);
  return {
    decision: messages[0]?.decision,
    response: { audio: Buffer.concat(pieces.map((p) => Buffer.from(p.audio))), contentType: pieces[0]?.contentType ?? '', usage: last?.usage, characters: last?.characters ?? 0 },
    messages,
  };
}
