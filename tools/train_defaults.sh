#!/usr/bin/env bash
# Train the shipped default experts, the grayscale segmenter, the generalist baseline and the
# faces+people variant, exactly as recorded in MODEL_CARD.md. Re-running resumes unfinished runs.
#
#   tools/train_defaults.sh [DATA_DIR] [WEIGHTS_FILE] [RUNS_DIR]
set -euo pipefail
D=${1:-../shared/data}
W=${2:-../shared/weights/mobilenet_v2_imagenet_bnstats.safetensors}
R=${3:-runs}
mkdir -p "$R"
common=(--init-encoder "$W" --workers 1 --threads 2 --no-progress --resume)

# The segmenter's data: each domain's photos with the teacher's label maps mirroring them under
# segmentation/ (held out by each root's own split: train/ and val/ folders, CUB's official split), the
# extra people and ImageNet sets (a seeded 10%), and the COCO photos of mixed/ scored whole after every
# epoch. (Before issue 21 this layout was built into train-segmenter as --data DIR.)
seg_data=(--val-split layout
    --images "$D/faces" "$D/birds" "$D/animals" "$D/places" "$D/segmentation/extra/people/images"
             "$D/segmentation/extra/imagenet/images"
    --labels "$D/segmentation/faces" "$D/segmentation/birds" "$D/segmentation/animals" "$D/segmentation/places"
             "$D/segmentation/extra/people/labels" "$D/segmentation/extra/imagenet/labels"
    --mixed-images "$D/mixed/images" --mixed-labels "$D/mixed/voc")

run() {  # run NAME ARGS...: skip finished runs, log the rest
  local name=$1; shift
  if [ -f "$R/$name/done" ]; then echo "== $name: done"; return; fi
  echo "== $name: $(date -u +%H:%M:%S)"
  "$@" --out "$R/$name" "${common[@]}" > "$R/$name.log" 2>&1
  touch "$R/$name/done"
}

run faces    expertcolor train-expert --name faces   --dataset folder --root "$D/faces"   --epochs 5
run birds    expertcolor train-expert --name birds   --dataset cub    --root "$D/birds"   --epochs 8
run animals  expertcolor train-expert --name animals --dataset folder --root "$D/animals" --epochs 5
run places   expertcolor train-expert --name places  --dataset folder --root "$D/places"  --epochs 5
# First-round segmenter (no mosaic: the option came later); segmenter_v2 below continues from it.
run segmenter expertcolor train-segmenter "${seg_data[@]}" --epochs 3 --mosaic 0
# First-round generalist: the four single-domain training sets, 8629 images x 6 epochs = 51.6k images seen.
run generalist expertcolor train-expert --name generalist --dataset folder cub folder folder \
    --root "$D/faces" "$D/birds" "$D/animals" "$D/places" --epochs 6
# Does a faces expert that also saw whole people serve mixed photos better?
run faces_people expertcolor train-expert --name faces --dataset folder folder \
    --root "$D/faces" "$D/segmentation/extra/people/images" --epochs 5
# The places expert colours every pixel no other expert owns (indoor scenes, vehicles, objects), while
# the places data holds six outdoor scene classes: add the 969 diverse ImageNet samples.
run places_plus expertcolor train-expert --name places --dataset folder folder \
    --root "$D/places" "$D/segmentation/extra/imagenet/images" --epochs 6
# Shipped generalist: the union of exactly what the shipped experts saw (faces+people, birds, animals,
# places+ImageNet: 9759 images) x 6 epochs = 58.4k images >= the shipped experts' 56.2k.
run generalist_fair expertcolor train-expert --name generalist --dataset folder folder cub folder folder folder \
    --root "$D/faces" "$D/segmentation/extra/people/images" "$D/birds" "$D/animals" "$D/places" \
    "$D/segmentation/extra/imagenet/images" --epochs 6
# Second-round segmenter: 16 more epochs from the first, with 2x2 mosaic samples (several small subjects).
run segmenter_v2 expertcolor train-segmenter "${seg_data[@]}" --epochs 16 --mosaic 0.5 --lr 5e-4 \
    --init-from "$R/segmenter/segmenter"
