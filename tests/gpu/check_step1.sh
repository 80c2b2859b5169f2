#!/usr/bin/env bash
# gpu.check_step1 (tests/gpu/tests.cmake): scripts/gpu-check's first step, with or without a GPU.
# Usage: check_step1.sh <source dir> <bundle dir> <output dir>
set -uo pipefail
src=$1 bundle=$2 out=$3
rm -rf "$out"
GF_BUNDLE_DIR="$bundle" GF_GPU_CHECK_OUT="$out" GF_GPU_CHECK_STEPS=1 GF_GPU_CHECK_BUDGET=100 "$src/scripts/gpu-check"
rc=$?
fail() { echo "FAIL: $*"; exit 1; }
[ -f "$out/summary.md" ] || fail "no summary.md"
[ -f "$out/device.txt" ] || fail "no device.txt"
n=$(find "$out" -type f | wc -l)
[ "$n" -le 8 ] || fail "$n files in $out (the device tool brings back 8)"
case $rc in
  77) grep -q "no usable GPU" "$out/summary.md" || fail "exit 77 without 'no usable GPU' in summary.md" ;;
  0) grep -q "| 1 device | pass |" "$out/summary.md" || fail "exit 0 without step 1 passing" ;;
  *) fail "gpu-check exited $rc" ;;
esac
echo "gpu.check_step1: gpu-check exited $rc as expected; summary:"
cat "$out/summary.md"
