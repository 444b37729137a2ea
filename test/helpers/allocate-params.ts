/** Lease.allocateArray's parameters as an AllocateArray with only the given fields set would make them (FLOAT32 [4] on device 0 unless given). */
import type { AllocateParams } from '../../src/leases/lease';

export function allocateParams(given: Partial<AllocateParams> = {}): AllocateParams {
  return { dataType: 'DATA_TYPE_FLOAT32', shape: [4], placement: 'PLACEMENT_DEVICE', device: 0, workspaceId: '', zero: false, label: '', requestId: '', ...given };
}
