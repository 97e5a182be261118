/**
 * RFC 4180 CSV: a header line, then one line per row, safe to open in a spreadsheet whatever
 * separator its locale splits on (OWASP, CSV injection):
 * - a field with a quote, a line break or a separator of any kind (`,`, `;` or tab) is quoted,
 *   its quotes doubled, so it stays one cell where `;` or tab separates too;
 * - a formula start (`=`, `+`, `-`, `@`) is prefixed with `'` at the start of the field and after
 *   every separator or line break in it (past any quotes and spaces), so even an import that
 *   splits a quoted field, or reads quotes within a cell, finds no formula; a field starting with
 *   a tab or carriage return is prefixed too. A number (`-1.5`) is left as it is.
 */
export function toCsv(header: readonly string[], rows: ReadonlyArray<ReadonlyArray<string | number>>): string {
  return [header, ...rows].map((row) => row.map(field).join(',')).join('\r\n') + '\r\n';
}

/** Each part of a field that a separator or line break starts: its lead of quotes and spaces, and what follows up to the next one when it starts a formula. */
const FORMULA_PART = /(^|[,;\t\r\n])([ "]*)([=+\-@][^,;\t\r\n]*)/g;
const NUMBER = /^-?\d+(\.\d+)?$/;

function field(value: string | number): string {
  let text = String(value).replace(FORMULA_PART, (part: string, separator: string, lead: string, rest: string) => (NUMBER.test(rest) ? part : `${separator}${lead}'${rest}`));
  if (/^[\t\r]/.test(text)) text = `'${text}`;
  return /[",;\t\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}
