#!/usr/bin/env bash
# The specialists chain (issue 23): branch, train, merge on the enlarged data (shared/data + more/).
#
#   tools/train_specialists.sh [DATA_DIR] [RUNS_DIR]
#
# Every stage is one resumable run: re-running this script skips finished stages and continues an
# unfinished one from its last checkpoint (--resume is exact), so the chain spans sessions. Kill it
# at any time; run it again in the next session. `tools/train_specialists.sh --status` says where
# the chain stands without training. Bash reads this file while it runs: edit it only while no
# chain is running (stop it, edit, start it again; the unfinished stage resumes).
#
#   A  g_union      the generalist shipped before E/F continued on the enlarged union (every domain)
#   B  faces_b, birds_b, animals_b   each branched from g_union, specialised on its own domain's
#                   photos with a little union replay (other roots drawn at weight 0.1); every pixel
#                   counts (no route labels): an expert colours its subject's surroundings too
#      g_arm        the generalist arm: g_union continued on the union by the three experts' budget
#   The stage-B routed model's background (places) expert is g_union itself, so routed and the
#   generalist arm have seen the same images in total (g_union + 3 x the expert budget).
#   C  places_c     the places expert branched like the others (places, scenes, ImageNet scenes)
#      g_arm4       g_arm continued by one more branch budget: the arm for g_union + 4 branches
#   D  places_d, g_d  the shipped places expert and generalist continued on the shipped union + SUN
#   E  birds_e0, birds_e  birds branched from the shipped generalist on the 4x bird data, without and
#                   with distillation toward it (--distill-from)
#   F  g_e          the generalist arm of E: the shipped generalist continued on the enlarged union by
#                   the same budget as one E branch (same steps and schedule); shipped as the generalist
#   G  g_e4         the arm at the whole routed model's budget: the default shipped after E/F has 218.2k
#                   images behind it, g_e 187.0k; g_e4 adds 62.6k to the same start (4 epochs); started 2026-12-02
#   H  faces_h0     faces branched like birds_e0 (same start, same budget as g_e): face crops, the 6.6k more
#                   face crops and the people photos, the rest of the shipped union replayed at 0.1
#   I  birds_i12    birds_e0 again with targets saturated by 1.2 (--chroma-boost): the colourfulness lever
#   J  faces_h1     faces_h0 with the people photos drawn 3x (as the shipped faces expert draws them):
#                   faces_h0 won at home but lost on people in scenes; shipped as the faces expert (sixth session)
#   K  birds_k5, birds_k1  birds_e0 with the colourfulness penalty (--colorfulness-weight 5 and 1): the last
#                   colour lever
#   L  birds_l, faces_l, g_l  the shipped birds and faces experts and the shipped generalist, each continued by
#                   a second branch budget (31.3k images): does the at-home margin grow with budget? (seventh
#                   session: by 0.02-0.05, and only because the generalist stops gaining; not shipped)
#
# ONLY=name[,name...] runs just those stages (and no evaluation): e.g. on a machine whose runs/ is gone,
# `ONLY=faces_h1 tools/train_specialists.sh` rebuilds the shipped faces expert without stages A-I;
# `ONLY=birds_l,g_l,faces_l EVAL=L tools/train_specialists.sh` trains stage L and evaluates it alone.
set -euo pipefail
status=0
if [ "${1:-}" = "--status" ]; then status=1; shift; fi
D=${1:-../shared/data}
R=${2:-runs}
M="$D/more"
S="$D/segmentation"
mkdir -p "$R"
# The chain starts from the generalist shipped until stages E/F replaced it (g_e is the shipped one now),
# taken from the git history, so the chain rebuilds the same way on a fresh clone.
G0="$R/generalist_before_e"
if [ ! -f "$G0/model.safetensors" ]; then
  mkdir -p "$G0"
  for f in config.json model.safetensors; do git show "1b336ac:expertcolor/pretrained/generalist/$f" > "$G0/$f"; done
fi
G=${G:-$G0}
common=(--workers 1 --threads 2 --no-progress --resume --save-every 100)

