#!/usr/bin/env bash
# Reproduces the default model models/r1sharp-arith.gguf from scratch, seeded: SFT from random weights on worked
# column-arithmetic solutions, then GRPO (DAPO loss) on the rule-checked reward, then both checkpoints evaluated on the
# same held-out problems. About 40 minutes on 2 cores. OUT=dir to keep the run elsewhere; COPY=0 to leave models/ alone.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/default}
mkdir -p "$OUT"
dotnet build src/R1Sharp.Cli -c Release -v q -nologo
R="dotnet src/R1Sharp.Cli/bin/Release/net10.0/r1sharp.dll"
start=$(date +%s)

# 1. SFT (distillation): 3000 steps x 32 generated problems, qwen2 dim 128, 4 layers, 4 heads (2 KV), FFN 384
$R train sft --task arithmetic --seed 1 --steps 3000 --batch 32 --lr 3e-3 --warmup 50 --save-every 500 \
  --dim 128 --layers 4 --heads 4 --kv-heads 2 --ffn 384 --ctx 512 --out "$OUT/sft.gguf"
echo "sft done after $(( $(date +%s) - start )) s"

# 2. GRPO: 16 prompts x 8 samples per step at temperature 1, DAPO (clip-higher, dynamic sampling, token-level loss)
$R train grpo --task arithmetic --seed 1 --model "$OUT/sft.gguf" --steps 60 --prompts 16 --group 8 --loss dapo \
  --lr 2e-4 --beta 0.01 --updates 2 --temperature 1.0 --max-tokens 256 --out "$OUT/grpo.gguf"
echo "grpo done after $(( $(date +%s) - start )) s"

# 3. the same held-out problems (seed range disjoint from training) for both checkpoints
for m in sft grpo; do
  $R eval --model "$OUT/$m.gguf" --task arithmetic --n 300 --k 4 --seed 7 --temperature 0.6 --json | tee "$OUT/eval-$m.json"
  $R eval --model "$OUT/$m.gguf" --task arithmetic --n 300 --k 1 --seed 7 --temperature 0 --json | tee "$OUT/eval-$m-greedy.json"
done
echo "total $(( $(date +%s) - start )) s"
if [ "${COPY:-1}" = 1 ]; then cp "$OUT/grpo.gguf" models/r1sharp-arith.gguf; echo "wrote models/r1sharp-arith.gguf"; fi
