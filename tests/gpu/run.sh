#!/bin/bash
# tests/gpu/run.sh: the CUDA backend's proof, in one script, on a GPU machine.
#
#   tests/gpu/run.sh            (from anywhere; logs in build-gpu-results/, and the summary,
#                                the full log and the JSON results also in $OUT when set)
#
# 1. Build: natively (meson setup build-gpu -Dcuda=enabled) when the machine has meson, nvcc
#    and the GLib/json-glib/nifti/OpenBLAS development files; else from gpu-pack/, made
#    beforehand on the build machine by tests/gpu/pack.sh and carried along.
# 2. Without a usable GPU: checks that the build refuses "cuda" cleanly, prints why it
#    skips, exits 0.
#    (The kernels' logic is also checked without a GPU, in the normal test suite:
#    test-backend-ops-cuda-emu runs them translated to C++ on the CPU; see emu/.)
# 3. With one: op-by-op CPU vs CUDA parity (tests/engine/test-backend-ops: every op through
#    the backend memory API, |cuda - cpu| <= atol + rtol |cpu| per element, e.g. GEMM
#    1e-5 + 1e-5, attention 2e-6 + 1e-5, LayerNorm backward 1e-5 + 1e-4); whole-model parity
#    (tests/gpu/test-cuda-model: outputs, loss, every gradient, 10 Adam steps; tolerances
#    in its header); detection scores on the bundled phantoms within 1e-3 (cordscope-cli
#    detect --backend cpu|cuda); the benchmark against the PyTorch reference on the same
#    GPU (tests/gpu/gpu-bench.py: K=10 Monte-Carlo ms per slice, training images/s at
#    batch 10, fraction of fp32 peak) and the GPU time per kernel (gpu-profile.py, ncu);
#    DESIGN.md's full adaptation (200 epochs, 375 phantom slices), timed, for at most
#    CS_GPU_ADAPT_S seconds (150); last, only while CS_GPU_BUDGET (420 s from the start)
#    lasts, compute-sanitizer memcheck and racecheck: a device call is short, and the
#    figures come first.
# Ends with a summary; exit status non-zero when a parity check fails.
# CS_GPU_USE_PACK=1 uses gpu-pack/ even where a native build would work.
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
BUILD=$ROOT/build-gpu
RESULTS=$ROOT/build-gpu-results
TARGETS=(src/engine/cuda/libcs-backend-cuda.so tests/engine/test-backend-ops
         tests/gpu/test-cuda-backend tests/gpu/test-cuda-model bench/cs-bench-model
         src/cli/cordscope-cli data/samples/phantom-0000.nii.gz)
SUMMARY=()
FAILED=0

mkdir -p "$RESULTS"
# with $OUT (the device tool), the log and the summary grow there as the steps run, so a
# call stopped at its time limit still brings back what was done
LOG=$( [ -n "${OUT:-}" ] && echo "$OUT/gpu-run.log" || echo "$RESULTS/gpu-run.log")
LIVE_SUMMARY=${OUT:+$OUT/summary-so-far.txt}
: > "$LOG"
say () { echo "$*" | tee -a "$LOG"; }
note () { SUMMARY+=("$*"); say "$*"; [ -z "$LIVE_SUMMARY" ] || echo "$*" >> "$LIVE_SUMMARY"; }
fail () { FAILED=1; note "FAIL: $*"; }
# the device tool brings back at most 8 files from $OUT: the summary, the log, the results
finish () {
  [ -n "${OUT:-}" ] && [ -d "$OUT" ] || return 0
  rm -f "$LIVE_SUMMARY"
  for f in summary.txt bench.json detect-cpu.json detect-cuda.json op-parity.log \
           model-parity.log; do
    [ -f "$RESULTS/$f" ] && cp "$RESULTS/$f" "$OUT/"
  done
  return 0
}
# step NAME SECONDS CMD...: runs CMD with a time limit, output to the log and NAME.log
step () {
  local name=$1 limit=$2; shift 2
  say "== $name: $*"
  timeout "$limit" "$@" > "$RESULTS/$name.log" 2>&1
  local rc=$?
  cat "$RESULTS/$name.log" >> "$LOG"
  [ $rc -eq 124 ] && say "   (stopped after ${limit}s)"
  return $rc
}

# ---------------------------------------------------------------- GPU?
GPU=""
if command -v nvidia-smi > /dev/null 2>&1 && nvidia-smi -L > /dev/null 2>&1; then
  GPU=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | head -1)
fi
note "machine: $(uname -m), $(nproc) cores; GPU: ${GPU:-none}"

