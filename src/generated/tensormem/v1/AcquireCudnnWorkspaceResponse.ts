// Original file: proto/tensormem/v1/workspace.proto

import type { ArrayInfo as _tensormem_v1_ArrayInfo, ArrayInfo__Output as _tensormem_v1_ArrayInfo__Output } from '../../tensormem/v1/ArrayInfo';
import type { CudnnAlgorithmCandidate as _tensormem_v1_CudnnAlgorithmCandidate, CudnnAlgorithmCandidate__Output as _tensormem_v1_CudnnAlgorithmCandidate__Output } from '../../tensormem/v1/CudnnAlgorithmCandidate';
import type { Long } from '@grpc/proto-loader';

export interface AcquireCudnnWorkspaceResponse {
  'scratch'?: (_tensormem_v1_ArrayInfo | null);
  'device_offset'?: (number | string | Long);
  'algorithm'?: (string);
  'workspace_bytes'?: (number | string | Long);
  'fell_back'?: (boolean);
  'reason'?: (string);
  'size_source'?: (string);
  'grew'?: (boolean);
  'candidates'?: (_tensormem_v1_CudnnAlgorithmCandidate)[];
}

export interface AcquireCudnnWorkspaceResponse__Output {
  'scratch': (_tensormem_v1_ArrayInfo__Output | null);
  'device_offset': (number);
  'algorithm': (string);
  'workspace_bytes': (number);
  'fell_back': (boolean);
  'reason': (string);
  'size_source': (string);
  'grew': (boolean);
  'candidates': (_tensormem_v1_CudnnAlgorithmCandidate__Output)[];
}
