// Original file: proto/tensormem/v1/memory.proto

import type { Long } from '@grpc/proto-loader';

export interface DevicePoolInfo {
  'device'?: (number);
  'name'?: (string);
  'total_bytes'?: (number | string | Long);
  'free_bytes'?: (number | string | Long);
  'max_bytes'?: (number | string | Long);
  'reserved_bytes'?: (number | string | Long);
  'used_bytes'?: (number | string | Long);
  'peak_used_bytes'?: (number | string | Long);
  'largest_free_block_bytes'?: (number | string | Long);
  'allocation_count'?: (number | string | Long);
  'allocations_total'?: (number | string | Long);
  'failed_allocations_total'?: (number | string | Long);
  'waiting_allocations'?: (number);
}

export interface DevicePoolInfo__Output {
  'device': (number);
  'name': (string);
  'total_bytes': (number);
  'free_bytes': (number);
  'max_bytes': (number);
  'reserved_bytes': (number);
  'used_bytes': (number);
  'peak_used_bytes': (number);
  'largest_free_block_bytes': (number);
  'allocation_count': (number);
  'allocations_total': (number);
  'failed_allocations_total': (number);
  'waiting_allocations': (number);
}
