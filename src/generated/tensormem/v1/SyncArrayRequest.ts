// Original file: proto/tensormem/v1/array.proto

import type { SyncDirection as _tensormem_v1_SyncDirection, SyncDirection__Output as _tensormem_v1_SyncDirection__Output } from '../../tensormem/v1/SyncDirection';

export interface SyncArrayRequest {
  'array_id'?: (string);
  'direction'?: (_tensormem_v1_SyncDirection);
}

export interface SyncArrayRequest__Output {
  'array_id': (string);
  'direction': (_tensormem_v1_SyncDirection__Output);
}
