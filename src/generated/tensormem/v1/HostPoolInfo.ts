// Original file: proto/tensormem/v1/memory.proto

import type { Long } from '@grpc/proto-loader';

export interface HostPoolInfo {
  'max_bytes'?: (number | string | Long);
  'used_bytes'?: (number | string | Long);
  'mirror_bytes'?: (number | string | Long);
  'host_only_bytes'?: (number | string | Long);
  'mmap_bytes'?: (number | string | Long);
  'reserved_bytes'?: (number | string | Long);
  'peak_used_bytes'?: (number | string | Long);
  'largest_free_block_bytes'?: (number | string | Long);
  'allocation_count'?: (number | string | Long);
  'allocations_total'?: (number | string | Long);
  'failed_allocations_total'?: (number | string | Long);
  'mmap_max_bytes'?: (number | string | Long);
}

export interface HostPoolInfo__Output {
  'max_bytes': (number);
  'used_bytes': (number);
  'mirror_bytes': (number);
  'host_only_bytes': (number);
  'mmap_bytes': (number);
  'reserved_bytes': (number);
  'peak_used_bytes': (number);
  'largest_free_block_bytes': (number);
  'allocation_count': (number);
  'allocations_total': (number);
  'failed_allocations_total': (number);
  'mmap_max_bytes': (number);
}
