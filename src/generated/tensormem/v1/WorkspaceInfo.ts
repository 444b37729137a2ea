// Original file: proto/tensormem/v1/workspace.proto

import type { WorkspaceConfig as _tensormem_v1_WorkspaceConfig, WorkspaceConfig__Output as _tensormem_v1_WorkspaceConfig__Output } from '../../tensormem/v1/WorkspaceConfig';
import type { Long } from '@grpc/proto-loader';

export interface WorkspaceInfo {
  'workspace_id'?: (string);
  'name'?: (string);
  'current_size'?: (number | string | Long);
  'primary_offset'?: (number | string | Long);
  'host_offset'?: (number | string | Long);
  'device_offset'?: (number | string | Long);
  'this_cycle_allocations'?: (number | string | Long);
  'last_cycle_allocations'?: (number | string | Long);
  'max_cycle_allocations'?: (number | string | Long);
  'spilled_size'?: (number | string | Long);
  'pinned_size'?: (number | string | Long);
  'number_of_external_allocations'?: (number | string | Long);
  'number_of_pinned_allocations'?: (number | string | Long);
  'cycles_count'?: (number | string | Long);
  'step_number'?: (number | string | Long);
  'generation_id'?: (number | string | Long);
  'scope_active'?: (boolean);
  'initial_block_size'?: (number | string | Long);
  'config'?: (_tensormem_v1_WorkspaceConfig | null);
  'held_bytes'?: (number | string | Long);
  'current'?: (boolean);
  'learning_failure'?: (string);
  'learning_failure_reason'?: (string);
}

export interface WorkspaceInfo__Output {
  'workspace_id': (string);
  'name': (string);
  'current_size': (number);
  'primary_offset': (number);
  'host_offset': (number);
  'device_offset': (number);
  'this_cycle_allocations': (number);
  'last_cycle_allocations': (number);
  'max_cycle_allocations': (number);
  'spilled_size': (number);
  'pinned_size': (number);
  'number_of_external_allocations': (number);
  'number_of_pinned_allocations': (number);
  'cycles_count': (number);
  'step_number': (number);
  'generation_id': (number);
  'scope_active': (boolean);
  'initial_block_size': (number);
  'config': (_tensormem_v1_WorkspaceConfig__Output | null);
  'held_bytes': (number);
  'current': (boolean);
  'learning_failure': (string);
  'learning_failure_reason': (string);
}
