// Original file: proto/tensormem/v1/memory.proto

import type { Long } from '@grpc/proto-loader';

export interface TenantUsage {
  'tenant'?: (string);
  'used_bytes'?: (number | string | Long);
  'quota_bytes'?: (number | string | Long);
  'leases'?: (number);
  'device_used_bytes'?: (number | string | Long);
  'host_used_bytes'?: (number | string | Long);
  'host_quota_bytes'?: (number | string | Long);
  'guarantee_bytes'?: (number | string | Long);
  'max_leases'?: (number);
  'device_used_bytes_by_device'?: (number | string | Long)[];
  'mmap_used_bytes'?: (number | string | Long);
  'mmap_quota_bytes'?: (number | string | Long);
  'arrays'?: (number | string | Long);
  'max_arrays'?: (number | string | Long);
  'mapped_regions'?: (number | string | Long);
  'max_mapped_regions'?: (number | string | Long);
  'dropped'?: (boolean);
  'evicting'?: (boolean);
}

export interface TenantUsage__Output {
  'tenant': (string);
  'used_bytes': (number);
  'quota_bytes': (number);
  'leases': (number);
  'device_used_bytes': (number);
  'host_used_bytes': (number);
  'host_quota_bytes': (number);
  'guarantee_bytes': (number);
  'max_leases': (number);
  'device_used_bytes_by_device': (number)[];
  'mmap_used_bytes': (number);
  'mmap_quota_bytes': (number);
  'arrays': (number);
  'max_arrays': (number);
  'mapped_regions': (number);
  'max_mapped_regions': (number);
  'dropped': (boolean);
  'evicting': (boolean);
}
