import { describe, expect, it } from 'vitest';
import { byteSizeOf, elementBytes, MAX_RANK } from '../../src/memory/data-types';
import { TensormemError } from '../../src/errors';

function failure(fn: () => unknown): TensormemError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(TensormemError);
    return error as TensormemError;
  }
  throw new Error('expected a TensormemError');
}

describe('data types and shapes', () => {
  it('sizes every data type', () => {
    expect(elementBytes('DATA_TYPE_FLOAT16')).toBe(2);
    expect(elementBytes('DATA_TYPE_BFLOAT16')).toBe(2);
    expect(elementBytes('DATA_TYPE_FLOAT64')).toBe(8);
    expect(elementBytes('DATA_TYPE_BOOL')).toBe(1);
    expect(byteSizeOf('DATA_TYPE_FLOAT32', [2, 3, 4])).toBe(96);
    expect(byteSizeOf('DATA_TYPE_INT64', [])).toBe(8);
    expect(byteSizeOf('DATA_TYPE_INT64', [5, 0])).toBe(0);
    expect(byteSizeOf('DATA_TYPE_INT8', ['7'])).toBe(7);
  });

  it('refuses unknown types naming data_type', () => {
    const error = failure(() => elementBytes('DATA_TYPE_UNSPECIFIED'));
    expect(error.kind).toBe('INVALID_ARGUMENT');
    expect(error.message).toContain('for data_type but received "DATA_TYPE_UNSPECIFIED"');
  });

  it('refuses negative, fractional and non-numeric dimensions naming the index', () => {
    expect(failure(() => byteSizeOf('DATA_TYPE_FLOAT32', [4, -3])).message).toBe('Expected a non-negative integer for shape[1] but received -3');
    expect(failure(() => byteSizeOf('DATA_TYPE_FLOAT32', [1.5])).message).toContain('shape[0]');
    expect(failure(() => byteSizeOf('DATA_TYPE_FLOAT32', ['x'])).reason).toBe('INVALID_SHAPE');
  });

  it('takes a 0 dimension as an empty array wherever it stands', () => {
    const largest = Number.MAX_SAFE_INTEGER;
    expect(byteSizeOf('DATA_TYPE_FLOAT32', [0, largest])).toBe(0);
    expect(byteSizeOf('DATA_TYPE_FLOAT32', [largest, 0])).toBe(0);
    expect(byteSizeOf('DATA_TYPE_FLOAT32', [String(largest), String(largest), '0'])).toBe(0);
    // Each dimension is still checked on its own.
    expect(failure(() => byteSizeOf('DATA_TYPE_FLOAT32', [0, -1])).message).toBe('Expected a non-negative integer for shape[1] but received -1');
  });

  it('refuses products past 2^53 instead of wrapping', () => {
    const error = failure(() => byteSizeOf('DATA_TYPE_FLOAT64', [2 ** 20, 2 ** 20, 2 ** 20]));
    expect(error.reason).toBe('INVALID_SHAPE');
    expect(error.message).toContain('below 2^53');
    expect(failure(() => byteSizeOf('DATA_TYPE_UINT8', ['9223372036854775807'])).message).toContain('shape[0]');
  });

  it('refuses too many dimensions', () => {
    expect(failure(() => byteSizeOf('DATA_TYPE_UINT8', new Array(MAX_RANK + 1).fill(1))).message).toContain(`at most ${MAX_RANK} dimensions`);
  });
});
