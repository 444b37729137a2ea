// Original file: proto/tensormem/v1/array.proto

export const SyncDirection = {
  SYNC_DIRECTION_UNSPECIFIED: 'SYNC_DIRECTION_UNSPECIFIED',
  SYNC_DIRECTION_TO_HOST: 'SYNC_DIRECTION_TO_HOST',
  SYNC_DIRECTION_TO_DEVICE: 'SYNC_DIRECTION_TO_DEVICE',
} as const;

export type SyncDirection =
  | 'SYNC_DIRECTION_UNSPECIFIED'
  | 0
  | 'SYNC_DIRECTION_TO_HOST'
  | 1
  | 'SYNC_DIRECTION_TO_DEVICE'
  | 2

export type SyncDirection__Output = typeof SyncDirection[keyof typeof SyncDirection]
