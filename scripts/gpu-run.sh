#!/usr/bin/env bash
# Runs the conformance and GPU suites (test/conformance, test/gpu, B7 included) on a GPU machine that
# may have no Node and no network: what is missing comes from .gpu-kit/ (made by scripts/gpu-kit.sh on a
# machine with the CUDA toolkit). Results go to $OUT when it is set, else build/gpu-results:
#   vitest.log, vitest.json   the run, per test; cuda cases that skipped say why (also printed at the end)
#   b7.json                   the B7 figures (pool vs cudaMalloc, SyncArray vs pinned cudaMemcpy)
#   machine.txt               nvidia-smi, driver, Node, cuDNN, the addon's CUDA runtime
# The kit's Node is used whenever .gpu-kit/node.xz exists (a node already on PATH is used only without it).
# What the run unpacks or writes goes to build/ (git-ignored, never carried), not into .gpu-kit/, the
# folder the device tool carries: an unpacked Node there (94 MiB) would put the next call past its 64 MiB.
# cuDNN: TENSORMEM_CUDNN_LIBRARY if set, else the first libcudnn.so.9 that ldconfig -p lists, that python3's
# nvidia.cudnn package holds (the nvidia-cudnn wheel of a PyTorch venv) or that find sees under /opt /usr
# /root /home; its folder is put first on LD_LIBRARY_PATH so that its sub-libraries (libcudnn_cnn.so.9, ...)
# load too.
# vitest runs one test file at a time (the GPU cases read the driver's free memory; B7 times) and is
# stopped after GPU_RUN_TIMEOUT seconds (default 420), so that the summary and $OUT files still come.
# The addon probed (machine.txt) is the one the tests load: TENSORMEM_NATIVE_ADDON when set (a rehearsal on
# the fake CUDA runtime, scripts/fake-cuda-check.sh), else the kit's build/Release/tensormem_native.node.
# Exit status: vitest's (124 or 137: stopped by the time limit); 2 when the kit is missing or does not
# unpack, Node does not run, or the addon does not load here (vitest is then not run); 3 when vitest passed
# but the cuda backend did not start (all GPU cases skipped).
#
#   scripts/gpu-run.sh [more vitest arguments]
set -uo pipefail
SECONDS=0
cd "$(dirname "$0")/.." || exit 2
kit=.gpu-kit
unpacked=build/gpu-kit
out=${OUT:-build/gpu-results}
mkdir -p "$out" || exit 2
export NO_COLOR=1

fail() {
  echo "gpu-run: $*" >&2
  exit 2
}

# Unpacks the xz file $1 to $2, with xz or Python's lzma where xz-utils is absent; fails on a truncated or
# corrupt file (and removes what it wrote).
unxz_to() {
  if command -v xz >/dev/null; then
    xz -dc -- "$1" > "$2"
  elif command -v python3 >/dev/null; then
    python3 -c 'import lzma, shutil, sys
with lzma.open(sys.argv[1]) as src, open(sys.argv[2], "wb") as dst: shutil.copyfileobj(src, dst)' "$1" "$2"
  else
    echo "gpu-run: neither xz nor python3 is here to unpack $1" >&2
    false
  fi || { rm -f "$2"; return 1; }
}

if [ -e "$kit/node.xz" ]; then
  want=$(cat "$kit/node.version" 2>/dev/null)
  if [ -x "$unpacked/bin/node" ] && [ -n "$want" ] && [ "$("$unpacked/bin/node" --version 2>/dev/null)" = "v$want" ]; then
    : # unpacked by an earlier run
  else
    mkdir -p "$unpacked/bin" || fail "cannot create $unpacked/bin"
    part="$unpacked/bin/node.part.$$"
    if unxz_to "$kit/node.xz" "$part" && chmod +x "$part" && "$part" --version >/dev/null; then
      mv -f "$part" "$unpacked/bin/node" || fail "cannot move the unpacked Node to $unpacked/bin/node"
    else
      rm -f "$part"
      fail "$kit/node.xz did not unpack to a Node that runs (truncated or corrupt?): rebuild the kit with scripts/gpu-kit.sh and carry it again"
    fi
  fi
  export PATH="$PWD/$unpacked/bin:$PATH"
elif ! command -v node >/dev/null; then
  fail "no $kit/node.xz and no node on PATH: run scripts/gpu-kit.sh where Node and the CUDA toolkit are, and carry .gpu-kit"
fi
node_version=$(node --version 2>&1) || fail "node ($(command -v node)) does not run here: $node_version"
case $node_version in
  v2[0-9].* | v[3-9][0-9].*) ;;
  *) fail "node $node_version ($(command -v node)) is older than Node 20" ;;
esac

