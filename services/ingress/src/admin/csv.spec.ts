import { toCsv } from './csv';

/** The one data line of a CSV of `value`. */
const cell = (value: string | number): string => toCsv(['h'], [[value]]).split('\r\n')[1] ?? '';

/**
 * The cells a spreadsheet would make of `line` when it splits on `separator` and does not honour
 * quotes: the most a careless import can do with it.
 */
const naiveCells = (line: string, separator: string): string[] => line.split(separator).map((c) => c.replace(/^"/, ''));
const FORMULA_START = /^[=+\-@\t\r]/;

describe('toCsv', () => {
  it('writes a header line and one line per row, CRLF-terminated, leaving plain values and numbers as they are', () => {
    expect(toCsv(['model', 'requests', 'cost'], [['gpt-4o', 3, '0.25'], ['x', -1, '-0.5']])).toBe('model,requests,cost\r\ngpt-4o,3,0.25\r\nx,-1,-0.5\r\n');
  });

  it('quotes a field with a comma, a quote or a line break, doubling its quotes (RFC 4180)', () => {
    expect(cell('a,b')).toBe('"a,b"');
    expect(cell('say "hi"')).toBe('"say ""hi"""');
    expect(cell('two\nlines')).toBe('"two\nlines"');
  });

  it.each(['=1+2', '+1', '-A1', '@SUM(A1)', '\t=1', '\r=1', '=HYPERLINK("http://x","y")'])('neutralises a field a spreadsheet would run as a formula: %j', (value) => {
    const out = cell(value);
    expect(out.replace(/^"/, '').startsWith("'")).toBe(true);
  });

  it('quotes a field with a semicolon or a tab, the separators of other locales, so it stays one cell there', () => {
    // Opened where `;` separates (many European locales), "a;=1+2" unquoted is two cells, the second a formula.
    expect(cell('a;b')).toBe('"a;b"');
    expect(cell('a\tb')).toBe('"a\tb"');
  });

  it.each([
    ['a;=1+2', '"a;\'=1+2"'],
    ['a,=1+2', '"a,\'=1+2"'],
    ['a\t@SUM(A1)', '"a\t\'@SUM(A1)"'],
    ['x;-2+3;+A1', '"x;\'-2+3;\'+A1"'],
    ['one\n=1', '"one\n\'=1"'],
    // A quoted part: an import that honours quotes within the cell after `;` would read =1.
    ['a;"=1"', `"a;""'=1"""`],
    // Leading spaces, which an import may trim.
    ['a; =1', `"a; '=1"`],
  ])('neutralises a formula after any separator, for an import that splits on it: %j', (value, expected) => {
    expect(cell(value)).toBe(expected);
  });

  it('leaves a number after a separator as it is', () => {
    expect(cell('range;-1;2')).toBe('"range;-1;2"');
  });

  it.each([',', ';', '\t'])('leaves no cell that starts a formula, however the line is split (%j)', (separator) => {
    const hostile = ['=cmd|"/C calc"!A0', 'ok;=1+1', 'ok,=1+1', 'x;"=2";y', "a\t+3", '@x', '-x;@y,+z\t=w', 'plain', -4, '-4.5'];
    const csv = toCsv(['a', 'b'], hostile.map((v) => [v, 'ok']));
    for (const line of csv.split(/\r\n|\n|\r/)) {
      for (const c of naiveCells(line, separator)) {
        // A number stays a number (here a line's first field, which a `;` import reads with the rest of its line).
        if (/^-?\d+(\.\d+)?(,|"?$)/.test(c)) continue;
        expect(c).not.toMatch(FORMULA_START);
      }
    }
  });
});
