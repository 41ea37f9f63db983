#!/usr/bin/env bash
# Regenerates README's "Table 2" (issue 4) and the descriptor table from the shipped weights:
# label-free thresholds (calibrated on each model's training sequence and stored in its sidecar),
# then fmtrack eval over MOT16-09 / MOT17-09-FRCNN / MOT17-09-SDP (fold A: trained on MOT16-11)
# and MOT16-11 (fold B: trained on MOT16-09), and fmtrack eval-descriptor; the default descriptor
# (the strict model fused with HSV) beside them.
# Usage: benchmarks/table2.sh [OUT_DIR]   (about 15 minutes on 2 CPU cores; features are cached)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/table2}
W=weights
FOLD_A="$W/vhp-vae.safetensors $W/fmvae-eta300.safetensors $W/fmvae-eta3000.safetensors"
FOLD_A_7="$W/tracklets-alone.safetensors $W/fmvae-tracklets-strict-uniform.safetensors fmtrack/weights/fmvae-tracklets-strict.safetensors $W/fmvae-tracklets-transductive.safetensors"
FOLD_B="$W/fold-b/fmvae-eta300.safetensors"

for w in $FOLD_A $FOLD_A_7; do fmtrack calibrate --seq MOT16-11 --features "$w" --write > /dev/null; done
for w in $FOLD_B; do fmtrack calibrate --seq MOT16-09 --features "$w" --write > /dev/null; done

methods() {  # the paper's tracker (deepsort preset) with each descriptor, then fmtrack's own preset
  local preset=$1; shift
  for w in "$@"; do echo "$preset@features=$w"; done
}
fmtrack eval --quiet --out-dir "$OUT/fold-a" --ids-baseline sort@min_confidence=0.3 \
  --seqs MOT16-09 MOT17-09-FRCNN MOT17-09-SDP \
  --methods sort@min_confidence=0.3 motion deepsort@features=hsv deepsort \
            $(methods deepsort $FOLD_A $FOLD_A_7) deepsort@features=default \
            bytetrack fmtrack@features=hsv fmtrack@features=deepsort $(methods fmtrack $FOLD_A $FOLD_A_7) fmtrack
fmtrack eval --quiet --out-dir "$OUT/fold-b" --ids-baseline sort@min_confidence=0.3 --seqs MOT16-11 \
  --methods sort@min_confidence=0.3 motion deepsort@features=hsv $(methods deepsort $FOLD_B) \
            bytetrack fmtrack@features=hsv $(methods fmtrack $FOLD_B)
fmtrack eval-descriptor --quiet --out-dir "$OUT/descriptors" --seqs MOT17-09-FRCNN MOT17-09-SDP MOT16-09 \
  --features hsv deepsort $FOLD_A $FOLD_A_7 default
