#!/usr/bin/env bash
# Reproduces the default model models/r1sharp-arith.gguf from scratch, seeded: SFT from random weights on worked
# column-arithmetic solutions, stopped while the model still makes mistakes (about 94% of held-out problems right), then
# GRPO (DAPO loss) on the rule-checked reward, then both checkpoints evaluated on the same held-out problems (two
# disjoint sets of 1000). About 15 minutes on 2 cores. OUT=dir to keep the run elsewhere; COPY=0 to leave models/ alone.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/default}
mkdir -p "$OUT"
dotnet build src/R1Sharp.Cli -c Release -v q -nologo
R="dotnet src/R1Sharp.Cli/bin/Release/net10.0/r1sharp.dll"
start=$(date +%s)

# 1. SFT (distillation): 1200 steps x 32 generated problems, qwen2 dim 128, 4 layers, 4 heads (2 KV), FFN 384
$R train sft --task arithmetic --seed 1 --steps 1200 --batch 32 --lr 3e-3 --warmup 50 \
  --dim 128 --layers 4 --heads 4 --kv-heads 2 --ffn 384 --ctx 512 --out "$OUT/sft.gguf"
echo "sft done after $(( $(date +%s) - start )) s"

# 2. GRPO: 16 prompts x 8 samples per step at temperature 1, DAPO (clip-higher, dynamic sampling, token-level loss)
$R train grpo --task arithmetic --seed 1 --model "$OUT/sft.gguf" --steps 90 --prompts 16 --group 8 --loss dapo \
  --lr 3e-5 --beta 0.01 --updates 2 --temperature 1.0 --max-tokens 256 --out "$OUT/grpo.gguf"
echo "grpo done after $(( $(date +%s) - start )) s"

# 3. the same held-out problems (seed range disjoint from training) for both checkpoints
for m in sft grpo; do
  for seed in 7 8; do
    $R eval --model "$OUT/$m.gguf" --task arithmetic --n 1000 --k 4 --seed $seed --temperature 0.6 --json | tee "$OUT/eval-$m-seed$seed.json"
    $R eval --model "$OUT/$m.gguf" --task arithmetic --n 1000 --k 1 --seed $seed --temperature 0 --json | tee "$OUT/eval-$m-seed$seed-greedy.json"
  done
done
echo "total $(( $(date +%s) - start )) s"
if [ "${COPY:-1}" = 1 ]; then cp "$OUT/grpo.gguf" models/r1sharp-arith.gguf; echo "wrote models/r1sharp-arith.gguf"; fi
