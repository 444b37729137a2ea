// Original file: proto/tensormem/v1/workspace.proto

export const MirroringPolicy = {
  MIRRORING_POLICY_UNSPECIFIED: 'MIRRORING_POLICY_UNSPECIFIED',
  MIRRORING_POLICY_FULL: 'MIRRORING_POLICY_FULL',
  MIRRORING_POLICY_HOST_ONLY: 'MIRRORING_POLICY_HOST_ONLY',
} as const;

export type MirroringPolicy =
  | 'MIRRORING_POLICY_UNSPECIFIED'
  | 0
  | 'MIRRORING_POLICY_FULL'
  | 1
  | 'MIRRORING_POLICY_HOST_ONLY'
  | 2

export type MirroringPolicy__Output = typeof MirroringPolicy[keyof typeof MirroringPolicy]
