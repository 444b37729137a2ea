/**
 * A guard in front of the YAML parser for the files the daemon reads (--config, the tenants file),
 * both read again on SIGHUP. The yaml package parses flow collections ([ ] and { }) by recursion: a
 * text nested a few thousand deep is refused the first time ("Maximum call stack size exceeded"), but
 * a second parse of it in the same process aborted Node (exit 134, "RegExpCompiler Allocation failed"),
 * so a reload of such a file ended the daemon. Neither file needs more than a few levels, so a text
 * nested deeper than MAX_FLOW_DEPTH is refused before the parser sees it.
 */

/** The deepest nesting of [ ] and { } a config or tenants file may have (each needs at most 4). */
export const MAX_FLOW_DEPTH = 64;

/** Where `text` first opens its (MAX_FLOW_DEPTH + 1)th nested [ or {, 1-based; undefined when it never does. */
export function tooDeepFlowAt(text: string): { line: number; column: number } | undefined {
  let depth = 0;
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '\n') {
      line++;
      lineStart = i + 1;
    } else if (c === '#' && (i === lineStart || text[i - 1] === ' ' || text[i - 1] === '\t')) {
      // A comment, to the end of the line.
      while (i + 1 < text.length && text[i + 1] !== '\n') i++;
    } else if ((c === '"' || c === "'") && startsScalar(text, i, lineStart)) {
      // A quoted scalar: its brackets are text. '' in single quotes and \x in double quotes are escapes.
      for (i++; i < text.length; i++) {
        const d = text[i];
        if (d === '\n') {
          line++;
          lineStart = i + 1;
        } else if (c === '"' && d === '\\') {
          if (text[++i] === '\n') {
            line++;
            lineStart = i + 1;
          }
        } else if (d === c) {
          if (c === "'" && text[i + 1] === "'") i++;
          else break;
        }
      }
    } else if (c === '[' || c === '{') {
      if (++depth > MAX_FLOW_DEPTH) return { line, column: i - lineStart + 1 };
    } else if ((c === ']' || c === '}') && depth > 0) {
      depth--;
    }
  }
  return undefined;
}

/** Whether a quote at `i` opens a quoted scalar (at the start of a line or after a space, tab, [ { , or :), not sits inside plain text (O'Brien). */
function startsScalar(text: string, i: number, lineStart: number): boolean {
  return i === lineStart || ' \t[{,:'.includes(text[i - 1]);
}
