/**
 * A guard in front of the YAML parser for the files the daemon reads (--config, the tenants file),
 * both read again on SIGHUP. The yaml package composes collections by recursion, flow ([ ] and { })
 * and block (`- `, `? ` or `key:` at a deeper indentation) alike: a text nested a few thousand deep in
 * brackets, or about a thousand deep in block lists (`- - - … x`), is refused the first time ("Maximum
 * call stack size exceeded"), but a second parse of it in the same process aborted Node (exit 134,
 * "RegExpCompiler Allocation failed"), so a reload of such a file ended the daemon. Neither file needs
 * more than a few levels, so a text nested deeper than MAX_FLOW_DEPTH in flow collections, or in block
 * collections, is refused before the parser's composer sees it. parseDocumentGuarded reads a text once
 * for both: the guard walks the Parser's tokens, and the composer makes the document of the same tokens.
 */
import { CST, Composer, Document, DocumentOptions, LineCounter, ParseOptions, Parser, SchemaOptions, YAMLError, YAMLParseError } from 'yaml';

/** The deepest nesting of [ ] and { }, and apart from it of block lists and mappings, a config or tenants file may have (each needs at most 4). */
export const MAX_FLOW_DEPTH = 64;

/** Where a text first nests too deep (1-based), and in what: flow collections ([ ] { }) or block ones. */
export interface TooDeep {
  line: number;
  column: number;
  kind: 'flow' | 'block';
}

/** The text's one YAML document, or where it nests too deep (no document is composed then); `lines` counts the text's lines, for its nodes' ranges. */
export type GuardedDocument = { deep: TooDeep; document?: undefined; lines?: undefined } | { deep?: undefined; document: Document.Parsed; lines: LineCounter };

/**
 * `text` read once by the yaml package's Parser, its tokens walked by the nesting guard (tooDeepIn), and
 * only where they nest no deeper than MAX_FLOW_DEPTH composed into the document parseDocument(text,
 * options) returns: its nodes, errors (a second document is a MULTIPLE_DOCS error) and warnings, with
 * their messages and linePos as parseDocument prettifies them. The Parser pass is most of a parse (a
 * 10,000-tenant file: 0.8 of 1.1 s), and the guard and the document each made one before.
 */
export function parseDocumentGuarded(text: string, options: ParseOptions & DocumentOptions & SchemaOptions = {}): GuardedDocument {
  const lines = options.lineCounter ?? new LineCounter();
  const tokens = Array.from(new Parser(lines.addNewLine).parse(text));
  const deep = tooDeepIn(tokens, text);
  if (deep) return { deep };
  let document: Document.Parsed | undefined;
  // As parseDocument (yaml 2.9 public-api.js): compose(…, true, …) ends with a document at the latest.
  for (const next of new Composer(options).compose(tokens, true, text.length)) {
    if (!document) {
      document = next;
    } else if (document.options.logLevel !== 'silent') {
      document.errors.push(new YAMLParseError([next.range[0], next.range[1]], 'MULTIPLE_DOCS', 'Source contains multiple documents; please use YAML.parseAllDocuments()'));
      break;
    }
  }
  if (options.prettyErrors !== false) for (const error of [...document!.errors, ...document!.warnings]) prettify(error, text, lines);
  return { document: document!, lines };
}

type LinePos = ReturnType<LineCounter['linePos']>;

/**
 * What parseDocument adds to an error or warning (yaml 2.9 errors.js prettifyError, which the package
 * does not export): linePos, and " at line L, column C" followed by the line (and the one before when
 * the error is at the start of its line), cut to 80 characters, with ^ under the place. Tenants files
 * report the line and the message's first line, config files the whole message; the tests compare both
 * with parseDocument's. Adapted from the yaml package's prettifyError: Copyright Eemeli Aro
 * <eemeli@gmail.com>, ISC License (node_modules/yaml/LICENSE).
 */
function prettify(error: YAMLError, text: string, lines: LineCounter): void {
  if (error.pos[0] === -1) return;
  error.linePos = error.pos.map((offset) => lines.linePos(offset)) as [LinePos] | [LinePos, LinePos];
  const { line, col } = error.linePos[0];
  error.message += ` at line ${line}, column ${col}`;
  let pointAt = col - 1;
  let quoted = text.substring(lines.lineStarts[line - 1], lines.lineStarts[line]).replace(/[\n\r]+$/, '');
  if (pointAt >= 60 && quoted.length > 80) {
    const cut = Math.min(pointAt - 39, quoted.length - 79);
    quoted = '…' + quoted.substring(cut);
    pointAt -= cut - 1;
  }
  if (quoted.length > 80) quoted = quoted.substring(0, 79) + '…';
  if (line > 1 && /^ *$/.test(quoted.substring(0, pointAt))) {
    let previous = text.substring(lines.lineStarts[line - 2], lines.lineStarts[line - 1]);
    if (previous.length > 80) previous = previous.substring(0, 79) + '…\n';
    quoted = previous + quoted;
  }
  if (/[^ ]/.test(quoted)) {
    let count = 1;
    const end = error.linePos[1];
    if (end?.line === line && end.col > col) count = Math.max(1, Math.min(end.col - col, 80 - pointAt));
    error.message += `:\n\n${quoted}\n${' '.repeat(pointAt)}${'^'.repeat(count)}\n`;
  }
}

/**
 * Where the Parser's `tokens` of `text` first open its (MAX_FLOW_DEPTH + 1)th nested flow collection ([ or {), or its
 * (MAX_FLOW_DEPTH + 1)th nested block collection; undefined when it does neither. The tokens are the
 * yaml package's own Parser's, which the document parser reads its syntax tree from and which keeps
 * its own stack (a text nested 100,000 deep: 0.35 s); its tree is walked here with a stack too. What
 * it calls a collection is what the composer would nest, and a bracket or `- ` in a quoted, plain or
 * block scalar, or in a comment, is text. (A scan of its own by characters had to tell quoted from
 * plain text and block scalars apart as YAML does, and where it did not, `team 's` or `5" screen` taken
 * as a quote opened, it hid the brackets after it from the count.)
 */
function tooDeepIn(tokens: Iterable<CST.Token>, text: string): TooDeep | undefined {
  for (const document of tokens) {
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
