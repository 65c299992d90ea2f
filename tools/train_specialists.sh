#!/usr/bin/env bash
# The specialists chain (issue 23): branch, train, merge on the enlarged data (shared/data + more/).
#
#   tools/train_specialists.sh [DATA_DIR] [RUNS_DIR]
#
# Every stage is one resumable run: re-running this script skips finished stages and continues an
# unfinished one from its last checkpoint (--resume is exact), so the chain spans sessions. Kill it
# at any time; run it again in the next session. `tools/train_specialists.sh --status` says where
# the chain stands without training.
#
#   A  g_union      the shipped generalist continued on the enlarged union (every domain, 12 roots)
#   B  faces_b, birds_b, animals_b   each branched from g_union, specialised on its own domain's
#                   photos with a little union replay (other roots drawn at weight 0.1); every pixel
#                   counts (no route labels): an expert colours its subject's surroundings too
#      g_arm        the generalist arm: g_union continued on the union by the three experts' budget
#   The routed model's background (places) expert is g_union itself, so routed and the generalist
#   arm have seen the same images in total (g_union + 3 x the expert budget).
set -euo pipefail
status=0
if [ "${1:-}" = "--status" ]; then status=1; shift; fi
D=${1:-../shared/data}
R=${2:-runs}
G=${G:-expertcolor/pretrained/generalist}   # the start of the chain: the shipped generalist
M="$D/more"
S="$D/segmentation"
mkdir -p "$R"
common=(--workers 1 --threads 2 --no-progress --resume --save-every 100)

stage() {  # stage NAME ARGS...: skip finished runs, continue or start the rest, log to RUNS/NAME.log
  local name=$1; shift
  if [ -f "$R/$name/done" ]; then echo "== $name: done"; return; fi
  if [ "$status" = 1 ]; then
    local at="not started"
    [ -f "$R/$name/checkpoint.pt" ] && at="in progress, $(tail -n 1 "$R/$name/metrics.jsonl" 2>/dev/null | cut -c1-80)"
    echo "== $name: $at"; return
  fi
  echo "== $name: $(date -u +%H:%M:%S)"
  "$@" --out "$R/$name" "${common[@]}" >> "$R/$name.log" 2>&1
  touch "$R/$name/done"
}

# The union: every domain's training photos. Face crops are the largest share (9k), so the 6.6k
# extra crops are drawn at half weight.
union_roots=("$D/faces" "$M/faces" "$S/extra/people/images" "$D/animals" "$D/birds" "$M/birds_cub" "$M/birds525"
             "$D/places" "$M/scenes" "$S/extra/imagenet/images")
union_kinds=(folder folder folder folder cub folder folder folder folder folder)
union_weights=(1 0.5 1 1 1 1 1 1 1 1)

# A: 4 epochs of the union (~91k images) at a lower peak rate than a fresh start.
stage g_union expertcolor train-expert --name generalist --init-from "$G" --lr 3e-4 --epochs 4 \
    --dataset "${union_kinds[@]}" --root "${union_roots[@]}" --root-weight "${union_weights[@]}"

# B: each expert draws its own roots at weight 1 and the rest of the union at 0.1 (replay); an
# epoch keeps the union's length, so every run of B sees the same number of images per epoch.
replay() {  # replay IDX...: the union's root weights with the given roots at 1 and the others at 0.1
  local w=() i j on
  for i in "${!union_roots[@]}"; do
    on=0; for j in "$@"; do [ "$i" = "$j" ] && on=1; done
    if [ "$on" = 1 ]; then w+=(1); else w+=(0.1); fi
  done
  echo "${w[@]}"
}
B_EPOCHS=${B_EPOCHS:-2}
branch=(--init-from "$R/g_union/expert" --lr 3e-4 --epochs "$B_EPOCHS" --dataset "${union_kinds[@]}"
        --root "${union_roots[@]}")
[ "$status" = 1 ] || [ -f "$R/g_union/done" ] || { echo "g_union unfinished"; exit 0; }
# shellcheck disable=SC2046
stage faces_b   expertcolor train-expert --name faces   "${branch[@]}" --root-weight $(replay 0 1 2)
# shellcheck disable=SC2046
stage birds_b   expertcolor train-expert --name birds   "${branch[@]}" --root-weight $(replay 4 5 6)
# shellcheck disable=SC2046
stage animals_b expertcolor train-expert --name animals "${branch[@]}" --root-weight $(replay 3)
# The generalist arm: the same start, three times one expert's budget, the union as in A.
stage g_arm expertcolor train-expert --name generalist --init-from "$R/g_union/expert" --lr 3e-4 \
    --epochs $((3 * B_EPOCHS)) --dataset "${union_kinds[@]}" --root "${union_roots[@]}" \
    --root-weight "${union_weights[@]}"
echo "== chain done $(date -u +%H:%M:%S); evaluate: see docs/experiments.md (specialists)"
