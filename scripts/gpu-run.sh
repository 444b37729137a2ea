#!/usr/bin/env bash
# Runs the conformance and GPU suites (test/conformance, test/gpu, B7 included) on a GPU machine that
# may have no Node and no network: what is missing comes from .gpu-kit/ (made by scripts/gpu-kit.sh on a
# machine with the CUDA toolkit). Results go to $OUT when it is set, else .gpu-kit/results:
#   vitest.log, vitest.json   the run, per test; cuda cases that skipped say why
#   b7.json                   the B7 figures (pool vs cudaMalloc, SyncArray vs pinned cudaMemcpy)
#   machine.txt               nvidia-smi, driver, Node, the addon's CUDA runtime
# Exit status: vitest's, or 3 when the cuda backend cannot start (the suites would only skip).
#
#   scripts/gpu-run.sh [more vitest arguments]
set -uo pipefail
cd "$(dirname "$0")/.."
kit=.gpu-kit
out=${OUT:-$kit/results}
mkdir -p "$out"

# xz, or Python's lzma where xz-utils is absent.
unxz_to() {
  if command -v xz >/dev/null; then xz -dc "$1" > "$2"
  else python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$1" "$2"; fi
}

if ! command -v node >/dev/null; then
  [ -s "$kit/node.xz" ] || { echo "gpu-run: no node on PATH and no $kit/node.xz (run scripts/gpu-kit.sh where Node and the CUDA toolkit are)" >&2; exit 2; }
  mkdir -p "$kit/bin"
  unxz_to "$kit/node.xz" "$kit/bin/node" && chmod +x "$kit/bin/node"
  export PATH="$PWD/$kit/bin:$PATH"
fi
if [ -s "$kit/payload.tar.xz" ]; then
  unxz_to "$kit/payload.tar.xz" "$kit/payload.tar" && tar -xf "$kit/payload.tar" && rm -f "$kit/payload.tar"
fi
[ -d node_modules ] && [ -f dist/src/bin/tensormemd.js ] && [ -f build/Release/tensormem_native.node ] \
  || { echo "gpu-run: node_modules, dist/ or the addon is missing (no $kit/payload.tar.xz?)" >&2; exit 2; }

{
  echo "date: $(date -u +%FT%TZ)"
  echo "host: $(uname -srm), $(nproc) cores"
  echo "node: $(node --version) ($(command -v node))"
  if command -v nvidia-smi >/dev/null; then nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv; else echo "nvidia-smi: not on PATH"; fi
  node -e "const m={exports:{}};process.dlopen(m,'build/Release/tensormem_native.node');console.log('addon:', JSON.stringify(m.exports.buildInfo()));
    try { const b=m.exports.createBackend('cuda',{}); for (let i=0;i<b.deviceCount();i++) console.log('cuda device', i, JSON.stringify(b.deviceInfo(i))); }
    catch (e) { console.log('cuda backend:', e.code, e.message); process.exitCode=3 }"
} 2>&1 | tee "$out/machine.txt"
cuda_status=${PIPESTATUS[0]}

export TENSORMEM_GPU_RESULTS="$out"
export TENSORMEM_SKIP_INTEROP=1
node node_modules/vitest/vitest.mjs run test/conformance test/gpu \
  --reporter=default --reporter=json --outputFile.json="$out/vitest.json" "$@" 2>&1 | tee "$out/vitest.log"
status=${PIPESTATUS[0]}
if [ -f "$out/vitest.json" ]; then
  node -e 'const r=require(process.argv[1]);console.log(`gpu-run: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + r.numTodoTests} skipped or todo`)' "$(cd "$out" && pwd)/vitest.json"
fi
[ -f "$out/b7.json" ] && cat "$out/b7.json"
if [ "$status" -eq 0 ] && [ "$cuda_status" -eq 3 ]; then
  echo "gpu-run: the cuda backend did not start here, so every GPU case skipped (see machine.txt)" >&2
  exit 3
fi
exit "$status"
