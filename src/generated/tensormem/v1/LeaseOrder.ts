// Original file: proto/tensormem/v1/lease.proto

export const LeaseOrder = {
  LEASE_ORDER_OPENED: 'LEASE_ORDER_OPENED',
  LEASE_ORDER_BYTES: 'LEASE_ORDER_BYTES',
} as const;

export type LeaseOrder =
  | 'LEASE_ORDER_OPENED'
  | 0
  | 'LEASE_ORDER_BYTES'
  | 1

export type LeaseOrder__Output = typeof LeaseOrder[keyof typeof LeaseOrder]
