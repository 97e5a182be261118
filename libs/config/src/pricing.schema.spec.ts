import { parseConfig } from './config-loader';
import { isCalendarDay, pricingSchema } from './pricing.schema';
import { MINIMAL_CONFIG } from './minimal-config.testing';

const minimal = MINIMAL_CONFIG;

describe('price change dates', () => {
  it('refuses a day the calendar does not have, which Date.parse would roll into the next month', () => {
    for (const from of ['2025-02-29', '2025-06-31', '2025-04-31T00:00:00Z', '2025-02-30T12:00:00+02:00', '2025-13-01', '2025-00-10', '2025-01-00']) {
      expect(pricingSchema.safeParse({ input: '1', changes: [{ from, input: '2' }] }).success).toBe(false);
    }
    for (const from of ['2024-02-29', '2025-06-30', '2025-12-31T23:59:59Z', '2000-02-29T00:00:00.000+01:00']) {
      expect(pricingSchema.safeParse({ input: '1', changes: [{ from, input: '2' }] }).success).toBe(true);
    }
    expect(isCalendarDay('2024-02-29')).toBe(true);
    expect(isCalendarDay('2100-02-29')).toBe(false);
  });

  it('is refused at load with the path of the change, a deployment override included', () => {
    const models = [
      {
        id: 'm',
        deployments: [{ id: 'd', provider: 'sim', model: 'up' }],
        pricing: { input: '1', changes: [{ from: '2025-02-29', input: '2' }], deployments: { d: { changes: [{ from: '2025-06-31', input: '3' }] } } },
      },
    ];
    expect(() => parseConfig({ ...minimal, models }, {})).toThrow(
      /models\[0\]\.pricing\.changes\[0\]\.from: is not a day of the calendar[\s\S]*models\[0\]\.pricing\.deployments\.d\.changes\[0\]\.from: is not a day of the calendar/,
    );
  });
});
