/**
 * A guard in front of the YAML parser for the files the daemon reads (--config, the tenants file),
 * both read again on SIGHUP. The yaml package composes collections by recursion, flow ([ ] and { })
 * and block (`- `, `? ` or `key:` at a deeper indentation) alike: a text nested a few thousand deep in
 * brackets, or about a thousand deep in block lists (`- - - … x`), is refused the first time ("Maximum
 * call stack size exceeded"), but a second parse of it in the same process aborted Node (exit 134,
 * "RegExpCompiler Allocation failed"), so a reload of such a file ended the daemon. Neither file needs
 * more than a few levels, so a text nested deeper than MAX_FLOW_DEPTH in flow collections, or in block
 * collections, is refused before the parser's composer sees it.
 */
import { CST, Parser } from 'yaml';

/** The deepest nesting of [ ] and { }, and apart from it of block lists and mappings, a config or tenants file may have (each needs at most 4). */
export const MAX_FLOW_DEPTH = 64;

/** Where a text first nests too deep (1-based), and in what: flow collections ([ ] { }) or block ones. */
export interface TooDeep {
  line: number;
  column: number;
  kind: 'flow' | 'block';
}

/**
 * Where `text` first opens its (MAX_FLOW_DEPTH + 1)th nested flow collection ([ or {), or its
 * (MAX_FLOW_DEPTH + 1)th nested block collection; undefined when it does neither. The text is read by
 * the yaml package's own Parser, which the document parser reads its syntax tree from and which keeps
 * its own stack (a text nested 100,000 deep: 0.35 s); its tree is walked here with a stack too. What
 * it calls a collection is what the composer would nest, and a bracket or `- ` in a quoted, plain or
 * block scalar, or in a comment, is text. (A scan of its own by characters had to tell quoted from
 * plain text and block scalars apart as YAML does, and where it did not, `team 's` or `5" screen` taken
 * as a quote opened, it hid the brackets after it from the count.)
 */
export function tooDeepAt(text: string): TooDeep | undefined {
  for (const document of new Parser().parse(text)) {
    const pending: Array<[CST.Token | null | undefined, number, number]> = [[document, 0, 0]];
    while (pending.length > 0) {
      const [token, flow, block] = pending.pop()!;
      if (!token) continue;
      let children: Array<CST.Token | null | undefined> = [];
      let flowDepth = flow;
      let blockDepth = block;
      if (token.type === 'document') children = [token.value];
      else if (token.type === 'flow-collection' || token.type === 'block-map' || token.type === 'block-seq') {
        const kind = token.type === 'flow-collection' ? 'flow' : 'block';
        if (kind === 'flow' ? ++flowDepth > MAX_FLOW_DEPTH : ++blockDepth > MAX_FLOW_DEPTH) return { ...lineAndColumnOf(text, token.offset), kind };
        for (const item of token.items) children.push('key' in item ? item.key : undefined, item.value);
      }
      // In reverse, so that the first one popped is the first in the text.
      for (let at = children.length - 1; at >= 0; at--) pending.push([children[at], flowDepth, blockDepth]);
    }
  }
  return undefined;
}

/** Line and column (1-based, lines ended by \n) of `offset` in `text`. */
function lineAndColumnOf(text: string, offset: number): { line: number; column: number } {
  const lineStart = text.lastIndexOf('\n', offset - 1) + 1;
  let line = 1;
  for (let at = text.indexOf('\n'); at >= 0 && at < offset; at = text.indexOf('\n', at + 1)) line++;
  return { line, column: offset - lineStart + 1 };
}
