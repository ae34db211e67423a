#!/bin/bash
# tests/gpu/pack.sh: builds here (this machine: nvcc, GLib and friends, no GPU) what
# tests/gpu/run.sh needs, and packs it into gpu-pack/ for a GPU machine that has the CUDA
# driver, cuBLAS and PyTorch but not the GLib / json-glib / nifti / OpenBLAS libraries:
#   gpu-pack/build-gpu/...  the programs, the CUDA module and the phantom samples, at the
#                           same paths as in build-gpu (the binaries have their build
#                           root compiled in: run.sh links /work/main to the checkout)
#   gpu-pack/lib/           the shared libraries they need beyond glibc, libstdc++ and CUDA
# both in gpu-pack/pack.tar.xz (run.sh unpacks it), with gpu-pack/source-root.
# Then, on the GPU machine: tests/gpu/run.sh (carry gpu-pack). gpu-pack/ is git-ignored
# through .git/info/exclude.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=$ROOT/build-gpu
PACK=$ROOT/gpu-pack
TARGETS=(src/engine/cuda/libcs-backend-cuda.so tests/engine/test-backend-ops
         tests/gpu/test-cuda-backend tests/gpu/test-cuda-model bench/cs-bench-model
         src/cli/cordscope-cli data/samples/phantom-0000.nii.gz)

grep -qx '/gpu-pack/' "$ROOT/.git/info/exclude" 2>/dev/null \
  || echo '/gpu-pack/' >> "$ROOT/.git/info/exclude"
if [ ! -f "$BUILD/build.ninja" ]; then
  meson setup "$BUILD" "$ROOT" -Dcuda=enabled -Dui=disabled --buildtype=release
fi
ninja -C "$BUILD" -j2 "${TARGETS[@]}"

rm -rf "$PACK"
mkdir -p "$PACK/lib"
for t in "${TARGETS[@]}"; do
  [ "$t" = data/samples/phantom-0000.nii.gz ] && continue
  mkdir -p "$PACK/build-gpu/$(dirname "$t")"
  cp "$BUILD/$t" "$PACK/build-gpu/$t"
  strip --strip-unneeded "$PACK/build-gpu/$t"
done
mkdir -p "$PACK/build-gpu/data/samples"
cp "$BUILD"/data/samples/phantom-* "$PACK/build-gpu/data/samples/"

# shared libraries of the programs, except what every Linux (glibc, libstdc++, libgcc) and
# every CUDA machine (driver, runtime, cuBLAS) has
for t in "${TARGETS[@]}"; do
  [ "$t" = data/samples/phantom-0000.nii.gz ] && continue
  ldd "$BUILD/$t" | awk '/=> \// { print $3 }'
done | sort -u | while read -r lib; do
  case "$(basename "$lib")" in
    libc.so*|libm.so*|libpthread.so*|libdl.so*|librt.so*|ld-linux*|libstdc++.so*|libgcc_s.so*) ;;
    libcuda.so*|libcudart.so*|libcublas*.so*) ;;
    *) cp -L "$lib" "$PACK/lib/" ;;
  esac
done
echo "$ROOT" > "$PACK/source-root"
# compressed (OpenBLAS alone is 36 MB): what travels to the GPU machine has a size limit
tar -C "$PACK" -cJf "$PACK/pack.tar.xz" build-gpu lib
rm -rf "$PACK/build-gpu" "$PACK/lib"
du -sh "$PACK"
