#!/usr/bin/env bash
# Runs the cuda backend without a GPU: builds the addon with -DTENSORMEM_FAKE_CUDA=ON into build-fakecuda/
# (src/cuda_backend.cc linked against native/test/fake_cuda_runtime.cc, a fake CUDA runtime that checks
# the Runtime API's preconditions: device pointers are PROT_NONE to the host, the current device is per
# thread, cudaFree/cudaIpcGetMemHandle take only allocation bases, ...), then runs test/conformance and
# test/gpu against it through TENSORMEM_NATIVE_ADDON, on one and on two fake devices. What a GPU adds
# (timing, asynchrony, the driver) it cannot check: B7 is left out (its targets compare with a real
# cudaMalloc), and cuDNN skips. Needs the CUDA toolkit's headers (no GPU, no driver). Exit: vitest's.
#
#   scripts/fake-cuda-check.sh [more vitest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
npx cmake-js compile --directory native --out build-fakecuda --CDTENSORMEM_FAKE_CUDA=ON >/dev/null
npm run build:ts >/dev/null
export TENSORMEM_NATIVE_ADDON="$PWD/build-fakecuda/Release/tensormem_native.node"
export FAKE_CUDA_ABORT_ON_MISUSE=1
export FAKE_CUDA_SHARED_USAGE="/fake-cuda-usage-$$"
# Allocations are shared-memory objects; those of processes that die (aborts, SIGKILL) stay in /dev/shm.
export FAKE_CUDA_SHM_PREFIX="/fake-cuda-check-$$-"
trap 'rm -f "/dev/shm${FAKE_CUDA_SHARED_USAGE}" "/dev/shm${FAKE_CUDA_SHM_PREFIX}"*' EXIT
files=(test/conformance test/gpu/pool-caps.test.ts test/gpu/mirrors.test.ts test/gpu/cuda-ipc.test.ts test/gpu/cudnn-workspace.test.ts test/gpu/host-register.test.ts test/gpu/device-info-cost.test.ts test/gpu/device-lost.test.ts test/gpu/device-release.test.ts)
for devices in 1 2; do
  echo "fake-cuda-check: FAKE_CUDA_DEVICES=$devices"
  FAKE_CUDA_DEVICES=$devices npx vitest run "${files[@]}" --no-file-parallelism "$@"
done
