// Original file: proto/tensormem/v1/workspace.proto

export const LocationPolicy = {
  LOCATION_POLICY_UNSPECIFIED: 'LOCATION_POLICY_UNSPECIFIED',
  LOCATION_POLICY_RAM: 'LOCATION_POLICY_RAM',
  LOCATION_POLICY_MMAP: 'LOCATION_POLICY_MMAP',
} as const;

export type LocationPolicy =
  | 'LOCATION_POLICY_UNSPECIFIED'
  | 0
  | 'LOCATION_POLICY_RAM'
  | 1
  | 'LOCATION_POLICY_MMAP'
  | 2

export type LocationPolicy__Output = typeof LocationPolicy[keyof typeof LocationPolicy]
