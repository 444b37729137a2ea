// Original file: proto/tensormem/v1/array.proto

export const ExportSide = {
  EXPORT_SIDE_UNSPECIFIED: 'EXPORT_SIDE_UNSPECIFIED',
  EXPORT_SIDE_HOST: 'EXPORT_SIDE_HOST',
  EXPORT_SIDE_DEVICE: 'EXPORT_SIDE_DEVICE',
} as const;

export type ExportSide =
  | 'EXPORT_SIDE_UNSPECIFIED'
  | 0
  | 'EXPORT_SIDE_HOST'
  | 1
  | 'EXPORT_SIDE_DEVICE'
  | 2

export type ExportSide__Output = typeof ExportSide[keyof typeof ExportSide]
