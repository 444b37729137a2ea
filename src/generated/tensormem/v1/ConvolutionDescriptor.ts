// Original file: proto/tensormem/v1/workspace.proto

import type { DataType as _tensormem_v1_DataType, DataType__Output as _tensormem_v1_DataType__Output } from '../../tensormem/v1/DataType';
import type { ConvolutionDirection as _tensormem_v1_ConvolutionDirection, ConvolutionDirection__Output as _tensormem_v1_ConvolutionDirection__Output } from '../../tensormem/v1/ConvolutionDirection';
import type { Long } from '@grpc/proto-loader';

export interface ConvolutionDescriptor {
  'input_dims'?: (number | string | Long)[];
  'filter_dims'?: (number | string | Long)[];
  'pads'?: (number)[];
  'strides'?: (number)[];
  'dilations'?: (number)[];
  'data_type'?: (_tensormem_v1_DataType);
  'direction'?: (_tensormem_v1_ConvolutionDirection);
  'group_count'?: (number);
}

export interface ConvolutionDescriptor__Output {
  'input_dims': (number)[];
  'filter_dims': (number)[];
  'pads': (number)[];
  'strides': (number)[];
  'dilations': (number)[];
  'data_type': (_tensormem_v1_DataType__Output);
  'direction': (_tensormem_v1_ConvolutionDirection__Output);
  'group_count': (number);
}