ONLY=${ONLY:-}
stage() {  # stage NAME ARGS...: skip finished runs, continue or start the rest, log to RUNS/NAME.log
  local name=$1; shift
  if [ -n "$ONLY" ] && [[ ",$ONLY," != *",$name,"* ]]; then return; fi
  if [ -f "$R/$name/done" ]; then echo "== $name: done"; return; fi
  if [ "$status" = 1 ]; then
    local at="not started"
    if [ -f "$R/$name/checkpoint.pt" ]; then
      at="in progress: $(python -c "import sys, torch; s = torch.load(sys.argv[1], weights_only=True)['state']
print(f\"epoch {s['epoch']}, {s['images_seen']} images seen\")" "$R/$name/checkpoint.pt" || echo '?')"
    fi
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
B_EPOCHS=${B_EPOCHS:-1}  # 2026-12-02: one epoch per branch (23k images) so that stage B fit in a session
branch=(--init-from "$R/g_union/expert" --lr 3e-4 --epochs "$B_EPOCHS" --dataset "${union_kinds[@]}"
        --root "${union_roots[@]}")
[ "$status" = 1 ] || [ -n "$ONLY" ] || [ -f "$R/g_union/done" ] || { echo "g_union unfinished"; exit 0; }
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

# C: the places (background) expert gets its own branch like the other three. Stage B used g_union
# itself there, and the union gives places only 17% of its photos, while mixed photos are 81%
# background (2026-12-02: g_union alone 10.11 CIEDE2000 on them, the shipped places expert 9.86).
# Places, scenes and the ImageNet scene photos at weight 1, the rest of the union at 0.1.
# shellcheck disable=SC2046
stage places_c  expertcolor train-expert --name places  "${branch[@]}" --root-weight $(replay 7 8 9)
# The generalist arm for four branches: g_arm continued by one more branch budget (a new warm-up
# and cosine cycle at the branches' rate; same images seen as g_union + 4 branches).
stage g_arm4 expertcolor train-expert --name generalist --init-from "$R/g_arm/expert" --lr 3e-4 \
    --epochs "$B_EPOCHS" --dataset "${union_kinds[@]}" --root "${union_roots[@]}" \
    --root-weight "${union_weights[@]}"

# D (2026-12-02, third session): the enlarged union drifted away from scenes with people (stage B
# lost to the shipped model on held-out people-in-scenes and ImageNet photos, and on mixed/). D keeps
# the shipped lineage and its union, and adds only the SUN scenes: the shipped places expert and the
# shipped generalist each continue on the shipped union + SUN for the same budget (2 epochs).
SHIPPED=expertcolor/pretrained
old_union=(--dataset folder folder cub folder folder folder folder --root "$D/faces" "$S/extra/people/images" "$D/birds"
           "$D/animals" "$D/places" "$S/extra/imagenet/images" "$M/scenes")
stage places_d expertcolor train-expert --name places "${old_union[@]}" --root-weight 0.3 1 1 1 1 1 1 --epochs 2 \
    --init-from "$SHIPPED/default/experts/places" --lr 3e-4
stage g_d expertcolor train-expert --name generalist "${old_union[@]}" --epochs 2 --init-from "$G0" --lr 3e-4

# E (planned 2026-12-02 for the next session): does distillation keep a branch's general colours?
# The birds expert branched from the shipped generalist on the 4x bird data (the issue's pilot) with
# the shipped union replayed at 0.1, with and without a KL pull toward the shipped generalist. Compare
# on the CUB test photos, the held-out scenes and mixed/, each in the shipped model's birds slot.
bird_union=(--dataset folder folder cub folder folder folder folder folder --root "$D/faces" "$S/extra/people/images"
            "$D/birds" "$M/birds_cub" "$M/birds525" "$D/animals" "$D/places" "$S/extra/imagenet/images")
bird_e=(--name birds "${bird_union[@]}" --root-weight 0.1 0.1 1 1 1 0.1 0.1 0.1 --epochs 2
        --init-from "$G0" --lr 3e-4)
stage birds_e0 expertcolor train-expert "${bird_e[@]}"
stage birds_e  expertcolor train-expert "${bird_e[@]}" --distill-from "$G0" --distill-weight 0.5

# F: E's generalist arm. A branch of E drew 2 x 15,670 photos (its union's training split); the arm
# draws 2 x 15,670 of the enlarged union's photos (a seeded subset), with the same schedule and start.
stage g_e expertcolor train-expert --name generalist --init-from "$G0" --lr 3e-4 --epochs 2 \
    --max-images 15670 --dataset "${union_kinds[@]}" --root "${union_roots[@]}" --root-weight "${union_weights[@]}"
# G: the same arm at the routed model's whole budget, from the same start.
stage g_e4 expertcolor train-expert --name generalist --init-from "$G0" --lr 3e-4 --epochs 4 \
    --max-images 15670 --dataset "${union_kinds[@]}" --root "${union_roots[@]}" --root-weight "${union_weights[@]}"
# H (2026-12-02, fifth session): the faces expert at home is behind the generalist (+0.10 against g_e);
# branch it as birds_e0 was, on 3.4x the face photos; capped at 15,670 photos an epoch so its budget
# is g_e's (31,296 images from the same start).
face_union=(--dataset folder folder folder cub folder folder folder --root "$D/faces" "$M/faces"
            "$S/extra/people/images" "$D/birds" "$D/animals" "$D/places" "$S/extra/imagenet/images")
stage faces_h0 expertcolor train-expert --name faces "${face_union[@]}" --root-weight 1 1 1 0.1 0.1 0.1 0.1 \
    --max-images 15670 --epochs 2 --init-from "$G0" --lr 3e-4
# I (2026-12-02, fifth session): birds_e0's run with its targets' chroma multiplied by 1.2 (DDColor's
# recipe), to compare the accuracy / colourfulness trade-off with the one decoding gives.
stage birds_i12 expertcolor train-expert "${bird_e[@]}" --chroma-boost 1.2
# J (2026-12-02, fifth session; ship it next): faces_h0 beat g_e on face crops (-0.14) but made the
# held-out people photos worse (+0.11); the people photos drawn 3x, as the shipped faces expert has them.
stage faces_h1 expertcolor train-expert --name faces "${face_union[@]}" --root-weight 1 1 3 0.1 0.1 0.1 0.1 \
    --max-images 15670 --epochs 2 --init-from "$G0" --lr 3e-4
# K (2026-12-02, sixth session): birds_e0's run with a penalty on photos decoded duller than their targets
# (--colorfulness-weight 5: its gradient about a third of the loss's on CUB photos at the start).
stage birds_k5 expertcolor train-expert "${bird_e[@]}" --colorfulness-weight 5
# birds_k5 landed 0.31-0.38 CIEDE2000 off birds_e0's curve at equal colourfulness: the same at weight 1.
stage birds_k1 expertcolor train-expert "${bird_e[@]}" --colorfulness-weight 1
# L (2026-12-03, seventh session): more budget per branch. The shipped birds and faces experts (birds_e0,
# faces_h1) each continue on their own data for a second budget of 31,296 images (same roots, weights and
# schedule as when they branched), and the shipped generalist (g_e) continues on the union by the same
# budget: each expert and its arm then have G0 + 62.6k images behind them, from the same start.
stage birds_l expertcolor train-expert --name birds "${bird_union[@]}" --root-weight 0.1 0.1 1 1 1 0.1 0.1 0.1 \
    --epochs 2 --init-from "$SHIPPED/default/experts/birds" --lr 3e-4
stage g_l expertcolor train-expert --name generalist --init-from "$SHIPPED/generalist" --lr 3e-4 --epochs 2 \
    --max-images 15670 --dataset "${union_kinds[@]}" --root "${union_roots[@]}" --root-weight "${union_weights[@]}"
stage faces_l expertcolor train-expert --name faces "${face_union[@]}" --root-weight 1 1 3 0.1 0.1 0.1 0.1 \
    --max-images 15670 --epochs 2 --init-from "$SHIPPED/default/experts/faces" --lr 3e-4

# Evaluation. The helpers first: each evaluation block below uses them.
SEG=${SEG:-expertcolor/pretrained/default/segmenter}
MERGE=context:strength=1,subjects=birds,drop_share=0.01  # the shipped merge
as_expert() {  # as_expert SRC NAME OUT: a copy of an expert under another name, decoded as shipped
  [ -d "$3" ] || python -c "import dataclasses, sys, torch; from expertcolor import Expert
e = Expert.from_pretrained(sys.argv[1]).with_prior_correction(0.5)
e.config = dataclasses.replace(e.config, name=sys.argv[2], classes=(), temperature=0.5)
e.save_pretrained(sys.argv[3], dtype=torch.float16)" "$1" "$2" "$3"
}
assemble() {  # assemble OUT EXPERT...: a routed model with the shipped segmenter, decoded as shipped
  local out=$1; shift
  [ -d "$out" ] || expertcolor assemble --segmenter "$SEG" --expert "$@" --out "$out" --fp16 --temperature 0.5 \
      --prior-correction 0.5
}
pc_sweep() {  # pc_sweep OUT PHOTOS "ALPHA..." NAME...: each RUNS/NAME_model routed on PHOTOS at each prior correction
  local out=$1 photos=$2 alphas=$3 v a; shift 3
  for v in "$@"; do
    for a in $alphas; do
      [ -d "$out/${v}_pc$a" ] || expertcolor evaluate --images "$photos" --model "$R/${v}_model" --merge "$MERGE" \
          --prior-correction "$a" --compare routed --out "$out/${v}_pc$a"
    done
  done
}
val_scenes() {  # RUNS/val_scenes: links to the held-out scene photos (SUN, people, ImageNet validation splits)
  [ -d "$R/val_scenes" ] || python -c "import os, sys
from pathlib import Path
from expertcolor.datasets.folder import ImageFolder
for name, root in zip(('sun', 'people', 'imagenet'), sys.argv[2:]):
    out = Path(sys.argv[1], name); out.mkdir(parents=True, exist_ok=True)
    for s in ImageFolder(root, 'val', None, 0.1, 0).samples:
        os.symlink(Path(s.path).resolve(), out / Path(s.path).name)" "$R/val_scenes" "$M/scenes" "$S/extra/people/images" \
      "$S/extra/imagenet/images"
}
# Evaluation of L: birds_l and faces_l in the shipped model's slots, against g_l (the same budget) at home
# (and the shipped experts against the shipped generalist on this machine, for the gains), the held-out
# scenes and mixed/, all with the shipped merge.
eval_l() {
  assemble "$R/l_model" "$R/faces_l/expert" "$R/birds_l/expert" "$SHIPPED"/default/experts/{animals,places}
  as_expert "$R/g_l/expert" generalist "$R/l_generalist"
  [ -d "$R/l_eval/in_domain" ] || python tools/in_domain.py --model "$R/l_model" --data "$D" --n 400 \
      --experts faces birds --generalist "$R/l_generalist" --out "$R/l_eval/in_domain"
  [ -d "$R/l_eval/in_domain_shipped" ] || python tools/in_domain.py --model "$SHIPPED/default" --data "$D" --n 400 \
      --experts faces birds --out "$R/l_eval/in_domain_shipped"
  [ -d "$R/l_eval/val_scenes" ] || expertcolor evaluate --images "$R/val_scenes" --model "$R/l_model" \
      --merge "$MERGE" --generalist "$R/l_generalist" --compare generalist --out "$R/l_eval/val_scenes"
  [ -d "$R/l_eval/mixed" ] || expertcolor evaluate --images "$D/mixed/images" --groups "$D/mixed/groups" \
      --model "$R/l_model" --merge "$MERGE" --generalist "$R/l_generalist" --compare generalist,gray \
      --out "$R/l_eval/mixed"
}
[ "$status" = 1 ] && exit 0
if [ -n "$ONLY" ]; then  # EVAL=L evaluates stage L alone after training it
  case "${EVAL:-}" in
    "") echo "== ONLY=$ONLY trained; no evaluation" ;;
    L) val_scenes; eval_l ;;
    *) echo "EVAL=$EVAL: unknown evaluation (L)"; exit 2 ;;
  esac
  exit 0
