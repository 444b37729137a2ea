/**
 * cuDNN workspace sizes on a real GPU (DESIGN.md §4): the scratch AcquireCudnnWorkspace hands out for a
 * convolution descriptor and CudnnAlgoMode matches what cuDNN itself asks for. Not written yet: the
 * RPC is being built in its own issue.
 */
import { describe, it } from 'vitest';
import { probeCuda, skipNote } from './cuda-device';

const cuda = probeCuda();

describe(`cuDNN workspace sizes${skipNote(cuda)}`, () => {
  it.todo('PREFER_FASTEST sizes the scratch as cudnnGetConvolutionForwardWorkspaceSize does for the fastest algorithm that fits (needs AcquireCudnnWorkspace)');
  it.todo('NO_WORKSPACE is zero bytes and USER_SPECIFIED the requested bytes, grow-only per lease and device (needs AcquireCudnnWorkspace)');
});
