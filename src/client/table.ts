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

export function renderTable(headers: string[], rows: Array<Array<string | number>>): string {
  const cells = [headers, ...rows.map((row) => row.map((cell) => terminalSafe(String(cell))))];
  const widths = headers.map((_, column) => Math.max(...cells.map((row) => row[column].length)));
  return cells.map((row) => row.map((cell, column) => cell.padEnd(widths[column])).join('  ').trimEnd()).join('\n');
}
