#!/usr/bin/env bash
# The pair docs/speculative-decoding.md measures: models/r1sharp-arith-draft.gguf (0.9M parameters, 3.5 MB) drafting for a
# larger model trained here on the same task and vocabulary (dim 384, 6 layers, 9.7M parameters, 39 MB in F32), then
# speculative decoding with that draft, with n-gram lookup, and the MTP head of a synthesized deepseek2 file, each
# against the same model without speculation in one alternating run. About 2 hours of SFT on 2 shared cores; OUT=dir
# keeps the run elsewhere, TARGET=file skips the training (the figures in the docs were measured with the first
# stage's checkpoint, TARGET=runs/speculation/target-stage1.gguf).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/speculation}
mkdir -p "$OUT"
dotnet build src/R1Sharp.Cli -c Release -v q -nologo
R="dotnet src/R1Sharp.Cli/bin/Release/net10.0/r1sharp.dll"
# the default model drafts, quantized to Q8_0 (0.9 MB: its steps cost less than the F32 file's)
DRAFT="$OUT/draft-q8.gguf"
$R quantize models/r1sharp-arith-draft.gguf "$DRAFT" --type q8_0

if [ -z "${TARGET:-}" ]; then
  # SFT in two stages of 600 steps x 16 problems (the second continues the first on other problems, at half the rate)
  $R train sft --task arithmetic --format 1 --seed 2 --steps 600 --batch 16 --lr 1e-3 --warmup 30 \
    --dim 384 --layers 6 --heads 6 --kv-heads 2 --ffn 1024 --ctx 512 --out "$OUT/target-stage1.gguf"
  $R train sft --task arithmetic --format 1 --seed 3 --init "$OUT/target-stage1.gguf" --steps 600 --batch 16 --lr 5e-4 --warmup 10 \
    --out "$OUT/target.gguf"
  TARGET="$OUT/target.gguf"
  $R eval --model "$TARGET" --task arithmetic --format 1 --n 200 --k 1 --seed 7 --temperature 0 --json | tee "$OUT/eval-target.json"
fi

# the draft model (Q8_0 and F32), on three kinds of problem, draft lengths 3 and 8, one thread
for draft in "$DRAFT" models/r1sharp-arith-draft.gguf; do
  for k in 8 3; do
    for p in "Compute 87*64." "What is 347+589?" "Calculate 905-278."; do
      $R bench --model "$TARGET" --draft-model "$draft" --draft-max $k -p 0 -n 256 -r 10 -t 1 --prompt "$p" --json
    done
  done
done | tee "$OUT/bench-draft-model.jsonl"

# n-gram lookup on the same model: the column algorithm restates what is left of the operands on every line
for p in "Compute 87*64." "What is 347+589?" "Repeat the list and go on: 1, 2, 3, 4, 5, 6, 7, 8"; do
  $R bench --model "$TARGET" --spec ngram -p 0 -n 256 -r 10 -t 1 --prompt "$p" --json
done | tee "$OUT/bench-ngram.jsonl"
$R bench --model "$TARGET" --spec ngram -p 0 -n 256 -r 5 -t 1 --ignore-eos --prompt "Repeat the list and go on: 1, 2, 3, 4, 5, 6, 7, 8" --json \
  | tee -a "$OUT/bench-ngram.jsonl"

# many streams: 8 at once through the scheduler, with and without the draft model
$R bench --model "$TARGET" --draft-model models/r1sharp-arith-draft.gguf --draft-max 3 -p 0 -n 256 -r 3 -t 2 --parallel 8 --prompt "Compute 87*64." --json \
  | tee "$OUT/bench-parallel8.json"

# MTP: the tiny deepseek2 file with one nextn layer (random weights: its acceptance means nothing, its cost does)
$R synth --arch deepseek2 --preset tiny-mtp --out "$OUT/tiny-mtp.gguf"
$R bench --model "$OUT/tiny-mtp.gguf" --spec mtp --draft-p-min 0 -p 0 -n 128 -r 10 -t 1 --ignore-eos --prompt "hello" --json \
  | tee "$OUT/bench-mtp.json"