fi

# Evaluation of B, each step skipped when its output exists. The routed model: the three experts
# and g_union as the background (places) expert, with the shipped segmenter; both arms decoded as
# the shipped defaults are (temperature 0.5, prior correction 0.5).
as_expert "$R/g_union/expert" places "$R/b_places"
as_expert "$R/g_arm/expert" generalist "$R/b_generalist"
assemble "$R/b_model" "$R"/{faces_b,birds_b,animals_b}/expert "$R/b_places"
# Each expert against the generalist arm on its own domain's validation photos (400 each).
[ -d "$R/b_eval/in_domain" ] || python tools/in_domain.py --model "$R/b_model" --generalist "$R/b_generalist" \
    --data "$D" --n 400 --experts faces birds animals --out "$R/b_eval/in_domain"
# The context merge's strength, chosen on the same validation photos (not on mixed/).
[ -d "$R/b_eval/context" ] || python tools/tune_context.py --model "$R/b_model" --generalist "$R/b_generalist" \
    --data "$D" --n 400 --out "$R/b_eval/context"
# The mixed photos (test only): routed (soft), the generalist arm, each expert alone, no colour.
[ -d "$R/b_eval/mixed_soft" ] || expertcolor evaluate --images "$D/mixed/images" --groups "$D/mixed/groups" \
    --model "$R/b_model" --generalist "$R/b_generalist" --out "$R/b_eval/mixed_soft"
