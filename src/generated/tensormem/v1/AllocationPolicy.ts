// Original file: proto/tensormem/v1/workspace.proto

export const AllocationPolicy = {
  ALLOCATION_POLICY_UNSPECIFIED: 'ALLOCATION_POLICY_UNSPECIFIED',
  ALLOCATION_POLICY_STRICT: 'ALLOCATION_POLICY_STRICT',
  ALLOCATION_POLICY_OVERALLOCATE: 'ALLOCATION_POLICY_OVERALLOCATE',
} as const;

export type AllocationPolicy =
  | 'ALLOCATION_POLICY_UNSPECIFIED'
  | 0
  | 'ALLOCATION_POLICY_STRICT'
  | 1
  | 'ALLOCATION_POLICY_OVERALLOCATE'
  | 2

export type AllocationPolicy__Output = typeof AllocationPolicy[keyof typeof AllocationPolicy]
