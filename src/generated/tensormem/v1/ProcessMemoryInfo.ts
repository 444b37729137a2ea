// Original file: proto/tensormem/v1/memory.proto

import type { Long } from '@grpc/proto-loader';

export interface ProcessMemoryInfo {
  'physical_bytes'?: (number | string | Long);
  'max_physical_bytes'?: (number | string | Long);
  'heap_used_bytes'?: (number | string | Long);
  'heap_limit_bytes'?: (number | string | Long);
  'counted_physical_bytes'?: (number | string | Long);
}

export interface ProcessMemoryInfo__Output {
  'physical_bytes': (number);
  'max_physical_bytes': (number);
  'heap_used_bytes': (number);
  'heap_limit_bytes': (number);
  'counted_physical_bytes': (number);
}
