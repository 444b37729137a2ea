import { describe, expect, it } from 'vitest';
import { renderTable } from '../../src/client/table';

describe('renderTable', () => {
  it('pads columns to their widest cell, two spaces apart, trailing spaces trimmed', () => {
    expect(renderTable(['A', 'BB'], [['xyz', 1], ['', 22]])).toBe('A    BB\nxyz  1\n     22');
  });

  it('wraps a column given a width over continuation lines, so one long cell does not widen every line', () => {
    const long = 'x'.repeat(25);
    const table = renderTable(['NAME', 'VALUE', 'SOURCE'], [['a', 'short', 'flag'], ['b', long, 'derived']], { 1: 10 });
    expect(table.split('\n')).toEqual([
      'NAME  VALUE       SOURCE',
      'a     short       flag',
      `b     ${'x'.repeat(10)}  derived`,
      `      ${'x'.repeat(10)}`,
      `      ${'x'.repeat(5)}`,
    ]);
    // Without the width, the long cell sets the column's width on every line.
    expect(renderTable(['NAME', 'VALUE', 'SOURCE'], [['a', 'short', 'flag'], ['b', long, 'derived']]).split('\n')[1]).toBe(`a     short${' '.repeat(20)}  flag`);
  });
});
