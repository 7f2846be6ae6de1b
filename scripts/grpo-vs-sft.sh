#!/usr/bin/env bash
# GRPO's effect where SFT leaves room for it: a short SFT run (600 steps, held-out pass@1 about 0.6), then 90 GRPO
# steps from it, both evaluated on the same held-out problems. About 15 minutes on 2 cores. (The default model's SFT
# stage is already near 100%, so its GRPO stage has little left to fix.)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/grpo-vs-sft}
mkdir -p "$OUT"
dotnet build src/R1Sharp.Cli -c Release -v q -nologo
R="dotnet src/R1Sharp.Cli/bin/Release/net10.0/r1sharp.dll"
$R train sft --task arithmetic --seed 1 --steps 600 --batch 32 --lr 3e-3 --warmup 30 --out "$OUT/sft.gguf"
$R train grpo --task arithmetic --seed 1 --model "$OUT/sft.gguf" --steps 90 --prompts 16 --group 8 --loss dapo \
  --lr 3e-5 --beta 0.01 --updates 2 --temperature 1.0 --out "$OUT/grpo.gguf"
for m in sft grpo; do
  $R eval --model "$OUT/$m.gguf" --task arithmetic --n 200 --k 4 --seed 7 --temperature 0.6 --json | tee "$OUT/eval-$m.json"
done
