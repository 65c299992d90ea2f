"""Merge invariants: weights sum to 1, hard = argmax, feather only near boundaries, guided follows L."""

import pytest
import torch

from expertcolor.merge import (
    blend,
    box_filter,
    create_merge,
    guided_filter,
    list_merges,
    normalize_weights,
    resize_rows,
    upsample_ab,
)


def two_regions(h=40, w=60, split=30):
    """Expert 0 owns the left part, expert 1 the right; a third expert gets nothing."""
    probs = torch.zeros(1, 3, h, w)
    probs[:, 0, :, :split] = 0.8
    probs[:, 1, :, :split] = 0.2
    probs[:, 1, :, split:] = 0.7
    probs[:, 0, :, split:] = 0.3
    guide = torch.zeros(1, 1, h, w)
    guide[..., split:] = 1.0  # an L edge exactly at the region boundary
    return probs, guide


@pytest.mark.parametrize("name", ["hard", "soft", "feather", "guided", "context"])
@pytest.mark.parametrize("background", [None, 0, 3])
def test_weights_sum_to_one_and_are_non_negative(name, background):
    torch.manual_seed(0)
    probs = torch.rand(2, 4, 33, 47).softmax(1)
    guide = torch.rand(2, 1, 33, 47)
    w = create_merge(name)(probs, guide, background=background)
    assert w.shape == probs.shape and (w >= 0).all()
    assert torch.allclose(w.sum(1), torch.ones(2, 33, 47), atol=1e-5)


def test_hard_is_argmax():
    probs, guide = two_regions()
    w = create_merge("hard")(probs, guide)
    assert torch.equal(w.argmax(1), probs.argmax(1))
    assert set(w.unique().tolist()) == {0.0, 1.0}


def test_feather_changes_only_a_band():
    probs, guide = two_regions(split=30)
    hard = create_merge("hard")(probs, guide)
    w = create_merge("feather", width=16)(probs, guide)
    changed = (w - hard).abs().amax(dim=(0, 1, 2)) > 1e-6  # per column
    cols = changed.nonzero().flatten()
    assert cols.numel() > 0
    assert cols.min() >= 30 - 8 and cols.max() < 30 + 8
    assert w[0, 2].max() == 0  # an expert with no pixels stays at zero


def test_guided_follows_edges_of_l():
    probs, guide = two_regions(split=30)
    # the routing boundary is 4 px off the L edge: guided weights snap towards the L edge
    probs = torch.roll(probs, shifts=4, dims=-1)
    probs[..., :4] = probs[..., 4:5]
    w = create_merge("guided", radius=8, eps=1e-4)(probs, guide)
    feather = create_merge("feather", width=16)(probs, guide)
    # columns 30..33 are bright (L side of expert 1) but routed to expert 0
    assert w[0, 1, :, 30:34].mean() > feather[0, 1, :, 30:34].mean() + 0.2
    assert torch.allclose(w.sum(1), torch.ones_like(w[:, 0]), atol=1e-5)


def test_unknown_strategy_and_params():
    assert list_merges() == ["context", "feather", "guided", "hard", "soft"]
    with pytest.raises(ValueError, match="unknown merge"):
        create_merge("median")
    with pytest.raises(ValueError, match="bad parameters"):
        create_merge("feather", radius=3)
    assert create_merge("feather", width=8).to_dict() == {"name": "feather", "width": 8}


def test_blend_and_shapes():
    ab = torch.stack([torch.full((1, 2, 4, 4), 10.0), torch.full((1, 2, 4, 4), -20.0)], dim=1)
    w = torch.zeros(1, 2, 4, 4)
    w[:, 0, :, :2] = 1
    w[:, 1, :, 2:] = 1
    out = blend(ab, w)
    assert out.shape == (1, 2, 4, 4)
    assert (out[..., :2] == 10).all() and (out[..., 2:] == -20).all()
    with pytest.raises(ValueError, match="do not match"):
        blend(ab, w[:, :1])


def test_normalize_weights_drops_small_and_falls_back():
    w = torch.tensor([0.02, 0.5, 0.48]).view(1, 3, 1, 1)
    out = normalize_weights(w, min_weight=0.05)
    assert out[0, 0] == 0 and torch.isclose(out.sum(), torch.tensor(1.0))
    zero = torch.zeros(1, 3, 1, 1)
    assert normalize_weights(zero).sum() == 1


def test_filters_preserve_constants():
    x = torch.full((1, 2, 9, 11), 3.0)
    assert torch.allclose(box_filter(x, 2), x)
    guide = torch.rand(1, 1, 9, 11)
    assert torch.allclose(guided_filter(guide, x, 2, 1e-3), x, atol=1e-4)


def test_upsample_ab_modes():
    ab = torch.full((1, 2, 8, 8), 5.0)
    L_small = torch.rand(1, 1, 8, 8) * 100
    L_full = torch.rand(1, 1, 31, 29) * 100
    for mode in ("guided", "bilinear"):
        up = upsample_ab(ab, L_small, L_full, mode=mode)
        assert up.shape == (1, 2, 31, 29)
        assert torch.allclose(up, torch.full_like(up, 5.0), atol=1e-3)
    with pytest.raises(ValueError, match="upsample mode"):
        upsample_ab(ab, L_small, L_full, mode="nearest")