if [ -e "$kit/payload.tar.xz" ]; then
  mkdir -p "$unpacked" || fail "cannot create $unpacked"
  part="$unpacked/payload.tar.$$"
  if ! { unxz_to "$kit/payload.tar.xz" "$part" && tar -xf "$part"; }; then
    rm -f "$part"
    fail "$kit/payload.tar.xz did not unpack (truncated or corrupt?): rebuild the kit with scripts/gpu-kit.sh and carry it again"
  fi
  rm -f "$part"
fi
if ! { [ -f node_modules/vitest/vitest.mjs ] && [ -f dist/src/bin/tensormemd.js ] && [ -f build/Release/tensormem_native.node ]; }; then
  fail "node_modules, dist/ or the addon is missing (no $kit/payload.tar.xz? run scripts/gpu-kit.sh and carry .gpu-kit)"
fi

# cuDNN, for test/gpu/cudnn-workspace.test.ts and the daemons it starts.
cudnn=${TENSORMEM_CUDNN_LIBRARY:-}
cudnn_from="TENSORMEM_CUDNN_LIBRARY"
if [ -z "$cudnn" ]; then
  cudnn=$(ldconfig -p 2>/dev/null | awk '$1 == "libcudnn.so.9" && /x86-64/ { print $NF; exit }')
  cudnn_from="ldconfig -p"