# Evaluation of C: the four branches against the four-branch arm.
as_expert "$R/places_c/expert" places "$R/c_places"
as_expert "$R/g_arm4/expert" generalist "$R/c_generalist"
assemble "$R/c_model" "$R"/{faces_b,birds_b,animals_b}/expert "$R/c_places"
[ -d "$R/c_eval/in_domain" ] || python tools/in_domain.py --model "$R/c_model" --generalist "$R/c_generalist" \
    --data "$D" --n 400 --out "$R/c_eval/in_domain"
[ -d "$R/c_eval/mixed_soft" ] || expertcolor evaluate --images "$D/mixed/images" --groups "$D/mixed/groups" \
    --model "$R/c_model" --generalist "$R/c_generalist" --out "$R/c_eval/mixed_soft"
# Evaluation of D: the shipped faces, birds and animals experts with places_d, against g_d; on the
# held-out scene photos (the SUN, people and ImageNet validation splits, linked into RUNS/val_scenes)
# and on mixed/.
as_expert "$R/places_d/expert" places "$R/d_places"
as_expert "$R/g_d/expert" generalist "$R/d_generalist"
assemble "$R/d_model" "$SHIPPED"/default/experts/{faces,birds,animals} "$R/d_places"
val_scenes
[ -d "$R/d_eval/val_scenes" ] || expertcolor evaluate --images "$R/val_scenes" --model "$R/d_model" \
    --generalist "$R/d_generalist" --compare generalist,expert:places --out "$R/d_eval/val_scenes"
