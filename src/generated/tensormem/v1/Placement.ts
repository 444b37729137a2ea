// Original file: proto/tensormem/v1/types.proto

export const Placement = {
  PLACEMENT_UNSPECIFIED: 'PLACEMENT_UNSPECIFIED',
  PLACEMENT_DEVICE: 'PLACEMENT_DEVICE',
  PLACEMENT_HOST_ONLY: 'PLACEMENT_HOST_ONLY',
} as const;

export type Placement =
  | 'PLACEMENT_UNSPECIFIED'
  | 0
  | 'PLACEMENT_DEVICE'
  | 1
  | 'PLACEMENT_HOST_ONLY'
  | 2

export type Placement__Output = typeof Placement[keyof typeof Placement]
