// Original file: proto/tensormem/v1/workspace.proto

import type { AllocationPolicy as _tensormem_v1_AllocationPolicy, AllocationPolicy__Output as _tensormem_v1_AllocationPolicy__Output } from '../../tensormem/v1/AllocationPolicy';
import type { LearningPolicy as _tensormem_v1_LearningPolicy, LearningPolicy__Output as _tensormem_v1_LearningPolicy__Output } from '../../tensormem/v1/LearningPolicy';
import type { SpillPolicy as _tensormem_v1_SpillPolicy, SpillPolicy__Output as _tensormem_v1_SpillPolicy__Output } from '../../tensormem/v1/SpillPolicy';
import type { ResetPolicy as _tensormem_v1_ResetPolicy, ResetPolicy__Output as _tensormem_v1_ResetPolicy__Output } from '../../tensormem/v1/ResetPolicy';
import type { MirroringPolicy as _tensormem_v1_MirroringPolicy, MirroringPolicy__Output as _tensormem_v1_MirroringPolicy__Output } from '../../tensormem/v1/MirroringPolicy';
import type { LocationPolicy as _tensormem_v1_LocationPolicy, LocationPolicy__Output as _tensormem_v1_LocationPolicy__Output } from '../../tensormem/v1/LocationPolicy';
import type { Long } from '@grpc/proto-loader';

export interface WorkspaceConfig {
  'initial_size'?: (number | string | Long);
  'min_size'?: (number | string | Long);
  'max_size'?: (number | string | Long);
  'overallocation_limit'?: (number | string);
  'allocation_policy'?: (_tensormem_v1_AllocationPolicy);
  'learning_policy'?: (_tensormem_v1_LearningPolicy);
  'spill_policy'?: (_tensormem_v1_SpillPolicy);
  'reset_policy'?: (_tensormem_v1_ResetPolicy);
  'mirroring_policy'?: (_tensormem_v1_MirroringPolicy);
  'location_policy'?: (_tensormem_v1_LocationPolicy);
  'cycles_before_initialization'?: (number);
  'temp_file_path'?: (string);
  'device'?: (number);
  '_overallocation_limit'?: "overallocation_limit";
}

export interface WorkspaceConfig__Output {
  'initial_size': (number);
  'min_size': (number);
  'max_size': (number);
  'overallocation_limit'?: (number);
  'allocation_policy': (_tensormem_v1_AllocationPolicy__Output);
  'learning_policy': (_tensormem_v1_LearningPolicy__Output);
  'spill_policy': (_tensormem_v1_SpillPolicy__Output);
  'reset_policy': (_tensormem_v1_ResetPolicy__Output);
  'mirroring_policy': (_tensormem_v1_MirroringPolicy__Output);
  'location_policy': (_tensormem_v1_LocationPolicy__Output);
  'cycles_before_initialization': (number);
  'temp_file_path': (string);
  'device': (number);
  '_overallocation_limit'?: "overallocation_limit";
}
