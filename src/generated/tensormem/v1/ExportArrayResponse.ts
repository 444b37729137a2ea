// Original file: proto/tensormem/v1/array.proto

import type { SharedMemoryRegion as _tensormem_v1_SharedMemoryRegion, SharedMemoryRegion__Output as _tensormem_v1_SharedMemoryRegion__Output } from '../../tensormem/v1/SharedMemoryRegion';
import type { CudaIpcRegion as _tensormem_v1_CudaIpcRegion, CudaIpcRegion__Output as _tensormem_v1_CudaIpcRegion__Output } from '../../tensormem/v1/CudaIpcRegion';
import type { ArrayInfo as _tensormem_v1_ArrayInfo, ArrayInfo__Output as _tensormem_v1_ArrayInfo__Output } from '../../tensormem/v1/ArrayInfo';

export interface ExportArrayResponse {
  'shm'?: (_tensormem_v1_SharedMemoryRegion | null);
  'cuda_ipc'?: (_tensormem_v1_CudaIpcRegion | null);
  'array'?: (_tensormem_v1_ArrayInfo | null);
  'moved'?: (boolean);
  'handle'?: "shm"|"cuda_ipc";
}

export interface ExportArrayResponse__Output {
  'shm'?: (_tensormem_v1_SharedMemoryRegion__Output | null);
  'cuda_ipc'?: (_tensormem_v1_CudaIpcRegion__Output | null);
  'array': (_tensormem_v1_ArrayInfo__Output | null);
  'moved': (boolean);
  'handle'?: "shm"|"cuda_ipc";
}
