/**
 * Operators alert on the daemon's log events, so each one the code can log is a row of the README's
 * "Log events" table, with the level(s) it is logged at, and each row names an event the code logs.
 *
 * The names are read from src by the TypeScript compiler, not copied here: every `event` property of an
 * object literal (the fields of a log call, or those built for a helper that logs them later, as
 * rateLimitedWarning's and SummarizedLog's lines are). Its value is a string, or an expression whose
 * type lists the names: a template whose parts are unions of string literals (`lease_${reason}`, each
 * LeaseCloseReason) is expanded to every name it makes. A value whose names cannot be listed fails, so
 * a name built some other way cannot slip past.
 *
 * The level is read where the fields are the argument of the log call itself (`log.warn({...})`,
 * `log[repeated ? 'debug' : 'warn']({...})`: the key's type); fields a helper logs leave it unknown,
 * and only the levels known are checked against the row.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = join(__dirname, '..', '..');
const SRC = join(ROOT, 'src');
const LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;
const SECTION = '### Log events';

interface EventSite {
  name: string;
  /** Undefined where a helper logs the fields (its level is not read here). */
  levels: string[] | undefined;
  where: string;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [path] : [];
  });
}

/** The string literal values `type` stands for, or undefined when it is not (a union of) string literals. */
function literalValues(type: ts.Type): string[] | undefined {
  const members = type.isUnion() ? type.types : [type];
  const values = members.map((member) => (member.isStringLiteral() ? member.value : undefined));
  return values.every((value) => value !== undefined) ? (values as string[]) : undefined;
}

/** Every string `expression` may be, or undefined when they cannot be listed. */
function possibleStrings(expression: ts.Expression, checker: ts.TypeChecker): string[] | undefined {
  if (ts.isStringLiteral(expression) || ts.isNoSubstitutionTemplateLiteral(expression)) return [expression.text];
  if (ts.isTemplateExpression(expression)) {
    let made: string[] = [expression.head.text];
    for (const span of expression.templateSpans) {
      const parts = possibleStrings(span.expression, checker);
      if (!parts) return undefined;
      made = made.flatMap((prefix) => parts.map((part) => `${prefix}${part}${span.literal.text}`));
    }
    return made;
  }
  return literalValues(checker.getTypeAtLocation(expression));
}

/** The levels of the log call `fields` is the first argument of (`log.warn(fields)`, `log[level](fields)`), if it is one. */
function callLevels(fields: ts.ObjectLiteralExpression, checker: ts.TypeChecker): string[] | undefined {
  const call = fields.parent;
  if (!ts.isCallExpression(call) || call.arguments[0] !== fields) return undefined;
  const callee = call.expression;
  const keys = ts.isPropertyAccessExpression(callee)
    ? [callee.name.text]
    : ts.isElementAccessExpression(callee)
      ? possibleStrings(callee.argumentExpression, checker)
      : undefined;
  return keys?.every((key) => (LEVELS as readonly string[]).includes(key)) ? keys : undefined;
}

