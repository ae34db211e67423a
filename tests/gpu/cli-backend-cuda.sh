#!/bin/sh
# cli-backend-cuda.sh CLI SAMPLE: `cordscope-cli detect --backend cuda` without a usable GPU
# exits non-zero and says why; with one (it succeeds) the test is skipped (exit 77).
cli=$1 sample=$2
err=$("$cli" detect "$sample" --backend cuda --quiet 2>&1 >/dev/null)
rc=$?
if [ $rc -eq 0 ]; then
  echo "SKIP: the CUDA backend works here (tests/gpu/run.sh covers it)"
  exit 77
fi
echo "exit $rc: $err"
case "$err" in
  *"CUDA backend unavailable: "?*) exit 0 ;;
  *) echo "FAIL: no reason given"; exit 1 ;;
esac
