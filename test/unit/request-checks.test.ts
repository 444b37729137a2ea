/**
 * The typed client's request checks (src/client/request-checks.ts): the generated fast check and the
 * interpreted one agree on every message type of the proto: the fast one says "fine" only where the
 * interpreted one finds nothing, for usual and unusual values alike.
 */
import { describe, expect, it } from 'vitest';
import { RequestChecks } from '../../src/client/request-checks';
import { loadTensormemProto } from '../../src/service/proto';

const { definition } = loadTensormemProto();
const messageTypes = Object.keys(definition).filter((name) => name.startsWith('tensormem.v1.') && (definition[name] as { format?: string }).format === 'Protocol Buffer 3 DescriptorProto');

/** Values of every kind a caller might put in a field. */
const SAMPLES: unknown[] = [undefined, null, '', 'x', '12', '-3', 0, 1, -1, 2 ** 31, 2 ** 32, 2 ** 53, 1.5, NaN, true, false, [], [1, 2], ['a'], [1.5], {}, { a: 1 }, Buffer.from('ab'), 'DATA_TYPE_FLOAT32', 'PLACEMENT_HOST_ONLY'];

/** A problem as the refusal shows it (a shortened received value is an object with its own toString). */
const shown = (problem: { field: string; expected: string; received: unknown } | undefined) => problem && { ...problem, received: String(problem.received) };

describe('RequestChecks', () => {
  it('builds a check for every message type of the proto, the empty ones included', () => {
    const checks = new RequestChecks(definition);
    expect(messageTypes.length).toBeGreaterThan(50);
    for (const type of messageTypes) expect(checks.problemOf(type, {}), type).toBeUndefined();
  });

  it('finds the same problems with and without its generated fast check, over every field and many values', () => {
    const checks = new RequestChecks(definition);
    const interpreted = new RequestChecks(definition);
    // Without the fast path: the interpreted check alone (what problemOf falls back to).
    (interpreted as unknown as { fastCheckOf: () => () => boolean }).fastCheckOf = () => () => false;
    let compared = 0;
    for (const type of messageTypes) {
      const fields = ((definition[type] as { type: { field: Array<{ name: string }> } }).type.field ?? []).map((field) => field.name);
      for (const name of [...fields, 'unknownField', 'leaseId']) {
        for (const value of SAMPLES) {
          const request = { [name]: value };
          expect(shown(checks.problemOf(type, request)), `${type}.${name} = ${String(value)}`).toEqual(shown(interpreted.problemOf(type, request)));
          compared++;
        }
      }
    }
    expect(compared).toBeGreaterThan(5000);
  });

  it('checks a map field (OpenLeaseRequest.labels): a plain object of strings, naming the key of a wrong value', () => {
    // protobufjs sent { a: null } as "null", { a: {} } as "[object Object]", a Map as no labels at all,
    // an array by its indexes, and failed a string as INTERNAL ("object expected").
    const checks = new RequestChecks(definition);
    const problem = (labels: unknown) => shown(checks.problemOf('tensormem.v1.OpenLeaseRequest', { labels }));
    for (const labels of ['a=b', ['x'], new Map([['a', 'b']]), 5, true]) {
      expect(problem(labels), String(labels)).toEqual({ field: 'labels', expected: 'an object of a string by key (map<string, string>)', received: String(labels) });
    }
    for (const [value, received] of [[1, '1'], [null, 'null'], [{}, 'an object {}'], [true, 'true'], [undefined, 'undefined']]) {
      expect(problem({ job: 'x', a: value }), received as string).toEqual({ field: 'labels["a"]', expected: 'a string', received });
    }
    for (const labels of [undefined, null, {}, { job: 'x', 'team.io/name': '' }, Object.assign(Object.create(null), { a: 'b' })]) expect(problem(labels)).toBeUndefined();
  });
});
