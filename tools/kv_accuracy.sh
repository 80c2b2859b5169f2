#!/usr/bin/env bash
# Accuracy cost of the KV cache types, measured with gemmaforge-perplexity on the default model:
# prints one markdown table row per KV type (docs/benchmarks.md keeps the result).
#   tools/kv_accuracy.sh [build dir] [text] [ctx] [chunks]
set -euo pipefail
build=${1:-build}
text=${2:-/usr/share/common-licenses/GPL-3}
ctx=${3:-512}
chunks=${4:-16}
echo "| KV type | bytes/token/layer-head (K+V, head_dim 256) | PPL ($(basename "$text"), ctx $ctx, $chunks chunks) | vs f32 |"
echo "|---|---|---|---|"
base=""
for kv in f32 bf16 f16 fp8 int8; do
  case $kv in f32) b=2048;; bf16|f16) b=1024;; fp8|int8) b=520;; esac
  ppl=$("$build/bin/gemmaforge-perplexity" -f "$text" -c "$ctx" --chunks "$chunks" --kv "$kv" 2>/dev/null |
        sed -n 's/^Final estimate: PPL = \([0-9.]*\) +\/- \([0-9.]*\)$/\1 ± \2/p')
  val=${ppl%% *}
  [ -z "$base" ] && base=$val
  delta=$(python3 -c "print(f'{($val/$base-1)*100:+.3f}%')")
  echo "| $kv | $b | $ppl | $delta |"
done
