// Original file: proto/tensormem/v1/memory.proto

import type { ConfigValue as _tensormem_v1_ConfigValue, ConfigValue__Output as _tensormem_v1_ConfigValue__Output } from '../../tensormem/v1/ConfigValue';

export interface GetConfigResponse {
  'values'?: (_tensormem_v1_ConfigValue)[];
  'version'?: (string);
  'backend'?: (string);
}

export interface GetConfigResponse__Output {
  'values': (_tensormem_v1_ConfigValue__Output)[];
  'version': (string);
  'backend': (string);
}
