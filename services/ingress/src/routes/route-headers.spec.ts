import { routerv1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { parseChatRequest } from '@openrouter/openai-wire';
import { applyRouteHeaders, routeHeaders } from './chat.service';

const decision = (fields: Partial<routerv1.RouteDecision>): routerv1.RouteDecision => routerv1.RouteDecision.fromPartial({ model: 'm', provider: 'sim', deployment: 'd', attempts: 1, ...fields });

describe('routeHeaders: model lifecycle', () => {
  it('adds no lifecycle header for a model that is not deprecated', () => {
    const headers = routeHeaders(decision({}));
    expect(Object.keys(headers).filter((h) => ['deprecation', 'sunset', 'x-openrouter-model-replacement', 'x-openrouter-model-replaced'].includes(h))).toEqual([]);
  });

  it('answers a deprecated model with RFC 9745 Deprecation, RFC 8594 Sunset and the replacement', () => {
    const deprecatedAt = Date.parse('2025-07-01T00:00:00Z') / 1000;
    const retiresAt = Date.parse('2025-09-01T12:00:00Z') / 1000;
    expect(routeHeaders(decision({ deprecation: { model: 'm', deprecatedAt, retiresAt, replacement: 'n' } }))).toMatchObject({
      deprecation: `@${deprecatedAt}`,
      sunset: 'Mon, 01 Sep 2025 12:00:00 GMT',
      'x-openrouter-model-replacement': 'n',
    });
    // Only a retirement announced: Sunset alone; no replacement: no replacement header.
    const sunsetOnly = routeHeaders(decision({ deprecation: { model: 'm', deprecatedAt: 0, retiresAt, replacement: '' } }));
    expect(sunsetOnly['sunset']).toBe('Mon, 01 Sep 2025 12:00:00 GMT');
    expect(sunsetOnly['deprecation']).toBeUndefined();
    expect(sunsetOnly['x-openrouter-model-replacement']).toBeUndefined();
  });

  it('names the retired model a replacement served', () => {
    expect(routeHeaders(decision({ model: 'n', replacedModel: 'm' }))).toMatchObject({ 'x-openrouter-model': 'n', 'x-openrouter-model-replaced': 'm' });
  });
});

describe('applyRouteHeaders: x-openrouter-route', () => {
  const request = () => parseChatRequest({ model: 'm', messages: [{ role: 'user', content: 'hi' }] });

  it('puts the header\'s object in the request\'s extra fields, for the router', () => {
    const chat = request();
    applyRouteHeaders(chat, { 'x-openrouter-route': '{"sort":"price"}' });
    expect(JSON.parse(chat.extraJson)).toEqual({ route: { sort: 'price' } });
  });

  it.each(['null', '1e999', '"price"', '[{"sort":"price"}]', 'true', '{not json'])('answers a header of %s, which is no JSON object, with 400 naming the header', (value) => {
    const apply = (): void => applyRouteHeaders(request(), { 'x-openrouter-route': value });
    expect(apply).toThrow(GatewayError);
    expect(apply).toThrow(expect.objectContaining({ kind: 'bad_request', param: 'x-openrouter-route', code: 'invalid_value', message: 'The x-openrouter-route header must be a JSON object.' }));
  });
});
