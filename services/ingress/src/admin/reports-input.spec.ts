import { usagev1 } from '@openrouter/contracts';
import { GatewayError } from '@openrouter/errors';
import { emptyUsageEvent, validateUsageEvent } from '@openrouter/usage';
import { parseInput } from './admin-input';
import { chargebackQuery, experimentQuery, focusQuery, invoiceParams, STORE_END_MS, usageQuery } from './reports-input';

describe('report inputs', () => {
  it('reads dates and instants with a zone', () => {
    expect(usageQuery.parse({ from: '2025-06-01', to: '2025-06-30T10:00+02:00' })).toMatchObject({ from: Date.parse('2025-06-01T00:00:00Z'), to: Date.parse('2025-06-30T08:00:00Z') });
    expect(usageQuery.parse({ from: '2024-02-29' }).from).toBe(Date.parse('2024-02-29T00:00:00Z'));
  });

  it.each([
    ['2025-02-30', 'is not a day of the calendar'],
    ['2025-02-29T12:00Z', 'is not a day of the calendar'],
    ['2025-04-31', 'is not a day of the calendar'],
    ['0070-01-01', 'must not be before 1970'],
    ['1969-12-31', 'must not be before 1970'],
    ['2025-6-1', 'must be a date (2025-06-01) or an ISO 8601 instant with a zone'],
  ])('refuses %s: %s', (from, message) => {
    const result = usageQuery.safeParse({ from });
    expect(result.success).toBe(false);
    expect(result.error?.issues.map((i) => i.message)).toEqual([message]);
  });

  it('refuses a month the store cannot hold, rather than reading it as the 1900s', () => {
    expect(chargebackQuery.parse({ month: '2025-06' }).month).toBe('2025-06');
    expect(chargebackQuery.safeParse({ month: '0070-01' }).error?.issues.map((i) => i.message)).toEqual(['must not be before 1970']);
    expect(chargebackQuery.safeParse({ month: '2025-13' }).error?.issues.map((i) => i.message)).toEqual(['must be YYYY-MM']);
  });

  it('reads a range end after the last instant the usage store can hold as that instant, for "everything up to 2100"', () => {
    expect(usageQuery.parse({ from: '2025-01-01', to: '2100-01-01' })).toMatchObject({ from: Date.parse('2025-01-01T00:00:00Z'), to: Date.parse('2056-02-19T06:28:16Z') });
    expect(experimentQuery.parse({ to: '9999-12-31' }).to).toBe(STORE_END_MS);
    // An end before it is read as it is.
    expect(usageQuery.parse({ to: '2056-02-19T06:28:15Z' }).to).toBe(STORE_END_MS - 1_000);
  });

  it('refuses a range start or a month the usage store holds nothing of, with a 400 naming the param', () => {
    const refused = (param: string, message: string) => expect.objectContaining({ kind: 'bad_request', param, code: 'invalid_value', message }) as GatewayError;
    const startMessage = 'Invalid from: must be before 2056-02-19T06:28:16.000Z: usage at or after it cannot be stored.';
    expect(() => parseInput(usageQuery, { from: '2100-01-01', to: '2101-01-01' })).toThrow(refused('from', startMessage));
    expect(() => parseInput(experimentQuery, { from: '2056-02-19T06:28:16Z' })).toThrow(refused('from', startMessage));
    expect(parseInput(usageQuery, { from: '2056-02-19T06:28:15Z' }).from).toBe(STORE_END_MS - 1_000);
    const monthMessage = 'Invalid month: must be 2056-02 or earlier: usage at or after 2056-02-19T06:28:16.000Z cannot be stored.';
    expect(() => parseInput(chargebackQuery, { month: '2056-03' })).toThrow(refused('month', monthMessage));
    expect(() => parseInput(focusQuery, { month: '2299-12' })).toThrow(refused('month', monthMessage));
    expect(() => parseInput(invoiceParams, { org: 'acme', month: '2100-01' })).toThrow(refused('month', monthMessage));
    expect(parseInput(chargebackQuery, { month: '2056-02' }).month).toBe('2056-02');
  });

  it('bounds ranges where the usage codec stops storing events', () => {
    const at = (ms: number): usagev1.UsageEvent => ({ ...emptyUsageEvent('e', ms), tenant: { orgId: 'acme', projectId: '', teamId: '', appId: '', costCenter: '', keyId: '', endUser: '', tags: {} }, status: usagev1.Status.STATUS_OK });
    expect(validateUsageEvent(at(STORE_END_MS - 1))).toBeUndefined();
    expect(validateUsageEvent(at(STORE_END_MS))).toContain('which the usage store cannot hold');
  });
});

describe('usage group_by', () => {
  it('names each dimension once, so a CSV never has two columns of one name', () => {
    expect(usageQuery.parse({ group_by: 'model, org,model,tag:env,tag:env' }).group_by).toEqual(['model', 'org', 'tag:env']);
  });
});