# ---------------------------------------------------------------- build
LIBPATH=""
native_ok () {
  [ -z "${CS_GPU_USE_PACK:-}" ] || return 1 # force the gpu-pack path (to test it)
  command -v meson > /dev/null && command -v ninja > /dev/null \
    && command -v pkg-config > /dev/null \
    && { command -v nvcc > /dev/null || [ -x /usr/local/cuda/bin/nvcc ]; } \
    && pkg-config --exists glib-2.0 gio-2.0 gmodule-2.0 json-glib-1.0 openblas zlib \
    && [ -e /usr/include/nifti/nifti2_io.h ]
}
if native_ok && { [ ! -L "$BUILD" ] || [ ! -d gpu-pack ]; }; then
  [ -L "$BUILD" ] && rm "$BUILD"
  if [ ! -f "$BUILD/build.ninja" ]; then
    step meson-setup 300 meson setup "$BUILD" -Dcuda=enabled -Dui=disabled --buildtype=release \
      || { fail "meson setup failed (see $RESULTS/meson-setup.log)"; exit 1; }
  fi
  step build 900 ninja -C "$BUILD" "${TARGETS[@]}" \
    || { fail "build failed (see $RESULTS/build.log)"; exit 1; }
  note "build: native, $BUILD"
elif [ -f gpu-pack/pack.tar.xz ] || [ -d gpu-pack/build-gpu ]; then
  [ -d gpu-pack/build-gpu ] || tar -C gpu-pack -xJf gpu-pack/pack.tar.xz \
    || { fail "cannot unpack gpu-pack/pack.tar.xz"; exit 1; }
  # the programs have their build root compiled in: put this checkout where they expect it
  PACK_ROOT=$(cat gpu-pack/source-root)
  if [ "$PACK_ROOT" != "$ROOT" ]; then
    if [ -e "$PACK_ROOT" ] && [ "$(cd "$PACK_ROOT" && pwd -P)" != "$(pwd -P)" ]; then
      fail "gpu-pack was built for $PACK_ROOT, which exists here and is not this checkout"
      exit 1
    fi
    mkdir -p "$(dirname "$PACK_ROOT")" && ln -sfn "$ROOT" "$PACK_ROOT"
  fi
  [ -e "$BUILD" ] && [ ! -L "$BUILD" ] && mv "$BUILD" "$BUILD.native-$$"
  ln -sfn "$ROOT/gpu-pack/build-gpu" "$BUILD"
  # only the libraries this machine lacks, so its own (newer) ones win
  LIBS=/tmp/cs-gpu-libs; rm -rf "$LIBS"; mkdir -p "$LIBS"
  for lib in gpu-pack/lib/*.so*; do
    ldconfig -p | grep -qE "^[[:space:]]+$(basename "$lib") " || ln -s "$ROOT/$lib" "$LIBS/"
  done
  LIBPATH=$LIBS
  note "build: prebuilt gpu-pack (tests/gpu/pack.sh), libraries added: $(ls "$LIBS" | tr '\n' ' ')"
else
  fail "cannot build here (needs meson, nvcc and GLib/json-glib/nifti/OpenBLAS headers) and no" \
       "gpu-pack/: run tests/gpu/pack.sh on the build machine and carry gpu-pack"
  exit 1
fi
MODULE=$BUILD/src/engine/cuda/libcs-backend-cuda.so
# cuBLAS: the module's rpath names the build machine's toolkit; else look in the usual places
if env LD_LIBRARY_PATH="$LIBPATH" ldd "$MODULE" | grep -q "libcublas.*not found"; then
  NVPKG=$(python3 -c 'import nvidia, os; print(list(nvidia.__path__)[0])' 2>/dev/null)
  CUBLAS=$(find /usr/local/cuda*/lib64 /usr/local/cuda*/targets/*/lib /usr/lib/x86_64-linux-gnu \
             ${NVPKG:+"$NVPKG"} -name 'libcublas.so.13' 2>/dev/null | head -1)
  if [ -n "$CUBLAS" ]; then
    LIBPATH=$LIBPATH${LIBPATH:+:}$(dirname "$CUBLAS")
    note "cuBLAS from $(dirname "$CUBLAS")"
  else
    note "libcublas.so.13 not found on this machine: the module will not load"
  fi
fi
RUN=(env)
[ -n "$LIBPATH" ] && RUN=(env "LD_LIBRARY_PATH=$LIBPATH${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}")

# ---------------------------------------------------------------- no GPU: check and skip
step backend-open 60 "${RUN[@]}" "$BUILD/tests/gpu/test-cuda-backend"
rc=$?
if [ -z "$GPU" ] || [ $rc -ne 77 ]; then
  if [ $rc -eq 0 ]; then
    WHY=$(grep "cuda refused" "$RESULTS/backend-open.log" | head -1)
    if [ -n "$GPU" ]; then
      fail "a GPU is present ($GPU) but the CUDA backend does not open: $WHY"
    else
      note "SKIP: no GPU on this machine; the build is fine and refuses cuda cleanly: $WHY"
    fi
  else
    fail "test-cuda-backend exited $rc (see $RESULTS/backend-open.log)"
  fi
  printf '\n==== summary\n'; printf '%s\n' "${SUMMARY[@]}" | tee "$RESULTS/summary.txt"
  finish
  exit $FAILED
fi
note "CUDA backend opens on $GPU"

# ---------------------------------------------------------------- op parity
if step op-parity 120 "${RUN[@]}" "$BUILD/tests/engine/test-backend-ops" \
   && grep -q "^ok .*/engine/backend-ops/cuda$" "$RESULTS/op-parity.log"; then
  note "op parity (fp32): all ops within tolerance; worst per op (fraction of tolerance):"
  grep "^# cuda" "$RESULTS/op-parity.log" | sed 's/^# cuda /   /; s/values within tolerance//' \
    | tee -a "$LOG" > "$RESULTS/op-parity-summary.txt"
  SUMMARY+=("$(awk '{printf "   %s", $0} END {print ""}' "$RESULTS/op-parity-summary.txt")")