[ -d "$R/d_eval/mixed_soft" ] || expertcolor evaluate --images "$D/mixed/images" --groups "$D/mixed/groups" \
    --model "$R/d_model" --generalist "$R/d_generalist" --compare generalist,expert:places,gray --out "$R/d_eval/mixed_soft"
# Evaluation of E.
for v in e0 e; do
  assemble "$R/${v}_model" "$SHIPPED"/default/experts/{faces,animals,places} "$R/birds_$v/expert"
  [ -d "$R/${v}_eval/in_domain" ] || python tools/in_domain.py --model "$R/${v}_model" --data "$D" --n 400 \
      --experts birds --out "$R/${v}_eval/in_domain"
  [ -d "$R/${v}_eval/val_scenes" ] || expertcolor evaluate --images "$R/val_scenes" --model "$R/${v}_model" \
      --compare expert:birds --out "$R/${v}_eval/val_scenes"
  [ -d "$R/${v}_eval/mixed_soft" ] || expertcolor evaluate --images "$D/mixed/images" --groups "$D/mixed/groups" \
      --model "$R/${v}_model" --compare expert:birds --out "$R/${v}_eval/mixed_soft"
done
# Evaluation of F: E's birds experts against their same-budget arm on the CUB test photos, and the
# routed models against it on the held-out scenes and mixed/.
as_expert "$R/g_e/expert" generalist "$R/f_generalist"
for v in e0 e; do
  [ -d "$R/${v}_eval/in_domain_arm" ] || python tools/in_domain.py --model "$R/${v}_model" --data "$D" --n 400 \
      --experts birds --generalist "$R/f_generalist" --out "$R/${v}_eval/in_domain_arm"
done
[ -d "$R/f_eval/val_scenes" ] || expertcolor evaluate --images "$R/val_scenes" --model "$R/e0_model" \
    --generalist "$R/f_generalist" --compare generalist --out "$R/f_eval/val_scenes"
[ -d "$R/f_eval/mixed_soft" ] || expertcolor evaluate --images "$D/mixed/images" --groups "$D/mixed/groups" \
    --model "$R/e0_model" --generalist "$R/f_generalist" --compare generalist --out "$R/f_eval/mixed_soft"
# Evaluation of G: the shipped model against g_e4 on the held-out scenes, mixed/ and its experts' domains.
as_expert "$R/g_e4/expert" generalist "$R/g_generalist"
[ -d "$R/g_eval/val_scenes" ] || expertcolor evaluate --images "$R/val_scenes" --model "$SHIPPED/default" \
    --generalist "$R/g_generalist" --compare generalist --out "$R/g_eval/val_scenes"
[ -d "$R/g_eval/mixed_soft" ] || expertcolor evaluate --images "$D/mixed/images" --groups "$D/mixed/groups" \
    --model "$SHIPPED/default" --generalist "$R/g_generalist" --compare generalist --out "$R/g_eval/mixed_soft"