/** Every event name src can log, with where and at which levels. */
function eventSites(): { sites: EventSite[]; unresolved: string[] } {
  const files = sourceFiles(SRC);
  const config = ts.getParsedCommandLineOfConfigFile(join(ROOT, 'tsconfig.json'), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} });
  const program = ts.createProgram(files, { ...config?.options, noEmit: true });
  const checker = program.getTypeChecker();
  const sites: EventSite[] = [];
  const unresolved: string[] = [];
  for (const file of files) {
    const source = program.getSourceFile(file)!;
    const visit = (node: ts.Node): void => {
      if ((ts.isPropertyAssignment(node) || ts.isShorthandPropertyAssignment(node)) && ts.isObjectLiteralExpression(node.parent)) {
        const key = ts.isIdentifier(node.name) || ts.isStringLiteral(node.name) ? node.name.text : undefined;
        if (key === 'event') {
          const { line } = source.getLineAndCharacterOfPosition(node.getStart());
          const where = `${relative(ROOT, file)}:${line + 1}`;
          const names = ts.isPropertyAssignment(node) ? possibleStrings(node.initializer, checker) : literalValues(checker.getTypeAtLocation(node.name));
          if (!names) unresolved.push(`${where}: ${node.getText()}`);
          else for (const name of names) sites.push({ name, levels: callLevels(node.parent, checker), where });
        }
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  return { sites, unresolved };
}

/** The README's Log events table: each event named (in `code`) in a row's first cell, with the levels its second cell names. */
function documentedEvents(readme: string): Map<string, string[]> {
  const start = readme.indexOf(`\n${SECTION}\n`);
  if (start < 0) throw new Error(`README.md has no "${SECTION}" section`);
  const rest = readme.slice(start + SECTION.length + 2);
  const end = rest.search(/^#{1,3} /m);
  const section = end < 0 ? rest : rest.slice(0, end);
  const rows = new Map<string, string[]>();
  for (const line of section.split('\n')) {
    const cells = line.split(/(?<!\\)\|/).slice(1, -1).map((cell) => cell.trim());
    if (cells.length < 2 || /^-+$/.test(cells[0]) || cells[0] === 'event') continue;
    const names = [...cells[0].matchAll(/`([^`]+)`/g)].map((match) => match[1]);
    if (names.length === 0) throw new Error(`a row of "${SECTION}" names no event in \`code\`: ${line}`);
    const levels = LEVELS.filter((level) => new RegExp(`\\b${level}\\b`).test(cells[1]));
    for (const name of names) {
      if (rows.has(name)) throw new Error(`"${SECTION}" has two rows for ${name}`);
      rows.set(name, levels);
    }
  }
  return rows;
}

describe('log events', () => {
  const { sites, unresolved } = eventSites();
  const logged = new Map<string, EventSite[]>();
  for (const site of sites) logged.set(site.name, [...(logged.get(site.name) ?? []), site]);
  const documented = (): Map<string, string[]> => documentedEvents(readFileSync(join(ROOT, 'README.md'), 'utf8'));

  it('are all found in src, each a name that can be listed', () => {
    expect(unresolved, 'event values whose names cannot be listed (make each a string literal, or of a string literal union type)').toEqual([]);
    // The extraction found what it must: an empty or short list means it broke, not that src logs nothing.
    expect(logged.size, `event names found in ${SRC}`).toBeGreaterThan(30);
    for (const name of ['listening', 'stopped', 'lease_shutdown', 'tenant_streams_refused', 'data_plane_stalled']) expect([...logged.keys()]).toContain(name);
    expect(documented().size, `events in the README's "${SECTION}" table`).toBeGreaterThan(30);
  });

  it('each one src logs has a row in the README', () => {
    const documentedNames = documented();
    const missing = [...logged].filter(([name]) => !documentedNames.has(name)).map(([name, at]) => `${name} (${at.map((site) => site.where).join(', ')})`);
    expect(missing, `events logged but not in the README's "${SECTION}" table`).toEqual([]);
  });

  it('each row of the README names an event src logs', () => {
    expect([...documented().keys()].filter((name) => !logged.has(name)), `rows of "${SECTION}" that no code logs`).toEqual([]);
  });

  it('each row says the levels its event is logged at', () => {
    const rows = documented();
    const wrong: string[] = [];
    for (const [name, at] of logged) {
      const said = rows.get(name);
      if (!said) continue;
      const known = [...new Set(at.flatMap((site) => site.levels ?? []))].sort();
      const allKnown = at.every((site) => site.levels !== undefined);
      const ok = allKnown ? known.join() === [...said].sort().join() : known.every((level) => said.includes(level)) && said.length > 0;
      if (!ok) wrong.push(`${name}: README says ${said.join(', ') || 'no level'}, src logs it at ${known.join(', ')}${allKnown ? '' : ' (and a helper\'s)'} (${at.map((site) => site.where).join(', ')})`);
    }
    expect(wrong).toEqual([]);
  });
});