else
  fail "op parity (see $RESULTS/op-parity.log):" \
       "$(grep -m3 -E 'ERROR|not ok|SKIP' "$RESULTS/op-parity.log" | tr '\n' ' ')"
fi
# ---------------------------------------------------------------- model parity
if step model-parity 200 "${RUN[@]}" "$BUILD/tests/gpu/test-cuda-model"; then
  note "model parity: $(grep -E ': (loss|gradients|after 10)' "$RESULTS/model-parity.log" \
                        | tr '\n' ';')"
else
  fail "model parity (see $RESULTS/model-parity.log):" \
       "$(grep -m5 FAIL "$RESULTS/model-parity.log" | tr '\n' ' ')"
fi

# ---------------------------------------------------------------- detection parity
CLI=$BUILD/src/cli/cordscope-cli
if step detect-cpu 90 "${RUN[@]}" "$CLI" detect "$BUILD/data/samples" --backend cpu \
     --json "$RESULTS/detect-cpu.json" \
   && step detect-cuda 90 "${RUN[@]}" "$CLI" detect "$BUILD/data/samples" --backend cuda \
     --json "$RESULTS/detect-cuda.json" \
   && step detect-compare 60 python3 tests/gpu/compare-detect.py "$RESULTS/detect-cpu.json" \
     "$RESULTS/detect-cuda.json" --tol 1e-3; then
  while read -r line; do note "$line"; done < "$RESULTS/detect-compare.log"
  grep "patient score" "$RESULTS/detect-cuda.log" | while read -r line; do
    note "cuda $line"; done
else
  fail "detection parity (see $RESULTS/detect-*.log):" \
       "$(head -3 "$RESULTS/detect-compare.log" 2>/dev/null | tr '\n' ' ')"
fi

# ---------------------------------------------------------------- short adaptation
# 40 phantoms, 2 epochs, EU refresh every epoch: CPU and CUDA must both stay finite (this
# went NaN on the GPU before the class token's target rows were zeroed) and end with
# similar losses (not equal: the masks are drawn from EU maps that differ in the last digits)
PH40=/tmp/cs-gpu-phantoms-40
rm -rf "$PH40"
if step phantoms-40 60 "${RUN[@]}" "$CLI" phantom --out "$PH40" --count 40 --seed 4242 \
   && step adapt-40-cpu 120 "${RUN[@]}" "$CLI" adapt "$PH40" --backend cpu --epochs 2 \
        --refresh 1 --out /tmp/cs-gpu-40-cpu.safetensors \
   && step adapt-40-cuda 60 env CS_DEBUG_FINITE=1 "${RUN[@]}" "$CLI" adapt "$PH40" \
        --backend cuda --epochs 2 --refresh 1 --out /tmp/cs-gpu-40-cuda.safetensors; then
  note "short adaptation (40 phantoms, 2 epochs): cpu: $(grep '^epoch 2/2' \
        "$RESULTS/adapt-40-cpu.log" | cut -c1-60); cuda: $(grep '^epoch 2/2' \
        "$RESULTS/adapt-40-cuda.log" | cut -c1-60)"
else
  fail "short adaptation (see $RESULTS/adapt-40-*.log): $(grep -h -m2 -E 'nan|CS_DEBUG|rror' \
        "$RESULTS"/adapt-40-*.log | tr '\n' ' ')"
fi

