#!/usr/bin/env bash
# The measurements behind MODEL_CARD.md, on the mixed-subject photos with ground truth.
#   tools/evaluate_defaults.sh [MODEL_DIR] [DATA_DIR] [OUT_DIR] [SWAP_EXPERT_DIRS] [OTHER_GENERALIST_DIR]
# SWAP_EXPERT_DIRS: comma-separated expert directories (train-expert outputs), each swapped into a copy
# of the model in place of the expert of the same name and evaluated routed (the model card's ablations).
set -euo pipefail
M=${1:-expertcolor/pretrained/default}
D=${2:-../shared/data}/mixed
O=${3:-eval}
SWAP=${4:-}
OG=${5:-}
ev() { local name=$1; shift; echo "== $name"; expertcolor evaluate --images "$D/images" --groups "$D/groups" --model "$M" --out "$O/$name" "$@" > "$O/$name.log" 2>&1; }
mkdir -p "$O"
# The main table: routed vs the generalist, each expert alone and no colour; routing groups vs the teacher.
ev main --compare generalist,experts,gray --teacher "$D/teacher_gray" --voc "$D/voc"
# Merge strategies and working size (routed only).
for m in hard soft feather guided; do ev "merge_$m" --merge "$m" --compare routed; done
ev working_384 --working-size 384 --compare routed
ev working_192 --working-size 192 --compare routed
# Segmentation averaged with the mirrored photo (colour and routing IoU).
ev flip --flip-segmentation on --compare routed --teacher "$D/teacher_gray"
# Another generalist (e.g. the first-round one) against the same routed model.
if [ -n "$OG" ]; then ev other_generalist --compare generalist --generalist "$OG"; fi
# Ablations: another expert swapped into a copy of the model (named after its run directory).
IFS=, read -r -a swaps <<< "$SWAP"
for e in "${swaps[@]}"; do
  run=$(basename "$(dirname "$e")")
  rm -rf "$O/model_$run" && cp -r "$M" "$O/model_$run"
  expertcolor add-expert "$O/model_$run" "$e" --temperature 0.5 > /dev/null  # the shipped temperature
  M="$O/model_$run" ev "swap_$run" --compare routed
done
