// Original file: proto/tensormem/v1/workspace.proto

import type { Long } from '@grpc/proto-loader';

export interface CudnnAlgorithmCandidate {
  'algorithm'?: (string);
  'workspace_bytes'?: (number | string | Long);
  'status'?: (string);
  'time_ms'?: (number | string);
  'deterministic'?: (boolean);
}

export interface CudnnAlgorithmCandidate__Output {
  'algorithm': (string);
  'workspace_bytes': (number);
  'status': (string);
  'time_ms': (number);
  'deterministic': (boolean);
}
