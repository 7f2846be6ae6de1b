#!/usr/bin/env bash
# The default model's recipe on the countdown task (reach a target with three numbers, each used once): SFT from
# random weights on worked solutions, then GRPO (DAPO) on the rule-checked reward, both checkpoints evaluated greedily on
# the same held-out problems with the paired gain of GRPO over SFT. OUT=dir keeps the run elsewhere; COPY=0 leaves
# docs/training/countdown/ alone.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/countdown}
mkdir -p "$OUT"
dotnet build src/R1Sharp.Cli -c Release -v q -nologo
rm -rf "$OUT/bin" && cp -r src/R1Sharp.Cli/bin/Release/net10.0 "$OUT/bin"
R="dotnet $OUT/bin/r1sharp.dll"
start=$(date +%s)
uptime | tee "$OUT/load.txt"
$R train sft --task countdown --seed 1 --steps 600 --batch 32 --lr 3e-3 --warmup 30 \
  --dim 128 --layers 4 --heads 4 --kv-heads 2 --ffn 384 --ctx 256 --out "$OUT/sft.gguf"
echo "sft done after $(( $(date +%s) - start )) s"
$R train grpo --task countdown --seed 1 --model "$OUT/sft.gguf" --steps 60 --prompts 32 --group 8 --loss dapo \
  --lr 3e-5 --beta 0.01 --updates 2 --temperature 1.0 --max-tokens 96 --out "$OUT/grpo.gguf"
echo "grpo done after $(( $(date +%s) - start )) s"
$R eval --model "$OUT/grpo.gguf" --baseline "$OUT/sft.gguf" --task countdown --n 2000 --k 1 --temperature 0 --seed 7 --max-tokens 96 --json \
  | tee "$OUT/eval-grpo-vs-sft.json"
echo "total $(( $(date +%s) - start )) s"; uptime | tee -a "$OUT/load.txt"
if [ "${COPY:-1}" = 1 ]; then
  mkdir -p docs/training/countdown
  cp "$OUT"/sft.png "$OUT"/sft.csv "$OUT"/grpo.png "$OUT"/grpo.csv "$OUT"/eval-grpo-vs-sft.json docs/training/countdown/
fi