fi
if [ -z "$cudnn" ] && command -v python3 >/dev/null; then
  # The nvidia-cudnn wheel of python3's environment (on the lent machines, the PyTorch venv's), without
  # importing PyTorch: nvidia.cudnn is a namespace package of folders.
  cudnn=$(timeout 30 python3 -c 'import glob, os, nvidia.cudnn as m
print(next(iter(sorted(p for d in m.__path__ for p in glob.glob(os.path.join(d, "lib", "libcudnn.so.9")))), ""))' 2>/dev/null)
  cudnn_from="python3's nvidia.cudnn ($(command -v python3))"
fi
if [ -z "$cudnn" ]; then
  cudnn=$(timeout 60 find /opt /usr /root /home -maxdepth 12 -name libcudnn.so.9 -print -quit 2>/dev/null)
  cudnn_from="find /opt /usr /root /home"
fi
if [ -n "$cudnn" ] && [ -e "$cudnn" ]; then
  cudnn_dir=$(cd "$(dirname "$cudnn")" && pwd)
  export TENSORMEM_CUDNN_LIBRARY="$cudnn"
  export TENSORMEM_TEST_CUDNN_LIBRARY="${TENSORMEM_TEST_CUDNN_LIBRARY:-$cudnn}"
  export LD_LIBRARY_PATH="$cudnn_dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  # A pip wheel (.../site-packages/nvidia/cudnn/lib): cuDNN 9's sub-libraries may load cuBLAS or NVRTC
  # from the sibling wheels' folders (nvidia/cublas/lib, ...; CUDA 13's wheels share nvidia/cu13/lib),
  # so those go on the path too.
  case "$cudnn_dir" in
    */nvidia/cudnn/lib)
      for sibling in "${cudnn_dir%/cudnn/lib}"/*/lib; do
        if [ -d "$sibling" ] && [ "$sibling" != "$cudnn_dir" ]; then LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$sibling"; fi
      done
      ;;
  esac
  cudnn_note="cudnn: $cudnn (from $cudnn_from); TENSORMEM_CUDNN_LIBRARY set, $cudnn_dir first on LD_LIBRARY_PATH"
else
  cudnn_note="cudnn: no libcudnn.so.9 (${cudnn:+$cudnn does not exist; }ldconfig -p, python3's nvidia.cudnn, find /opt /usr /root /home): the cuDNN cases will skip"
fi
setup_seconds=$SECONDS

# The addon the tests load: TENSORMEM_NATIVE_ADDON when set (a check build, as src/native/addon.ts reads
# it; the fake CUDA runtime in a rehearsal), else the kit's.
addon=${TENSORMEM_NATIVE_ADDON:-build/Release/tensormem_native.node}
addon_note="$addon${TENSORMEM_NATIVE_ADDON:+ (TENSORMEM_NATIVE_ADDON)}"
if command -v nvidia-smi >/dev/null; then driver_seen=nvidia-smi
elif [ -e /dev/nvidiactl ] || [ -e /proc/driver/nvidia/version ]; then driver_seen=files
else driver_seen=none
fi
# The probe's status: 0 the cuda backend started, 3 it did not, 4 the addon does not load here.
{
  echo "date: $(date -u +%FT%TZ)"
  echo "host: $(uname -srm), $(nproc) cores"
  echo "node: $node_version ($(command -v node))"
  if [ "$driver_seen" = nvidia-smi ]; then nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv; else echo "nvidia-smi: not on PATH"; fi
  echo "driver files: /proc/driver/nvidia/version $([ -e /proc/driver/nvidia/version ] && echo present || echo absent), /dev/nvidiactl $([ -e /dev/nvidiactl ] && echo present || echo absent)"
  echo "$cudnn_note"
  echo "setup: ${setup_seconds}s (the kit unpacked, cuDNN looked for)"
  echo "addon file: $addon_note"
  ADDON="$addon" DRIVER_SEEN="$driver_seen" node -e "const m={exports:{}};
    try { process.dlopen(m, require('path').resolve(process.env.ADDON)); } catch (e) { console.log('addon: does not load:', e.message); process.exit(4); }
    console.log('addon:', JSON.stringify(m.exports.buildInfo()));
    if (process.env.TENSORMEM_CUDNN_LIBRARY) { try { console.log('cudnn load:', JSON.stringify(m.exports.cudnnLoad([process.env.TENSORMEM_CUDNN_LIBRARY]))); } catch (e) { console.log('cudnn load:', e.message); } }
    try { const b=m.exports.createBackend('cuda',{}); for (let i=0;i<b.deviceCount();i++) console.log('cuda device', i, JSON.stringify(b.deviceInfo(i))); }
    catch (e) { console.log('cuda backend:', e.code, e.message); process.exitCode=3;
      if (!m.exports.buildInfo().cuda) console.log('cuda backend: this addon was built without CUDA (no nvcc where the kit was made): every GPU case will skip');
      else if (process.env.DRIVER_SEEN === 'none') console.log('cuda backend: no NVIDIA driver here (no nvidia-smi, no /dev/nvidiactl, no /proc/driver/nvidia): not the GPU machine? every GPU case will skip');
      else if (/InsufficientDriver/.test(e.message)) console.log('cuda backend: the addon links the CUDA', Math.floor(m.exports.buildInfo().cudaRuntimeVersion / 1000), 'runtime statically, which needs an NVIDIA driver >= 580 for CUDA 13' + (process.env.DRIVER_SEEN === 'nvidia-smi' ? ' (driver_version above)' : ' (nvidia-smi is not on PATH to say which driver this is)') + ': every GPU case will skip'); }"
} 2>&1 | tee "$out/machine.txt"
cuda_status=${PIPESTATUS[0]}
if [ "$cuda_status" -eq 4 ]; then
  # Every conformance and GPU case needs the addon: vitest would only fail them all.
  fail "the addon $addon_note does not load here (machine.txt has the loader's message: a glibc or libstdc++ older than the build machine's, or a truncated file?); vitest not run"
fi

export TENSORMEM_GPU_RESULTS="$out"
export TENSORMEM_SKIP_INTEROP=1
limit=${GPU_RUN_TIMEOUT:-420}
vitest_start=$SECONDS
rm -f "$out/vitest.json" "$out/b7.json"
timeout -k 15 "$limit" node node_modules/vitest/vitest.mjs run test/conformance test/gpu --no-file-parallelism \
  --reporter=default --reporter=json --outputFile.json="$out/vitest.json" "$@" 2>&1 | tee "$out/vitest.log"
status=${PIPESTATUS[0]}
echo "gpu-run: vitest took $((SECONDS - vitest_start))s, ${SECONDS}s since gpu-run started" | tee -a "$out/vitest.log"
if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
  echo "gpu-run: vitest ran past GPU_RUN_TIMEOUT=${limit}s and was stopped (status $status); vitest.log has what it printed" | tee -a "$out/vitest.log" >&2
fi

[ -f "$out/b7.json" ] && cat "$out/b7.json"
if [ -f "$out/vitest.json" ]; then
  # The skipped and todo cases with their suites: the reason is in the suite's (or the case's) title.
  # shellcheck disable=SC2016 # JavaScript template strings, not shell
  node -e 'const path = require("path"); const r = require(process.argv[1]); const groups = new Map();
    for (const file of r.testResults) for (const t of file.assertionResults) {
      if (t.status === "passed" || t.status === "failed") continue;
      const key = [path.relative(process.cwd(), file.name), ...t.ancestorTitles].join(" > ");
      if (!groups.has(key)) groups.set(key, []);
      groups.get(key).push(`${t.status}: ${t.title}`);
    }
    if (groups.size > 0) console.log("gpu-run: skipped or todo, by suite:");
    for (const [suite, cases] of groups) {
      console.log(`  ${suite} (${cases.length})`);
      for (const c of cases) console.log(`    ${c}`);
    }
    console.log(`gpu-run: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + r.numTodoTests} skipped or todo`)' \
    "$(cd "$out" && pwd)/vitest.json"
else
  echo "gpu-run: no $out/vitest.json (vitest did not finish)" >&2
fi
if [ "$status" -eq 0 ] && [ "$cuda_status" -eq 3 ]; then
  echo "gpu-run: the cuda backend did not start here, so every GPU case skipped (see machine.txt)" >&2
  exit 3
fi
exit "$status"
