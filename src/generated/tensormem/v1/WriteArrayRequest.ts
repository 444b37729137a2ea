// Original file: proto/tensormem/v1/array.proto

import type { WriteArrayHeader as _tensormem_v1_WriteArrayHeader, WriteArrayHeader__Output as _tensormem_v1_WriteArrayHeader__Output } from '../../tensormem/v1/WriteArrayHeader';

export interface WriteArrayRequest {
  'header'?: (_tensormem_v1_WriteArrayHeader | null);
  'chunk'?: (Buffer | Uint8Array | string);
  'payload'?: "header"|"chunk";
}

export interface WriteArrayRequest__Output {
  'header'?: (_tensormem_v1_WriteArrayHeader__Output | null);
  'chunk'?: (Buffer);
  'payload'?: "header"|"chunk";
}