# Second-round experts: fine-tuned from the places expert (--init-from), the one that saw the most
# varied photos, on each domain's own data; same images seen as the first round.
ft=(--init-from "$R/places_plus/expert" --lr 5e-4)
run birds_ft   expertcolor train-expert --name birds   --dataset cub    --root "$D/birds"   --epochs 8 "${ft[@]}"
run animals_ft expertcolor train-expert --name animals --dataset folder --root "$D/animals" --epochs 5 "${ft[@]}"
# Faces: how much should whole people (287 photos) weigh against face crops (2371)?
faces_people=(--name faces --dataset folder folder --root "$D/faces" "$D/segmentation/extra/people/images" --epochs 5)
run faces_ft    expertcolor train-expert "${faces_people[@]}" "${ft[@]}"
run faces_w3_ft expertcolor train-expert "${faces_people[@]}" --root-weight 1 3 "${ft[@]}"
run faces_w8_ft expertcolor train-expert "${faces_people[@]}" --root-weight 1 8 "${ft[@]}"
run people_ft   expertcolor train-expert --name faces --dataset folder --root "$D/segmentation/extra/people/images" \
    --epochs 20 "${ft[@]}"
# Third-round segmenter: 8 more epochs with copy-paste subjects on top of the mosaics.
run segmenter_v3 expertcolor train-segmenter "${seg_data[@]}" --epochs 8 --mosaic 0.5 --paste 0.5 --lr 5e-4 \
    --init-from "$R/segmenter_v2/segmenter"
# Fourth round (shipped): 5 more epochs from segmenter_v2 on 224-px crops instead of 160, nearer the
# 256-px working size it runs at (run larger than it trained, it had scored worse).
run segmenter_hr expertcolor train-segmenter "${seg_data[@]}" --epochs 5 --mosaic 0.5 --lr 2.5e-4 --resolution 224 \
    --init-from "$R/segmenter_v2/segmenter"
# Fifth round (ablation, not shipped): 4 more epochs from segmenter_hr at 256 px, the working size.
run segmenter_r5 expertcolor train-segmenter "${seg_data[@]}" --epochs 4 --mosaic 0.5 --lr 2e-4 --resolution 256 \
    --init-from "$R/segmenter_hr/segmenter"
# Sixth round (ablation, not shipped): people inside scenes drawn 3x as often, and its control.
run segmenter_scene expertcolor train-segmenter "${seg_data[@]}" --epochs 3 --mosaic 0.5 --lr 2.5e-4 --resolution 224 \
    --scene-oversample person=3 --init-from "$R/segmenter_hr/segmenter"
run segmenter_ctrl expertcolor train-segmenter "${seg_data[@]}" --epochs 3 --mosaic 0.5 --lr 2.5e-4 --resolution 224 \
    --init-from "$R/segmenter_hr/segmenter"
# Third-round experts (shipped): each fine-tuned from the generalist (generalist_fair) on its own
# domain, same data and epochs as the experts shipped before; and the generalist continued by the same
# budget on the union (58.4k more images: 116.8k in all vs the routed networks' 114.6k).
gft=(--init-from "$R/generalist_fair/expert" --lr 5e-4)
run faces_g   expertcolor train-expert "${faces_people[@]}" --root-weight 1 3 "${gft[@]}"
run birds_g   expertcolor train-expert --name birds   --dataset cub    --root "$D/birds"   --epochs 8 "${gft[@]}"
run animals_g expertcolor train-expert --name animals --dataset folder --root "$D/animals" --epochs 5 "${gft[@]}"
run places_g  expertcolor train-expert --name places  --dataset folder folder \
    --root "$D/places" "$D/segmentation/extra/imagenet/images" --epochs 6 "${gft[@]}"
run generalist_g expertcolor train-expert --name generalist --dataset folder folder cub folder folder folder \
    --root "$D/faces" "$D/segmentation/extra/people/images" "$D/birds" "$D/animals" "$D/places" \
    "$D/segmentation/extra/imagenet/images" --epochs 6 "${gft[@]}"
