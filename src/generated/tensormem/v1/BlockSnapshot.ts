// Original file: proto/tensormem/v1/memory.proto

import type { Long } from '@grpc/proto-loader';

export interface BlockSnapshot {
  'offset'?: (number | string | Long);
  'bytes'?: (number | string | Long);
  'free'?: (boolean);
  'lease_id'?: (string);
  'tenant'?: (string);
  'array_id'?: (string);
  'workspace_id'?: (string);
  'label'?: (string);
  'purpose'?: (string);
}

export interface BlockSnapshot__Output {
  'offset': (number);
  'bytes': (number);
  'free': (boolean);
  'lease_id': (string);
  'tenant': (string);
  'array_id': (string);
  'workspace_id': (string);
  'label': (string);
  'purpose': (string);
}
