// Original file: proto/tensormem/v1/memory.proto


export interface ConfigValue {
  'name'?: (string);
  'value'?: (string);
  'source'?: (string);
  'seed_name'?: (string);
}

export interface ConfigValue__Output {
  'name': (string);
  'value': (string);
  'source': (string);
  'seed_name': (string);
}