[ -d "$R/g_eval/in_domain" ] || python tools/in_domain.py --model "$SHIPPED/default" --data "$D" --n 400 \
    --generalist "$R/g_generalist" --out "$R/g_eval/in_domain"
# Evaluation of H: the shipped model with faces_h0 in its faces slot, against g_e (the same budget) at
# home, and on the held-out scenes and mixed/ with the shipped merge and with faces among its subjects.
assemble "$R/h_model" "$SHIPPED"/default/experts/{birds,animals,places} "$R/faces_h0/expert"
[ -d "$R/h_eval/in_domain_arm" ] || python tools/in_domain.py --model "$R/h_model" --data "$D" --n 400 \
    --experts faces --generalist "$R/f_generalist" --out "$R/h_eval/in_domain_arm"
for m in birds birds+faces; do
  merge=${MERGE/subjects=birds/subjects=$m}
  [ -d "$R/h_eval/val_scenes_$m" ] || expertcolor evaluate --images "$R/val_scenes" --model "$R/h_model" \
      --merge "$merge" --compare expert:faces --out "$R/h_eval/val_scenes_$m"
  [ -d "$R/h_eval/mixed_$m" ] || expertcolor evaluate --images "$D/mixed/images" --groups "$D/mixed/groups" \
      --model "$R/h_model" --merge "$merge" --compare expert:faces --out "$R/h_eval/mixed_$m"
done
# Evaluation of I: birds_i12 against birds_e0 on the 400 CUB test photos (the birds expert alone), decoded
# as shipped (prior correction 0.5), and routed (context, birds) at prior correction 0.25, 0.5, 0.75.
assemble "$R/i_model" "$SHIPPED"/default/experts/{faces,animals,places} "$R/birds_i12/expert"
[ -d "$R/i_eval/in_domain" ] || python tools/in_domain.py --model "$R/i_model" --data "$D" --n 400 \
    --experts birds --out "$R/i_eval/in_domain"
pc_sweep "$R/i_eval" "$R/i_eval/in_domain/birds/photos" "0.25 0.5 0.75" e0 i
# Evaluation of J: as H's, with the shipped merge.
assemble "$R/j_model" "$SHIPPED"/default/experts/{birds,animals,places} "$R/faces_h1/expert"
[ -d "$R/j_eval/in_domain_arm" ] || python tools/in_domain.py --model "$R/j_model" --data "$D" --n 400 \
    --experts faces --generalist "$R/f_generalist" --out "$R/j_eval/in_domain_arm"
[ -d "$R/j_eval/val_scenes" ] || expertcolor evaluate --images "$R/val_scenes" --model "$R/j_model" \
    --merge "$MERGE" --compare routed --out "$R/j_eval/val_scenes"
[ -d "$R/j_eval/mixed" ] || expertcolor evaluate --images "$D/mixed/images" --groups "$D/mixed/groups" \
    --model "$R/j_model" --merge "$MERGE" --compare routed --out "$R/j_eval/mixed"
# Evaluation of K: as I's, birds_k5 against birds_e0 (the shipped birds expert), each over the prior
# corrections that span the other's colourfulness, and birds_k5 on mixed/.
assemble "$R/k_model" "$SHIPPED"/default/experts/{faces,animals,places} "$R/birds_k5/expert"
[ -d "$R/k_eval/in_domain" ] || python tools/in_domain.py --model "$R/k_model" --data "$D" --n 400 \
    --experts birds --out "$R/k_eval/in_domain"
pc_sweep "$R/k_eval" "$R/k_eval/in_domain/birds/photos" "0 0.25 0.5 0.75" e0
pc_sweep "$R/k_eval" "$R/k_eval/in_domain/birds/photos" "0.5 0.75 1" k
assemble "$R/k1_model" "$SHIPPED"/default/experts/{faces,animals,places} "$R/birds_k1/expert"
pc_sweep "$R/k_eval" "$R/k_eval/in_domain/birds/photos" "0.5 0.75" k1
[ -d "$R/k_eval/mixed" ] || expertcolor evaluate --images "$D/mixed/images" --groups "$D/mixed/groups" \
    --model "$R/k_model" --merge "$MERGE" --compare routed --out "$R/k_eval/mixed"
eval_l
echo "== chain done $(date -u +%H:%M:%S); results in $R/*_eval (record them in docs/experiments.md)"
