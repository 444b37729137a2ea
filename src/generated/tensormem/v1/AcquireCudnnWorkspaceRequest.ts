// Original file: proto/tensormem/v1/workspace.proto

import type { CudnnAlgoMode as _tensormem_v1_CudnnAlgoMode, CudnnAlgoMode__Output as _tensormem_v1_CudnnAlgoMode__Output } from '../../tensormem/v1/CudnnAlgoMode';
import type { ConvolutionDescriptor as _tensormem_v1_ConvolutionDescriptor, ConvolutionDescriptor__Output as _tensormem_v1_ConvolutionDescriptor__Output } from '../../tensormem/v1/ConvolutionDescriptor';
import type { Long } from '@grpc/proto-loader';

export interface AcquireCudnnWorkspaceRequest {
  'lease_id'?: (string);
  'device'?: (number);
  'mode'?: (_tensormem_v1_CudnnAlgoMode);
  'convolution'?: (_tensormem_v1_ConvolutionDescriptor | null);
  'algorithm'?: (string);
  'requested_bytes'?: (number | string | Long);
}

export interface AcquireCudnnWorkspaceRequest__Output {
  'lease_id': (string);
  'device': (number);
  'mode': (_tensormem_v1_CudnnAlgoMode__Output);
  'convolution': (_tensormem_v1_ConvolutionDescriptor__Output | null);
  'algorithm': (string);
  'requested_bytes': (number);
}