@pytest.mark.parametrize("mode", ["guided", "bilinear"])
def test_upsampling_in_strips_matches_the_whole_image(mode):
    torch.manual_seed(0)
    ab, L_small = torch.randn(1, 2, 9, 13) * 30, torch.rand(1, 1, 9, 13) * 100
    L_full = torch.rand(1, 1, 61, 83) * 100
    whole = upsample_ab(ab, L_small, L_full, mode=mode)
    for step in (1, 7, 60):  # strips of 1, 7 and 60 rows, the last one short
        strips = torch.cat([upsample_ab(ab, L_small, L_full, mode=mode, rows=(r, min(61, r + step)))
                            for r in range(0, 61, step)], dim=2)
        assert torch.allclose(strips, whole, atol=1e-4)


def test_resize_rows_is_torch_bilinear_row_by_row():
    x = torch.randn(2, 3, 5, 7)
    ref = torch.nn.functional.interpolate(x, size=(23, 17), mode="bilinear", align_corners=False)
    assert torch.allclose(resize_rows(x, (23, 17)), ref)
    assert torch.allclose(resize_rows(x, (23, 17), rows=(4, 11)), ref[..., 4:11, :], atol=1e-5)
    assert torch.allclose(resize_rows(x, (3, 17), rows=(0, 3)),  # downscaling too
                          torch.nn.functional.interpolate(x, size=(3, 17), mode="bilinear", align_corners=False),
                          atol=1e-5)
    with pytest.raises(ValueError, match="rows"):
        resize_rows(x, (23, 17), rows=(5, 5))


def subject_on_background(share=0.25, h=40, w=40):
    """Expert 0 is the background; expert 1 (a subject) owns the top-left block of ``share`` of the photo."""
    probs = torch.zeros(1, 3, h, w)
    probs[:, 0] = 1.0
    side = round((share * h * w) ** 0.5)
    probs[:, 0, :side, :side] = 0.0
    probs[:, 1, :side, :side] = 1.0
    return probs, torch.zeros(1, 1, h, w)


def test_context_hands_the_background_to_the_main_subject():
    probs, guide = subject_on_background(0.25)
    soft = create_merge("soft")(probs, guide, background=0)
    full = create_merge("context", strength=1.0)(probs, guide, background=0)
    half = create_merge("context", strength=0.5)(probs, guide, background=0)
    assert torch.equal(create_merge("context", strength=0.0)(probs, guide, background=0), soft)
    assert full[0, 0].max() == 0 and torch.allclose(full[0, 1], torch.ones(40, 40))  # background expert idle
    assert torch.allclose(half[0, 0], 0.5 * soft[0, 0]) and torch.allclose(half[0, 1], soft[0, 1] + 0.5 * soft[0, 0])
    assert full[0, 2].max() == 0  # an expert with no pixels stays idle


def test_context_needs_a_large_enough_subject_and_a_background():
    probs, guide = subject_on_background(0.04)
    soft = create_merge("soft")(probs, guide, background=0)
    assert torch.equal(create_merge("context", min_share=0.1)(probs, guide, background=0), soft)
    assert not torch.equal(create_merge("context", min_share=0.01)(probs, guide, background=0), soft)
    assert torch.equal(create_merge("context")(probs, guide), soft)  # no background index: soft


def test_context_subjects_name_the_experts_that_may_take_over():
    probs, guide = subject_on_background(0.25)
    names = ["places", "birds", "faces"]
    soft = create_merge("soft")(probs, guide, background=0)
    full = create_merge("context")(probs, guide, background=0)
    spec = "context:subjects=birds+animals"
    assert torch.equal(create_merge(spec)(probs, guide, background=0, experts=names), full)
    # the main subject is not named: soft weights, even though a named expert is present (smaller)
    probs[:, 2, -4:, -4:], probs[:, 0, -4:, -4:] = 1.0, 0.0
    only_faces = create_merge("context:subjects=faces")(probs, guide, background=0, experts=names)
    assert torch.equal(only_faces, create_merge("soft")(probs, guide, background=0))
    unnamed = create_merge("context:subjects=faces")(probs, guide, background=0, experts=["places", "x", "y"])
    assert torch.equal(unnamed, create_merge("soft")(probs, guide, background=0))
    with pytest.raises(ValueError, match="needs the experts' names"):
        create_merge(spec)(probs, guide, background=0)
    with pytest.raises(ValueError, match="2 expert names for 3"):
        create_merge(spec)(probs, guide, background=0, experts=names[:2])
    assert create_merge(spec).to_dict()["subjects"] == "birds+animals"
    assert not torch.equal(soft, full)


def test_context_share_mode_mixes_photo_shares_into_every_pixel():
    probs, guide = subject_on_background(0.25)
    w = create_merge("context", strength=1.0, mode="share")(probs, guide, background=0)
    share = normalize_weights(probs, 0.05).mean(dim=(2, 3))
    assert torch.allclose(w, share[:, :, None, None].expand_as(w), atol=1e-6)


