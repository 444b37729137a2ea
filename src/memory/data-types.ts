/** Element sizes and shape validation: the byte size of an array is product(shape) × element size. */
import { invalidArgument } from '../errors';

export const ELEMENT_BYTES = {
  DATA_TYPE_FLOAT16: 2,
  DATA_TYPE_BFLOAT16: 2,
  DATA_TYPE_FLOAT32: 4,
  DATA_TYPE_FLOAT64: 8,
  DATA_TYPE_INT8: 1,
  DATA_TYPE_UINT8: 1,
  DATA_TYPE_INT16: 2,
  DATA_TYPE_INT32: 4,
  DATA_TYPE_INT64: 8,
  DATA_TYPE_BOOL: 1,
} as const;

export type DataTypeName = keyof typeof ELEMENT_BYTES;

/** At most this many dimensions (ND4J's shape-info limit is 32). */
export const MAX_RANK = 32;

export function elementBytes(dataType: unknown): number {
  if (typeof dataType !== 'string' || !(dataType in ELEMENT_BYTES)) {
    throw invalidArgument('data_type', `one of ${Object.keys(ELEMENT_BYTES).join(', ')}`, dataType);
  }
  return ELEMENT_BYTES[dataType as DataTypeName];
}

/**
 * Validates a shape (each dimension a non-negative integer, rank ≤ MAX_RANK) and returns the byte
 * size, refusing any product that is not a safe integer (INVALID_SHAPE). An empty shape is a scalar.
 */
export function byteSizeOf(dataType: unknown, shape: readonly unknown[]): number {
  const size = elementBytes(dataType);
  if (shape.length > MAX_RANK) throw invalidArgument('shape', `at most ${MAX_RANK} dimensions`, `${shape.length} dimensions`, 'INVALID_SHAPE');
  const dimensions = shape.map((dimension, index) => {
    const value = typeof dimension === 'string' ? Number(dimension) : dimension;
    if (typeof value === 'number' && Number.isInteger(value) && value > Number.MAX_SAFE_INTEGER) {
      // int64 values past 2^53 arrive rounded: say so rather than print a number the client never sent.
      throw invalidArgument(`shape[${index}]`, 'a dimension below 2^53', `a value past 2^53 (about ${value.toExponential(3)})`, 'INVALID_SHAPE');
    }
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
      throw invalidArgument(`shape[${index}]`, 'a non-negative integer', dimension, 'INVALID_SHAPE');
    }
    return value;
  });
  // A 0 dimension makes an empty array wherever it stands, so the order of the dimensions never decides.
  if (dimensions.includes(0)) return 0;
  let bytes = size;
  for (const value of dimensions) {
    bytes *= value;
    if (!Number.isSafeInteger(bytes)) {
      throw invalidArgument('shape', `a shape whose byte size (${size} bytes per element) is below 2^53`, shape, 'INVALID_SHAPE');
    }
  }
  return bytes;
}
