// Original file: proto/tensormem/v1/array.proto

import type { ExportSide as _tensormem_v1_ExportSide, ExportSide__Output as _tensormem_v1_ExportSide__Output } from '../../tensormem/v1/ExportSide';

export interface ExportArrayRequest {
  'array_id'?: (string);
  'side'?: (_tensormem_v1_ExportSide);
}

export interface ExportArrayRequest__Output {
  'array_id': (string);
  'side': (_tensormem_v1_ExportSide__Output);
}