echo "== all done $(date -u +%H:%M:%S)"
# The third round's model directory and generalist (shipped before): temperature 0.5, prior correction 0.5 (the largest at
# which every expert keeps half of the true colourfulness on its validation photos:
# tools/tune_decoding.py). Runs trained before the loss weights were stored in the expert need
# tools/backfill_rebalance_weights.py first.
ship_model() {  # ship_model OUT FACES BIRDS ANIMALS PLACES: the float16 model directory
  expertcolor assemble --segmenter "$R/segmenter_hr/segmenter" --expert "${@:2}" \
      --out "$1" --fp16 --temperature 0.5 --prior-correction 0.5
}
ship_generalist() {  # ship_generalist RUN OUT: the generalist, float16, with the same decoding
  python -c "import dataclasses, sys, torch; from expertcolor import Expert
e = Expert.from_pretrained(sys.argv[1]).with_prior_correction(0.5)
e.config = dataclasses.replace(e.config, temperature=0.5)
e.save_pretrained(sys.argv[2], dtype=torch.float16)" "$1/expert" "$2"
}
ship_model "$R/default_model" "$R/faces_g/expert" "$R/birds_g/expert" "$R/animals_g/expert" "$R/places_g/expert"
ship_generalist "$R/generalist_g" "$R/generalist_model"
# Fourth-round experts (animals shipped; places, birds and faces replaced in rounds five, ten, eleven): each
# continues the generalist shipped before (the float16 generalist_model above); birds, animals and
# places learn only from the pixels the routing sends them (--route-labels: the teacher's label maps);
# the faces expert without --route-labels (faces_r, with them, scored worse on people: ablation). And
# the generalist continued on the union by the same budget (38.9k images vs the experts' 38.3k).
S="$D/segmentation"
all_kinds=(folder folder cub folder folder folder)
all_roots=("$D/faces" "$S/extra/people/images" "$D/birds" "$D/animals" "$D/places" "$S/extra/imagenet/images")
all_labels=("$S/faces" "$S/extra/people/labels" "$S/birds" "$S/animals" "$S/places" "$S/extra/imagenet/labels")
rft=(--init-from "$R/generalist_model" --lr 3e-4)
# The places expert on the union of every expert's photos, face crops drawn 0.3x as often.
places_union=(--name places --dataset "${all_kinds[@]}" --root "${all_roots[@]}" --root-weight 0.3 1 1 1 1 1)
run places_r  expertcolor train-expert "${places_union[@]}" --route-labels "${all_labels[@]}" --epochs 2 "${rft[@]}"
# Each expert's data and epochs, shared by its runs with and without route labels.
faces_data=(--name faces --dataset folder --root "$D/faces" "$S/extra/people/images" --root-weight 1 3 --epochs 2)
birds_data=(--name birds --dataset cub folder --root "$D/birds" "$S/extra/imagenet/images" --epochs 3)
animals_data=(--name animals --dataset folder --root "$D/animals" "$S/extra/imagenet/images" --epochs 2)
birds_labels=(--route-labels "$S/birds" "$S/extra/imagenet/labels")
animals_labels=(--route-labels "$S/animals" "$S/extra/imagenet/labels")
run faces_u   expertcolor train-expert "${faces_data[@]}" "${rft[@]}"
run faces_r   expertcolor train-expert "${faces_data[@]}" --route-labels "$S/faces" "$S/extra/people/labels" "${rft[@]}"
run birds_r   expertcolor train-expert "${birds_data[@]}" "${birds_labels[@]}" "${rft[@]}"
run animals_r expertcolor train-expert "${animals_data[@]}" "${animals_labels[@]}" "${rft[@]}"
# Ablations: birds and animals without --route-labels (same data, epochs and start).
run birds_u   expertcolor train-expert "${birds_data[@]}" "${rft[@]}"
run animals_u expertcolor train-expert "${animals_data[@]}" "${rft[@]}"
run generalist_c expertcolor train-expert --name generalist --dataset "${all_kinds[@]}" --root "${all_roots[@]}" \
    --epochs 4 "${rft[@]}"
# The fourth round's model directory (shipped before) and the shipped generalist (expertcolor/pretrained/generalist).
ship_model "$R/default_model_r" "$R/faces_u/expert" "$R/birds_r/expert" "$R/animals_r/expert" "$R/places_r/expert"
ship_generalist "$R/generalist_c" "$R/generalist_model_r"
# Fifth round (not shipped): what did the route labels do for the places expert? The same run with
# the loss on every pixel (places_u2), with off-route pixels at half weight (places_o5), with more
# budget (places_r3, 3 epochs: 29.2k images), and places_u2 with seed 1. These four were meant to
# continue generalist_g like places_r, but were started from expertcolor/pretrained/generalist after
# generalist_c had replaced it there (their provenance says so: tools/lineage.py): recorded as run.
cft=(--init-from "$R/generalist_model_r" --lr 3e-4)
run places_u2    expertcolor train-expert "${places_union[@]}" --epochs 2 "${cft[@]}"
run places_o5    expertcolor train-expert "${places_union[@]}" --route-labels "${all_labels[@]}" --off-route-weight 0.5 \
    --epochs 2 "${cft[@]}"