# ---------------------------------------------------------------- benchmark
if step bench 240 "${RUN[@]}" env PYTHONUNBUFFERED=1 python3 tests/gpu/gpu-bench.py \
     --bench-model "$BUILD/bench/cs-bench-model"; then
  grep -E "^(K=[0-9]+ MC|training)" "$RESULTS/bench.log" > "$RESULTS/bench-summary.txt"
  while read -r line; do note "bench: $line"; done < "$RESULTS/bench-summary.txt"
  tail -1 "$RESULTS/bench.log" > "$RESULTS/bench.json"
else
  fail "benchmark (see $RESULTS/bench.log): $(tail -3 "$RESULTS/bench.log" | tr '\n' ' ')"
fi
# where the GPU time goes (Nsight Compute, when installed): the five costliest kernels
NCU=$(command -v ncu || ls /usr/local/cuda/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null \
      | head -1)
if [ -n "$NCU" ] && step profile 120 "${RUN[@]}" env PYTHONUNBUFFERED=1 python3 \
     tests/gpu/gpu-profile.py --bench-model "$BUILD/bench/cs-bench-model" --ncu "$NCU"; then
  grep -A5 -E "^(infer|train)," "$RESULTS/profile.log" | grep -v "^--" \
    | while read -r line; do note "profile: $line"; done
fi

# ---------------------------------------------------------------- full adaptation
# DESIGN.md's schedule (200 epochs, EU refresh every 10, AU from 150) on 125 phantoms x 3
# slices = 375, the bundled model, on the GPU; stopped (SIGINT: the CLI saves the last
# epoch) after CS_GPU_ADAPT_S seconds (default 150), when the last epoch line's ETA is printed
PH=/tmp/cs-gpu-phantoms
rm -rf "$PH" /tmp/cs-gpu-adapt
if step phantoms 120 "${RUN[@]}" "$CLI" phantom --out "$PH" --count 125 --seed 4242; then
  step adapt "${CS_GPU_ADAPT_S:-150}" "${RUN[@]}" "$CLI" adapt "$PH" --backend cuda \
    --epochs 200 --out /tmp/cs-gpu-adapt.safetensors --run /tmp/cs-gpu-adapt \
    --threads "$(nproc)"
  rc=$?
  DONE=$(grep -m1 "^adapted " "$RESULTS/adapt.log")
  if [ $rc -eq 0 ] && [ -n "$DONE" ]; then
    note "full adaptation (200 epochs, 375 slices, bundled model, cuda): $DONE"
  elif [ $rc -eq 124 ]; then
    note "full adaptation: stopped after ${CS_GPU_ADAPT_S:-150} s at: $(grep '^epoch ' \
          "$RESULTS/adapt.log" | tail -1)"
  else
    fail "full adaptation exited $rc (see $RESULTS/adapt.log): $(tail -2 "$RESULTS/adapt.log" \
          | tr '\n' ' ')"
  fi
else
  fail "phantoms for the adaptation (see $RESULTS/phantoms.log)"
fi

# ---------------------------------------------------------------- sanitizers (last: slow)
# only while the call's budget (CS_GPU_BUDGET seconds from the start, default 420) lasts
if command -v compute-sanitizer > /dev/null 2>&1; then
  for tool in memcheck racecheck; do
    LEFT=$(( ${CS_GPU_BUDGET:-420} - SECONDS - 10 ))
    if [ $LEFT -lt 30 ]; then
      note "compute-sanitizer $tool: not run (${LEFT} s of the budget left)"
      continue
    fi
    [ $LEFT -gt 150 ] && LEFT=150
    step "sanitizer-$tool" $LEFT "${RUN[@]}" compute-sanitizer --tool "$tool" --error-exitcode 9 \
      "$BUILD/tests/engine/test-backend-ops" -p /engine/backend-ops/cuda
    rc=$?
    if [ $rc -eq 0 ]; then
      note "compute-sanitizer $tool: $(grep -m1 'SUMMARY' "$RESULTS/sanitizer-$tool.log")"
    elif [ $rc -eq 124 ]; then
      note "compute-sanitizer $tool: not finished in $LEFT s (no verdict)"
    else
      fail "compute-sanitizer $tool exited $rc (see $RESULTS/sanitizer-$tool.log):" \
           "$(grep -m1 'SUMMARY' "$RESULTS/sanitizer-$tool.log")"
    fi
  done
fi


printf '\n==== summary (%s)\n' "${GPU}" | tee -a "$LOG"
printf '%s\n' "${SUMMARY[@]}" | tee -a "$LOG" > "$RESULTS/summary.txt"
cat "$RESULTS/summary.txt"
finish
exit $FAILED
