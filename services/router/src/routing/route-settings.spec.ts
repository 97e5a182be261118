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
    [{ route: { nope: 1 } }, 'route.nope'],
    [{ models: [] }, 'models'],
    [{ models: 'a' }, 'models'],
    [{ models: ['a', ''] }, 'models[1]'],
    [{ models: ['a', 5] }, 'models[1]'],
  ])('rejects %j naming %s', (extra, param) => {
    try {
      takeRequestControls(JSON.stringify(extra));
      throw new Error('accepted');
    } catch (error) {
      expect(error).toBeInstanceOf(GatewayError);
      expect(error).toMatchObject({ kind: 'bad_request', param });
    }
  });

  it.each([
    [{ models: ['a', ''] }, 'invalid_value', "Invalid value for 'models[1]': expected a non-empty string, but got an empty string instead."],
    [{ models: [7] }, 'invalid_type', "Invalid type for 'models[0]': expected a string, but got an integer instead."],
    [{ route: { strategy: 'fastest' } }, 'invalid_value', "Invalid value for 'route.strategy': expected 'cost', 'latency', 'quality' or 'balanced', but got 'fastest' instead."],
    [{ route: { nope: 1 } }, 'unknown_parameter', "Unknown parameter: 'route.nope'."],
  ])('explains %j the way the request body is explained', (extra, code, message) => {
    expect(() => takeRequestControls(JSON.stringify(extra))).toThrow(expect.objectContaining({ code, message }) as Error);
  });
});
