// Original file: proto/tensormem/v1/workspace.proto

export const SpillPolicy = {
  SPILL_POLICY_UNSPECIFIED: 'SPILL_POLICY_UNSPECIFIED',
  SPILL_POLICY_EXTERNAL: 'SPILL_POLICY_EXTERNAL',
  SPILL_POLICY_REALLOCATE: 'SPILL_POLICY_REALLOCATE',
  SPILL_POLICY_FAIL: 'SPILL_POLICY_FAIL',
} as const;

export type SpillPolicy =
  | 'SPILL_POLICY_UNSPECIFIED'
  | 0
  | 'SPILL_POLICY_EXTERNAL'
  | 1
  | 'SPILL_POLICY_REALLOCATE'
  | 2
  | 'SPILL_POLICY_FAIL'
  | 3

export type SpillPolicy__Output = typeof SpillPolicy[keyof typeof SpillPolicy]