run places_r3    expertcolor train-expert "${places_union[@]}" --route-labels "${all_labels[@]}" --epochs 3 "${cft[@]}"
run places_u2_s1 expertcolor train-expert "${places_union[@]}" --epochs 2 --seed 1 "${cft[@]}"
# The fifth round's model directory (shipped before; its places expert had generalist_c's budget too).
ship_model "$R/default_model_r5" "$R/faces_u/expert" "$R/birds_r/expert" "$R/animals_r/expert" "$R/places_u2/expert"
# Ablation (not shipped): faces, birds and animals continued from places_u2 instead of generalist_g,
# same data, epochs and learning rate as the fourth round.
pft=(--init-from "$R/places_u2/expert" --lr 3e-4)
run animals_p expertcolor train-expert "${animals_data[@]}" "${animals_labels[@]}" "${pft[@]}"
run birds_p   expertcolor train-expert "${birds_data[@]}" "${birds_labels[@]}" "${pft[@]}"
run faces_p   expertcolor train-expert "${faces_data[@]}" "${pft[@]}"
# Sixth round (shipped): the places expert without route labels again, now from the intended start
# (generalist_g, like every other expert, so the budget matches the generalist's), with a second seed;
# and the generalist baseline again with seed 1, for its own run-to-run spread.
run places_u2g    expertcolor train-expert "${places_union[@]}" --epochs 2 "${rft[@]}"
run places_u2g_s1 expertcolor train-expert "${places_union[@]}" --epochs 2 --seed 1 "${rft[@]}"
run generalist_c_s1 expertcolor train-expert --name generalist --dataset "${all_kinds[@]}" --root "${all_roots[@]}" \
    --epochs 4 --seed 1 "${rft[@]}"
ship_generalist "$R/generalist_c_s1" "$R/generalist_model_s1"
# The shipped model directory (expertcolor/pretrained/default).
ship_model "$R/default_model_r6" "$R/faces_u/expert" "$R/birds_r/expert" "$R/animals_r/expert" "$R/places_u2g/expert"
# Seventh round (not shipped): three seeds per arm. Seeds 1 and 2 of every routed expert (places_u2g_s1
# above is seed 1's places expert) and seed 2 of the generalist, each recipe exactly as its seed 0.
for s in 1 2; do
  [ "$s" = 1 ] || run places_u2g_s$s expertcolor train-expert "${places_union[@]}" --epochs 2 --seed $s "${rft[@]}"
  run faces_u_s$s   expertcolor train-expert "${faces_data[@]}" --seed $s "${rft[@]}"
  run birds_r_s$s   expertcolor train-expert "${birds_data[@]}" "${birds_labels[@]}" --seed $s "${rft[@]}"
  run animals_r_s$s expertcolor train-expert "${animals_data[@]}" "${animals_labels[@]}" --seed $s "${rft[@]}"
  ship_model "$R/default_model_s$s" "$R/faces_u_s$s/expert" "$R/birds_r_s$s/expert" "$R/animals_r_s$s/expert" \
      "$R/places_u2g_s$s/expert"
done
run generalist_c_s2 expertcolor train-expert --name generalist --dataset "${all_kinds[@]}" --root "${all_roots[@]}" \
    --epochs 4 --seed 2 "${rft[@]}"
ship_generalist "$R/generalist_c_s2" "$R/generalist_model_s2"
# Eighth round (ablation, not shipped): the faces expert given the generalist's own in-domain exposure
# (4 epochs, 10.6 k draws; the generalist draws ~10.7 k face crops and people photos from the union),
# then every seed's experts against its generalist on their own validation photos (tools/in_domain.py).
run faces_u4_s0 expertcolor train-expert --name faces --dataset folder --root "$D/faces" "$S/extra/people/images" \
    --root-weight 1 3 --epochs 4 "${rft[@]}"
ship_model "$R/model_faces_u4_s0" "$R/faces_u4_s0/expert" "$R/birds_r/expert" "$R/animals_r/expert" "$R/places_u2g/expert"
[ -d "$R/indom_s0" ] || python tools/in_domain.py --model "$R/default_model_r6" \
    --generalist expertcolor/pretrained/generalist --data "$D" --out "$R/indom_s0"
for s in 1 2; do
  [ -d "$R/indom_s$s" ] || python tools/in_domain.py --model "$R/default_model_s$s" \
      --generalist "$R/generalist_model_s$s" --data "$D" --out "$R/indom_s$s"
done
[ -d "$R/indom_faces_u4_s0" ] || python tools/in_domain.py --model "$R/model_faces_u4_s0" \
    --generalist expertcolor/pretrained/generalist --data "$D" --experts faces --out "$R/indom_faces_u4_s0"