def test_context_drop_share_skips_stray_experts_as_soft_does():
    probs, guide = subject_on_background(0.25)
    probs[:, 2, -2:, -2:], probs[:, 0, -2:, -2:] = 1.0, 0.0  # 4 stray pixels of a third expert
    keep = create_merge("context")(probs, guide, background=0)
    drop = create_merge("context:drop_share=0.01")(probs, guide, background=0)
    assert keep[0, 2].max() > 0 and drop[0, 2].max() == 0
    assert torch.allclose(drop.sum(1), torch.ones(1, 40, 40))


@pytest.mark.parametrize("params", [{"strength": 1.5}, {"min_share": -0.1}, {"mode": "global"}, {"drop_share": 1.0}])
def test_context_refuses_bad_parameters(params):
    with pytest.raises(ValueError, match="context merge"):
        create_merge("context", **params)


def test_background_index_out_of_range_is_refused():
    probs, guide = subject_on_background()
    with pytest.raises(ValueError, match="background expert index 3"):
        create_merge("soft")(probs, guide, background=3)


def test_merge_spec_strings_carry_parameters():
    m = create_merge("context:strength=0.75,mode=share,min_share=0.1")
    assert m.name == "context" and m.strength == 0.75 and m.mode == "share" and m.min_share == 0.1
    assert create_merge("feather:width=8").width == 8
    assert create_merge("soft") == create_merge("soft:")
    with pytest.raises(ValueError, match="bad merge parameter"):
        create_merge("context:strength")
    with pytest.raises(ValueError, match="bad parameters"):
        create_merge("soft:width=3")


def test_weight_region_covers_the_weighted_pixels_with_margin_on_the_stride_grid():
    from expertcolor.merge import weight_region

    w = torch.zeros(2, 256, 192)
    w[0, 100:120, 40:50] = 0.3
    w[1, 130:131, 60:61] = 1.0  # the box is the union over the batch
    top, bottom, left, right = weight_region(w, margin=16, stride=32)
    assert (top, bottom, left, right) == (64, 160, 0, 96)
    assert all(v % 32 == 0 for v in (top, bottom, left, right))
    assert weight_region(w, margin=16, stride=32, max_fraction=0.1) is None  # too large to be worth a crop
    assert weight_region(torch.zeros(1, 64, 64), margin=0) is None  # nothing weighted
    w = torch.zeros(1, 100, 100)
    w[0, 98:, 98:] = 1.0
    assert weight_region(w, margin=8, stride=32) == (64, 100, 64, 100)  # clamped to the image
    with pytest.raises(ValueError, match=r"\(B, h, w\)"):
        weight_region(torch.zeros(1, 1, 8, 8), margin=0)


def test_unknown_strategy_is_a_key_error_listing_the_choices():
    from expertcolor.merge import MERGES

    with pytest.raises(KeyError, match=r"unknown merge strategy 'median'; choose from \['context', 'feather'"):
        create_merge("median:width=3")
    assert MERGES.names() == list_merges() and MERGES.get("soft") is type(create_merge("soft"))


def test_normalize_weights_falls_back_to_the_largest_weight_not_expert_0():
    w = torch.tensor([0.0, 0.03, 0.04]).view(1, 3, 1, 1)  # every weight below min_weight
    assert normalize_weights(w, min_weight=0.05).flatten().tolist() == [0.0, 0.0, 1.0]


def test_soft_min_share_drops_experts_with_a_few_stray_pixels():
    probs, guide = two_regions()
    # two_regions leaves expert 2 nothing
    probs[:, :, :2, :2] = torch.tensor([0.0, 0.0, 1.0]).view(1, 3, 1, 1)  # expert 2 leads 4 stray pixels
    plain = create_merge("soft", min_share=0)(probs, guide)
    assert bool((plain[:, 2] > 0).any())  # it would run on the whole photo for them
    small = probs.clone()
    small[:, :, 10:20, 40:50] = torch.tensor([0.05, 0.05, 0.9]).view(1, 3, 1, 1)  # a real subject: 100 pixels
    w = create_merge("soft", min_share=0.01)(probs, guide)
    assert not bool((w[:, 2] > 0).any())
    assert torch.allclose(w.sum(dim=1), torch.ones(1, *w.shape[-2:]))
    assert torch.equal(w[:, :2, 5:, 5:] > 0, plain[:, :2, 5:, 5:] > 0)  # the others keep their pixels
    # A subject of 100 of 2400 pixels (a 4% share) keeps its expert.
    assert bool((create_merge("soft", min_share=0.01)(small, guide)[:, 2, 10:20, 40:50] > 0.8).all())
    # Each photo keeps its largest expert even when every share is below min_share.
    assert torch.allclose(create_merge("soft", min_share=0.9)(probs, guide).sum(dim=1), torch.ones(1, 40, 60))
    assert create_merge("soft").to_dict() == {"name": "soft", "min_weight": 0.05, "min_share": 0.01}
    with pytest.raises(ValueError, match="min_share"):
        create_merge("soft", min_share=1.5)
