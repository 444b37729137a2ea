#!/usr/bin/env bash
# Runs tests against a sanitizer build of the addon (a check for the native code, not run by CI):
# builds it with TENSORMEM_SANITIZE (native/CMakeLists.txt) into build-<mode>/ (build-<mode>-fakecuda/
# with --fake-cuda: the cuda backend on native/test/fake_cuda_runtime.cc), points TENSORMEM_NATIVE_ADDON
# at it and runs vitest with the sanitizer runtime preloaded (node itself is not instrumented, so the
# runtime must come first) into the test forks and every process they start, daemons included, but not
# into vitest's main process (scripts/sanitizer.vitest.config.mts). Reports go to
# $SANITIZER_LOG_DIR (default /tmp/tensormem-<mode>-logs), one file per process that found something;
# the script lists this run's (earlier runs' reports there are left alone and not counted) and exits 1
# when there are any, vitest's status otherwise.
#
#   scripts/sanitizer-check.sh [--mode asan|tsan] [--fake-cuda] <test files...> [more vitest arguments]
#
# asan: AddressSanitizer + UndefinedBehaviorSanitizer, leak checking off (Node and V8 keep memory to
# exit on purpose). tsan: ThreadSanitizer; V8's and libuv's own threads are not instrumented, so
# expect reports that only involve them (look for tensormem:: frames). Expected test failures: ones that
# compare addonPath() with build/, and timing-sensitive cases under the slowdown.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=asan
fake_cuda=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --mode) mode="$2"; shift 2 ;;
    --fake-cuda) fake_cuda=1; shift ;;
    *) break ;;
  esac
done
case "$mode" in
  asan) sanitize=address,undefined; preload="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)" ;;
  tsan) sanitize=thread; preload="$(gcc -print-file-name=libtsan.so)" ;;
  *) echo "sanitizer-check: --mode is asan or tsan, not '$mode'" >&2; exit 2 ;;
esac
out="build-$mode"
cmake_args=(--CDTENSORMEM_SANITIZE="$sanitize")
if [[ $fake_cuda == 1 ]]; then
  out="$out-fakecuda"
  cmake_args+=(--CDTENSORMEM_FAKE_CUDA=ON)
  export FAKE_CUDA_ABORT_ON_MISUSE=1 FAKE_CUDA_SHARED_USAGE="/fake-cuda-usage-$$" FAKE_CUDA_SHM_PREFIX="/fake-cuda-check-$$-"
  trap 'rm -f "/dev/shm${FAKE_CUDA_SHARED_USAGE}" "/dev/shm${FAKE_CUDA_SHM_PREFIX}"*' EXIT
else
  cmake_args+=(--CDTENSORMEM_CUDA=OFF)
fi
npx cmake-js compile --directory native --out "$out" "${cmake_args[@]}" >/dev/null
npm run build:ts >/dev/null
logs="${SANITIZER_LOG_DIR:-/tmp/tensormem-$mode-logs}"
mkdir -p "$logs"
# The files there now, with their times: only the others (new, or written again) are this run's. An
# earlier run's reports stay in the folder (the default is the same for every run of a mode) and
# failed every clean run after it.
files_in_logs() { find "$logs" -maxdepth 1 -type f -printf '%T@ %p\n' | sort; }
before="$(files_in_logs)"
export TENSORMEM_NATIVE_ADDON="$PWD/$out/Release/tensormem_native.node"
export ASAN_OPTIONS="detect_leaks=0:log_path=$logs/asan${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:log_path=$logs/ubsan${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export TSAN_OPTIONS="log_path=$logs/tsan:second_deadlock_stack=1${TSAN_OPTIONS:+:$TSAN_OPTIONS}"
status=0
SANITIZER_PRELOAD="$preload" npx vitest run --config scripts/sanitizer.vitest.config.mts --pool=forks --no-file-parallelism "$@" || status=$?
reports="$(comm -13 <(printf '%s\n' "$before") <(files_in_logs) | cut -d' ' -f2-)"
if [[ -n "$reports" ]]; then
  echo "sanitizer-check: reports of this run in $logs:" >&2
  xargs -d '\n' ls -l <<<"$reports" >&2
  exit 1
fi
exit "$status"
