#!/usr/bin/env bash
# The measurements behind MODEL_CARD.md, on the mixed-subject photos with ground truth.
#   tools/evaluate_defaults.sh [MODEL_DIR] [DATA_DIR] [OUT_DIR] [FACES_PEOPLE_EXPERT_DIR] [OTHER_GENERALIST_DIR]
set -euo pipefail
M=${1:-expertcolor/pretrained/default}
D=${2:-../shared/data}/mixed
O=${3:-eval}
FP=${4:-}
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
# A faces expert that also saw whole people (segmentation/extra/people), swapped into a copy.
if [ -n "$FP" ]; then
  rm -rf "$O/model_faces_people" && cp -r "$M" "$O/model_faces_people"
  expertcolor add-expert "$O/model_faces_people" "$FP" > /dev/null
  M="$O/model_faces_people" ev faces_people --compare routed
fi
