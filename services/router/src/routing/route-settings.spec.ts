import { GatewayError } from '@openrouter/errors';
import { takeRequestControls } from './route-settings';

describe('request routing controls', () => {
  it('takes models and route out of the extra fields and keeps the rest for the provider', () => {
    const { controls, extraJson } = takeRequestControls(JSON.stringify({ models: ['a', 'b'], route: { strategy: 'cost', min_quality: 0.7, max_price: { prompt: '1.5' }, providers: { only: ['x'] } }, audio: { v: 1 } }));
    expect(controls).toEqual({ models: ['a', 'b'], route: { strategy: 'cost', minQuality: 0.7, maxPrice: { prompt: '1.5' }, providers: { only: ['x'] } } });
    expect(JSON.parse(extraJson)).toEqual({ audio: { v: 1 } });
    expect(takeRequestControls(JSON.stringify({ route: { latency_sensitive: true } })).extraJson).toBe('');
    expect(takeRequestControls('').controls).toEqual({ route: {} });
  });

  it.each([
    [{ route: { strategy: 'fastest' } }, 'route.strategy'],
    [{ route: { min_quality: 2 } }, 'route.min_quality'],
    [{ route: { max_price: '-1' } }, 'route.max_price'],
    [{ route: { providers: { only: 'x' } } }, 'route.providers.only'],
    [{ route: { nope: 1 } }, 'route'],
    [{ models: [] }, 'models'],
    [{ models: 'a' }, 'models'],
  ])('rejects %j naming %s', (extra, param) => {
    try {
      takeRequestControls(JSON.stringify(extra));
      throw new Error('accepted');
    } catch (error) {
      expect(error).toBeInstanceOf(GatewayError);
      expect(error).toMatchObject({ kind: 'bad_request', param });
    }
  });
});
