/** Plain-text tables for tensormemctl. */

/**
 * Characters a cell may not hand to the terminal as they are: C0 controls (newline, ESC, BEL, ...),
 * DEL, C1 controls (U+009B is a one-character CSI to some terminals), and the Unicode bidirectional
 * controls that reorder what follows them on the line. Cells hold client-chosen strings (another
 * tenant's client_name, labels, tenant names in open mode): as they were, a client_name of
 * "\x1b[2J..." cleared an operator's screen and set its title, and one with a newline printed rows of
 * leases that do not exist.
 */
const UNSAFE_FOR_TERMINAL = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\\]/g;

// A backslash is doubled, so that a name holding the text \x1b reads apart from one that held an ESC.
const NAMED_ESCAPES: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t', '\\': '\\\\' };

/** `text` with every UNSAFE_FOR_TERMINAL character written as an escape (\n, \x1b, \u202e, \\). */
export function terminalSafe(text: string): string {
  return text.replace(UNSAFE_FOR_TERMINAL, (char) => {
    const code = char.charCodeAt(0);
    return NAMED_ESCAPES[char] ?? (code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`);
  });
}

/**
 * Columns padded to their widest cell, two spaces apart. `wrap` gives columns a most width: a longer
 * cell goes on over continuation lines of that width (the other columns blank there), so that one long
 * value (a library's load error in `config`) does not widen every line of the table.
 */
export function renderTable(headers: string[], rows: Array<Array<string | number>>, wrap: Record<number, number> = {}): string {
  const lines = [headers, ...rows.map((row) => row.map((cell) => terminalSafe(String(cell))))].flatMap((row) => wrapped(row, wrap));
  const widths = headers.map((_, column) => Math.max(...lines.map((line) => line[column].length)));
  return lines.map((line) => line.map((cell, column) => cell.padEnd(widths[column])).join('  ').trimEnd()).join('\n');
}

/** `row` as the lines it takes when its cells in `wrap`'s columns are cut to those widths. */
function wrapped(row: string[], wrap: Record<number, number>): string[][] {
  const pieces = row.map((cell, column) => {
    const width = wrap[column];
    if (width === undefined || cell.length <= width) return [cell];
    return Array.from({ length: Math.ceil(cell.length / width) }, (_, at) => cell.slice(at * width, (at + 1) * width));
  });
  const count = Math.max(...pieces.map((piece) => piece.length));
  return Array.from({ length: count }, (_, line) => pieces.map((piece) => piece[line] ?? ''));
}
