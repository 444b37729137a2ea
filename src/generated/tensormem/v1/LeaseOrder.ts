// Original file: proto/tensormem/v1/lease.proto

export const LeaseOrder = {
  LEASE_ORDER_UNSPECIFIED: 'LEASE_ORDER_UNSPECIFIED',
  LEASE_ORDER_BYTES: 'LEASE_ORDER_BYTES',
  LEASE_ORDER_OPENED: 'LEASE_ORDER_OPENED',
} as const;

export type LeaseOrder =
  | 'LEASE_ORDER_UNSPECIFIED'
  | 0
  | 'LEASE_ORDER_BYTES'
  | 1
  | 'LEASE_ORDER_OPENED'
  | 2

export type LeaseOrder__Output = typeof LeaseOrder[keyof typeof LeaseOrder]
