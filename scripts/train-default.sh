#!/usr/bin/env bash
# Reproduces the default model models/r1sharp-arith.gguf from scratch, seeded: SFT from random weights on worked
# solutions of the arithmetic task (every category, some after earlier turns) in four stages of format 1 and a fifth
# that moves to format 2 (every line a column step), then GRPO (DAPO loss) on
# the rule-checked reward, then both checkpoints evaluated greedily on the same 2,000 held-out problems
# (seeds disjoint from training) with the paired gain of GRPO over SFT and its 95% interval.
# OUT=dir keeps the run elsewhere; COPY=0 leaves models/ and docs/training/ alone. Steps and sizes: docs/training.md.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/default}
SFT1_STEPS=${SFT1_STEPS:-1200}
SFT2_STEPS=${SFT2_STEPS:-400}
SFT3_STEPS=${SFT3_STEPS:-160}
SFT4_STEPS=${SFT4_STEPS:-500}
SFT5_STEPS=${SFT5_STEPS:-2400}
GRPO_STEPS=${GRPO_STEPS:-14}
GRPO_PROMPTS=${GRPO_PROMPTS:-16}
GRPO_LR=${GRPO_LR:-3e-5}
mkdir -p "$OUT"
dotnet build src/R1Sharp.Cli -c Release -v q -nologo
# run from a copy of the build, so a rebuild during the run cannot touch it
rm -rf "$OUT/bin" && cp -r src/R1Sharp.Cli/bin/Release/net10.0 "$OUT/bin"
R="dotnet $OUT/bin/r1sharp.dll"
start=$(date +%s)
uptime | tee "$OUT/load.txt"

# 1. SFT (distillation) from random weights: qwen2 dim 128, 6 layers, 4 heads (2 KV), FFN 384, context 1024; the first
#    1200 steps of a 3600-step schedule (lr 3e-3, warmup 50), problems of seed 1
$R train sft --task arithmetic --format 1 --seed 1 --steps "$SFT1_STEPS" --schedule-steps 3600 --batch 32 --lr 3e-3 --warmup 50 \
  --dim 128 --layers 6 --heads 4 --kv-heads 2 --ffn 384 --ctx 1024 --save-every 300 --out "$OUT/sft1.gguf"
echo "sft 1 done after $(( $(date +%s) - start )) s"; uptime | tee -a "$OUT/load.txt"
#    then on new problems (seed 2) with a fresh optimizer: the first 400 steps of a 700-step schedule (lr 2e-3, warmup 20)
$R train sft --task arithmetic --format 1 --init "$OUT/sft1.gguf" --seed 2 --steps "$SFT2_STEPS" --schedule-steps 700 --batch 32 --lr 2e-3 \
  --warmup 20 --save-every 50 --out "$OUT/sft2.gguf"
#    then on new problems (seed 3) with a fresh optimizer, decayed to the end (lr 9e-4, warmup 10)
$R train sft --task arithmetic --format 1 --init "$OUT/sft2.gguf" --seed 3 --steps "$SFT3_STEPS" --batch 32 --lr 9e-4 --warmup 10 \
  --save-every 20 --out "$OUT/sft3.gguf"
#    then on new problems (seed 4) with a fresh optimizer: the first 500 steps of a 600-step schedule (lr 6e-4, warmup 20)
$R train sft --task arithmetic --format 1 --init "$OUT/sft3.gguf" --seed 4 --steps "$SFT4_STEPS" --schedule-steps 600 --batch 32 --lr 6e-4 \
  --warmup 20 --save-every 25 --out "$OUT/sft4.gguf"
echo "sft 4 done after $(( $(date +%s) - start )) s"; uptime | tee -a "$OUT/load.txt"
#    then the worked solutions of format 2 on new problems (seed 5) with a fresh optimizer: 2400 steps (lr 1e-3, warmup 10)
$R train sft --task arithmetic --format 2 --init "$OUT/sft4.gguf" --seed 5 --steps "$SFT5_STEPS" --schedule-steps 2400 --batch 32 --lr 1e-3 \
  --warmup 10 --save-every 25 --out "$OUT/sft.gguf"
echo "sft done after $(( $(date +%s) - start )) s"; uptime | tee -a "$OUT/load.txt"

# 2. GRPO: prompts x 8 samples per step at temperature 1, DAPO (clip-higher, groups with equal rewards dropped, token mean)
$R train grpo --task arithmetic --format 2 --seed 1 --model "$OUT/sft.gguf" --steps "$GRPO_STEPS" --prompts "$GRPO_PROMPTS" --group 8 --loss dapo \
  --lr "$GRPO_LR" --beta 0.01 --updates 2 --temperature 1.0 --max-tokens 1024 --save-every 5 --out "$OUT/grpo.gguf"
echo "grpo done after $(( $(date +%s) - start )) s"; uptime | tee -a "$OUT/load.txt"

# 3. both checkpoints on the same 2,000 held-out problems, greedy; the paired gain of GRPO over SFT
$R eval --model "$OUT/grpo.gguf" --baseline "$OUT/sft.gguf" --task arithmetic --format 2 --n 2000 --k 1 --temperature 0 --seed 7 --json \
  | tee "$OUT/eval-grpo-vs-sft.json"
echo "total $(( $(date +%s) - start )) s"; uptime | tee -a "$OUT/load.txt"
if [ "${COPY:-1}" = 1 ]; then
  # the GRPO checkpoint where its paired gain over SFT is positive, else the SFT one
  gain=$(sed -n 's/.*"gain":\([-0-9.eE]*\).*/\1/p' "$OUT/eval-grpo-vs-sft.json")
  if awk "BEGIN { exit !($gain > 0) }"; then best=grpo; else best=sft; fi
  echo "GRPO gain $gain: shipping $best.gguf"
  cp "$OUT/$best.gguf" models/r1sharp-arith.gguf
  mkdir -p docs/training
  cp "$OUT"/sft1.png "$OUT"/sft1.csv "$OUT"/sft2.png "$OUT"/sft2.csv "$OUT"/sft3.png "$OUT"/sft3.csv "$OUT"/sft4.png "$OUT"/sft4.csv "$OUT"/sft.png "$OUT"/sft.csv "$OUT"/grpo.png "$OUT"/grpo.csv "$OUT"/eval-grpo-vs-sft.json docs/training/
  echo "wrote models/r1sharp-arith.gguf and docs/training/"
fi