# Ninth round (ablation, not shipped): does the ImageNet encoder initialisation help? The same short
# runs with and without --init-encoder (run() adds it through common; run_scratch() leaves it out).
run_scratch() {  # run() without the --init-encoder pair at the head of common
  local saved=("${common[@]}"); common=("${common[@]:2}"); run "$@"; common=("${saved[@]}"); }
run         faces_init    expertcolor train-expert --name faces --dataset folder --root "$D/faces" --epochs 5
run_scratch faces_scratch expertcolor train-expert --name faces --dataset folder --root "$D/faces" --epochs 5
run         seg_init      expertcolor train-segmenter "${seg_data[@]}" --epochs 1 --mosaic 0
run_scratch seg_scratch   expertcolor train-segmenter "${seg_data[@]}" --epochs 1 --mosaic 0
for v in init scratch; do
  ship_model "$R/model_faces_$v" "$R/faces_$v/expert" "$R/birds_r/expert" "$R/animals_r/expert" "$R/places_u2g/expert"
  [ -d "$R/indom_faces_$v" ] || python tools/in_domain.py --model "$R/model_faces_$v" --data "$D" --experts faces \
      --out "$R/indom_faces_$v"
done
# Tenth round (shipped birds expert and generalist; issue 23, stages E and F of
# tools/train_specialists.sh): the birds expert branched from the generalist shipped before
# (generalist_model_r) on four times the bird photos (shared/data/more: the rest of the CUB subset and
# BIRDS-525), every pixel counting, the rest of the union replayed at 0.1 (2 epochs: 31.3 k images);
# and the generalist arm, the same start continued on the enlarged union by the same steps and schedule.
M="$D/more"
bird_union=(--dataset folder folder cub folder folder folder folder folder --root "$D/faces" "$S/extra/people/images"
            "$D/birds" "$M/birds_cub" "$M/birds525" "$D/animals" "$D/places" "$S/extra/imagenet/images")
run birds_e0 expertcolor train-expert --name birds "${bird_union[@]}" --root-weight 0.1 0.1 1 1 1 0.1 0.1 0.1 \
    --epochs 2 --init-from "$R/generalist_model_r" --lr 3e-4
run generalist_e expertcolor train-expert --name generalist --epochs 2 --max-images 15670 \
    --dataset folder folder folder folder cub folder folder folder folder folder \
    --root "$D/faces" "$M/faces" "$S/extra/people/images" "$D/animals" "$D/birds" "$M/birds_cub" "$M/birds525" \
           "$D/places" "$M/scenes" "$S/extra/imagenet/images" --root-weight 1 0.5 1 1 1 1 1 1 1 1 \
    --init-from "$R/generalist_model_r" --lr 3e-4
# The tenth round's model directory (shipped before): the new birds expert, which alone colours
# the whole of a photo whose main subject is a bird (the context merge; chosen on the domains'
# validation photos), and the shipped generalist (expertcolor/pretrained/generalist).
expertcolor assemble --segmenter "$R/segmenter_hr/segmenter" --out "$R/default_model_r10" --fp16 \
    --expert "$R/faces_u/expert" "$R/birds_e0/expert" "$R/animals_r/expert" "$R/places_u2g/expert" \
    --temperature 0.5 --prior-correction 0.5 --merge context:strength=1,subjects=birds,drop_share=0.01
ship_generalist "$R/generalist_e" "$R/generalist_model_r10"
# Eleventh round (shipped faces expert; issue 23, stage J of tools/train_specialists.sh): the faces expert
# branched from the same start as birds_e0 on 3.4 times the face crops (shared/data/more/faces) and the
# people photos drawn 3x, the rest of the shipped union replayed at 0.1, capped at 15,670 photos an epoch so
# that its budget is generalist_e's (2 epochs: 31.3 k images).
face_union=(--dataset folder folder folder cub folder folder folder --root "$D/faces" "$M/faces"
            "$S/extra/people/images" "$D/birds" "$D/animals" "$D/places" "$S/extra/imagenet/images")
run faces_h1 expertcolor train-expert --name faces "${face_union[@]}" --root-weight 1 1 3 0.1 0.1 0.1 0.1 \
    --max-images 15670 --epochs 2 --init-from "$R/generalist_model_r" --lr 3e-4
# The shipped model directory (expertcolor/pretrained/default).
expertcolor assemble --segmenter "$R/segmenter_hr/segmenter" --out "$R/default_model_r11" --fp16 \
    --expert "$R/faces_h1/expert" "$R/birds_e0/expert" "$R/animals_r/expert" "$R/places_u2g/expert" \
    --temperature 0.5 --prior-correction 0.5 --merge context:strength=1,subjects=birds,drop_share=0.01
