// Original file: proto/tensormem/v1/workspace.proto

export const ResetPolicy = {
  RESET_POLICY_UNSPECIFIED: 'RESET_POLICY_UNSPECIFIED',
  RESET_POLICY_BLOCK_LEFT: 'RESET_POLICY_BLOCK_LEFT',
  RESET_POLICY_ENDOFBUFFER_REACHED: 'RESET_POLICY_ENDOFBUFFER_REACHED',
} as const;

export type ResetPolicy =
  | 'RESET_POLICY_UNSPECIFIED'
  | 0
  | 'RESET_POLICY_BLOCK_LEFT'
  | 1
  | 'RESET_POLICY_ENDOFBUFFER_REACHED'
  | 2

export type ResetPolicy__Output = typeof ResetPolicy[keyof typeof ResetPolicy]
