/**
 * A guard in front of the YAML parser for the files the daemon reads (--config, the tenants file),
 * both read again on SIGHUP. The yaml package parses flow collections ([ ] and { }) by recursion: a
 * text nested a few thousand deep is refused the first time ("Maximum call stack size exceeded"), but
 * a second parse of it in the same process aborted Node (exit 134, "RegExpCompiler Allocation failed"),
 * so a reload of such a file ended the daemon. Neither file needs more than a few levels, so a text
 * nested deeper than MAX_FLOW_DEPTH is refused before the parser sees it.
 */
import { CST, Lexer } from 'yaml';

/** The deepest nesting of [ ] and { } a config or tenants file may have (each needs at most 4). */
export const MAX_FLOW_DEPTH = 64;

/**
 * Where `text` first opens its (MAX_FLOW_DEPTH + 1)th nested [ or {, 1-based; undefined when it never does.
 * The text is read by the yaml package's own Lexer, which the parser reads its tokens from and which
 * keeps no stack (a text nested 100,000 deep: 0.2 s): what it calls a flow collection's start is what
 * the parser would nest, and a bracket in a quoted, plain or block scalar, or in a comment, is text.
 * A scan of its own by characters had to tell quoted from plain text and block scalars apart as YAML
 * does, and where it did not (`team 's` or `5" screen` taken as a quote opened, which the parser reads
 * as plain text; an unmatched quote in a block scalar) it hid the brackets after it from the count.
 */
export function tooDeepFlowAt(text: string): { line: number; column: number } | undefined {
  let depth = 0;
  let offset = 0;
  for (const token of new Lexer().lex(text)) {
    // A flow collection's start or end is a token of its own, its one character (CST.tokenType's flow-seq-start etc.).
    if (token === '[' || token === '{') {
      if (++depth > MAX_FLOW_DEPTH) return lineAndColumnOf(text, offset);
    } else if ((token === ']' || token === '}') && depth > 0) {
      depth--;
    }
    // The lexer's control tokens (a document, a scalar or a flow's end begins) are not in the text.
    if (!CONTROL_TOKENS.has(token)) offset += token.length;
  }
  return undefined;
}

/** The tokens yaml's Lexer gives that stand for no text: DOCUMENT, FLOW_END and SCALAR (CST.DOCUMENT etc.). */
const CONTROL_TOKENS = new Set<string>([CST.DOCUMENT, CST.FLOW_END, CST.SCALAR]);

/** Line and column (1-based, lines ended by \n) of `offset` in `text`. */
function lineAndColumnOf(text: string, offset: number): { line: number; column: number } {
  const lineStart = text.lastIndexOf('\n', offset - 1) + 1;
  let line = 1;
  for (let at = text.indexOf('\n'); at >= 0 && at < offset; at = text.indexOf('\n', at + 1)) line++;
  return { line, column: offset - lineStart + 1 };
}
