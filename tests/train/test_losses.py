"""Soft-encoded rebalanced CE, regression losses and metrics."""

from __future__ import annotations

import pytest
import torch

from expertcolor import create_expert
from expertcolor.train.expert import SHIPPED_DECODING
from expertcolor.train.losses import (
    RegressionLoss,
    SegLoss,
    SoftEncodedCELoss,
    create_loss,
    estimate_bin_prior,
    list_losses,
    loss_head,
    pool_target,
    rebalance_weights,
    soft_encode,
    soft_encode_sparse,
    split_pixel_weights,
)
from expertcolor.train.metrics import colorfulness, confusion_matrix, group_confusion, iou_from_confusion

SHIPPED = dict(zip(("temperature", "prior_correction"), SHIPPED_DECODING))

CENTERS = create_expert(name="x").bin_centers  # (Q, 2) normalised


def test_soft_encoding_k_nearest_gaussian() -> None:
    centers_ab = CENTERS * 110
    ab = torch.tensor([[3.0, -2.0], [41.0, 18.0]]).T.reshape(1, 2, 1, 2)
    target, nearest = soft_encode(ab, centers_ab, k=5, sigma=5.0)
    assert target.shape == (1, CENTERS.shape[0], 1, 2)
    assert torch.allclose(target.sum(1), torch.ones(1, 1, 2))
    assert ((target > 0).sum(1) == 5).all()
    assert torch.allclose(centers_ab[nearest[0, 0, 0]], torch.tensor([0.0, 0.0]))
    assert torch.allclose(centers_ab[nearest[0, 0, 1]], torch.tensor([40.0, 20.0]))
    # The nearest bin gets the largest weight.
    assert int(target[0, :, 0, 1].argmax()) == int(nearest[0, 0, 1])


def test_sparse_soft_encoding_matches_brute_force() -> None:
    """The fast (B, h, w, Q)-layout search picks the same bins and weights as sorting all distances."""
    centers_ab = CENTERS * 110
    ab = (torch.rand(3, 2, 9, 11, generator=torch.Generator().manual_seed(0)) - 0.5) * 200
    idx, w = soft_encode_sparse(ab, centers_ab, k=5, sigma=5.0)
    d = torch.cdist(ab.permute(0, 2, 3, 1).reshape(-1, 2).double(), centers_ab.double())  # (N, Q)
    ref_d, ref_idx = d.sort(dim=1)
    ref_w = torch.softmax(-ref_d[:, :5] ** 2 / (2 * 5.0**2), dim=1)
    got_idx = idx.permute(0, 2, 3, 1).reshape(-1, 5)
    assert torch.equal(got_idx, ref_idx[:, :5])
    assert torch.allclose(w.permute(0, 2, 3, 1).reshape(-1, 5).double(), ref_w, atol=1e-5)


def test_rebalance_weights_have_expectation_one_and_favour_rare_bins() -> None:
    prior = torch.rand(CENTERS.shape[0]) ** 4
    prior /= prior.sum()
    w = rebalance_weights(prior, 0.5)
    assert abs(float((prior * w).sum()) - 1.0) < 1e-5
    assert float(w[prior.argmin()]) > float(w[prior.argmax()])
    uniform = rebalance_weights(prior, 1.0)
    assert torch.allclose(uniform, torch.ones_like(uniform), atol=1e-5)


def test_bin_prior_is_a_smoothed_distribution() -> None:
    ab = torch.zeros(2, 2, 4, 4)
    ab[:, 0] = 30.0
    p = estimate_bin_prior([ab], CENTERS * 110)
    assert abs(float(p.sum()) - 1.0) < 1e-5
    assert torch.allclose((CENTERS * 110)[p.argmax()], torch.tensor([30.0, 0.0]))
    assert int((p > 1e-3).sum()) > 1  # smoothed


def test_weighted_bin_prior_counts_only_weighted_pixels() -> None:
    ab = torch.zeros(1, 2, 4, 4)
    ab[:, 0, :, :2] = 30.0  # left half red-ish, right half neutral
    w = torch.zeros(1, 1, 4, 4)
    w[..., :2] = 1.0
    p = estimate_bin_prior([torch.cat([ab, w], 1)], CENTERS * 110)
    assert torch.equal(p, estimate_bin_prior([ab[..., :2]], CENTERS * 110))


def test_pixel_weights_restrict_the_loss_to_routed_pixels() -> None:
    """A weight channel of ones changes nothing; a 0/1 channel gives the loss of the weighted part
    alone; no weighted pixel gives 0 with a (zero) gradient."""
    torch.manual_seed(0)
    ab = torch.randn(2, 2, 8, 16) * 25
    w = torch.zeros(2, 1, 8, 16)
    w[..., :8] = 1.0  # the left half of each image; logits at 1/2 resolution keep the halves apart
    logits = torch.randn(2, CENTERS.shape[0], 4, 8, requires_grad=True)
    raw = torch.randn(2, 2, 4, 8)
    for fn in (SoftEncodedCELoss(CENTERS, torch.rand(CENTERS.shape[0]).softmax(0)), RegressionLoss("mse"),
               RegressionLoss("smooth_l1")):
        out = logits if isinstance(fn, SoftEncodedCELoss) else raw
        full = fn(out, ab)
        assert torch.allclose(fn(out, torch.cat([ab, torch.ones_like(w)], 1)), full)
        left = fn(out[..., :4], ab[..., :8])
        assert torch.allclose(fn(out, torch.cat([ab, w], 1)), left, rtol=1e-5)
        assert not torch.allclose(left, full)
    none = SoftEncodedCELoss(CENTERS)(logits, torch.cat([ab, torch.zeros_like(w)], 1))
    none.backward()
    assert float(none.detach()) == 0.0 and torch.equal(logits.grad, torch.zeros_like(logits))


def test_split_pixel_weights_rejects_other_shapes() -> None:
    ab, w = split_pixel_weights(torch.zeros(1, 3, 2, 2))
    assert ab.shape == (1, 2, 2, 2) and w.shape == (1, 1, 2, 2)
    assert split_pixel_weights(torch.zeros(1, 2, 2, 2))[1] is None
    with pytest.raises(ValueError, match=r"ab \(B, 2, H, W\) or ab \+ weight"):
        split_pixel_weights(torch.zeros(1, 4, 2, 2))


def test_soft_ce_prefers_the_right_colour() -> None:
    loss = SoftEncodedCELoss(CENTERS)
    ab = torch.zeros(1, 2, 8, 8)
    ab[:, 0] = 40.0
    target, _ = soft_encode(pool_target(ab, (2, 2)), CENTERS * 110)
    good = torch.log(target + 1e-4) * 5
    bad = torch.zeros_like(good)
    assert float(loss(good, ab)) < float(loss(bad, ab))
    hard = SoftEncodedCELoss(CENTERS, soft=False)
    assert float(hard(good, ab)) < float(hard(bad, ab))


def test_regression_losses() -> None:
    ab = torch.randn(2, 2, 8, 8) * 20
    exact = pool_target(ab, (4, 4)) / 110
    for kind in ("mse", "smooth_l1"):
        fn = RegressionLoss(kind)
        assert float(fn(exact, ab)) < 1e-8 < float(fn(torch.zeros_like(exact), ab))


def test_losses_by_name() -> None:
    assert list_losses() == ["ce", "mse", "seg_ce", "smooth_l1", "soft_ce"]
    assert list_losses("classification") == ["ce", "soft_ce"] and list_losses("regression") == ["mse", "smooth_l1"]
    assert list_losses("segmentation") == ["seg_ce"] and loss_head("smooth_l1") == "regression"
    prior = torch.softmax(torch.randn(CENTERS.shape[0]), 0)
    soft = create_loss("soft_ce", centers=CENTERS, prior=prior, lam=0.3)
    assert isinstance(soft, SoftEncodedCELoss) and soft.soft and soft.lam == 0.3
    assert torch.equal(soft.weights, SoftEncodedCELoss(CENTERS, prior, lam=0.3).weights)
    assert not create_loss("ce", centers=CENTERS).soft
    assert create_loss("mse").kind == "mse" and create_loss("smooth_l1", beta=0.1).beta == 0.1
    seg = create_loss("seg_ce", weight=torch.ones(21))
    assert isinstance(seg, SegLoss) and seg.weight.shape == (21,)
    logits, target = torch.randn(2, 21, 4, 4), torch.randint(0, 21, (2, 8, 8))
    target[:, :2] = 255  # ignored
    assert torch.isfinite(create_loss("seg_ce")(logits, target))
    with pytest.raises(KeyError, match=r"unknown loss 'l2'; choose from \['ce', 'mse'"):
        create_loss("l2")
    with pytest.raises(KeyError, match="unknown loss"):
        loss_head("l2")
    with pytest.raises(ValueError, match="unknown head 'detection'"):
        list_losses("detection")


def test_colorfulness_and_iou() -> None:
    gray = torch.full((1, 3, 8, 8), 0.5)
    assert float(colorfulness(gray)) < 1e-4
    vivid = torch.zeros(1, 3, 8, 8)
    vivid[:, 0, :, :4] = 1.0
    vivid[:, 2, :, 4:] = 1.0
    assert float(colorfulness(vivid)) > 50
    target = torch.tensor([[0, 15, 3, 255]])
    pred = torch.tensor([[0, 15, 8, 0]])
    conf = confusion_matrix(pred, target, 21)
    assert int(conf.sum()) == 3
    iou, miou = iou_from_confusion(conf)
    assert float(iou[0]) == 1.0 and float(iou[15]) == 1.0 and float(iou[3]) == 0.0
    g = group_confusion(conf)
    assert g.shape == (4, 4) and int(g[2, 3]) == 1  # bird predicted as animal


def test_distillation_adds_the_kl_to_the_teacher_and_is_zero_when_they_agree() -> None:
    from expertcolor.train.losses import DistillationLoss

    torch.manual_seed(0)
    base = SoftEncodedCELoss(CENTERS)
    q = base.centers_ab.shape[0]
    student, target = torch.randn(2, q, 4, 4), torch.randn(2, 2, 16, 16) * 20
    loss = DistillationLoss(base, q, weight=0.5)
    same = loss(torch.cat([student, student], 1), target)
    assert torch.allclose(same, base(student, target))  # KL of a distribution to itself is 0
    other = loss(torch.cat([student, torch.randn_like(student)], 1), target)
    assert other > same
    with pytest.raises(ValueError, match="channels"):
        loss(student, target)


def test_boost_chroma_scales_ab_only_and_keeps_hue() -> None:
    from expertcolor.train.losses import boost_chroma

    ab = torch.tensor([[30.0, -40.0], [0.0, 10.0]]).T.reshape(1, 2, 1, 2)  # pixels (30, 0) and (-40, 10)
    weight = torch.tensor([0.0, 1.0]).reshape(1, 1, 1, 2)
    out = boost_chroma(torch.cat([ab, weight], 1), 1.2)
    assert torch.allclose(out[:, :2], torch.tensor([[36.0, -48.0], [0.0, 12.0]]).T.reshape(1, 2, 1, 2))
    assert torch.equal(out[:, 2:], weight)  # routing weights untouched
    hue = torch.atan2(ab[:, 1], ab[:, 0])
    assert torch.allclose(torch.atan2(out[:, 1], out[:, 0]), hue)
    assert boost_chroma(ab, 1) is ab
    for bad in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="positive and finite"):
            boost_chroma(ab, bad)
    with pytest.raises(ValueError, match="target must be"):
        boost_chroma(torch.zeros(1, 4, 2, 2), 1.2)


def test_chroma_boost_loss_scores_the_boosted_target_and_prefers_more_colour() -> None:
    from expertcolor.train.losses import ChromaBoostLoss

    base = SoftEncodedCELoss(CENTERS)
    centers = base.centers_ab
    target = torch.zeros(1, 2, 4, 4)
    target[:, 0], target[:, 1] = 30.0, 20.0
    boosted = ChromaBoostLoss(base, 1.5)

    def logits_at(ab: tuple[float, float]) -> torch.Tensor:  # confident on the bin nearest to ab
        q = ((centers - torch.tensor(ab)) ** 2).sum(1).argmin()
        lg = torch.full((1, centers.shape[0], 4, 4), -10.0)
        lg[:, q] = 10.0
        return lg

    assert torch.allclose(boosted(logits_at((30, 20)), target), base(logits_at((30, 20)), target * 1.5))
    # the boosted loss prefers the prediction 1.5x as saturated; the plain loss the true colour
    assert boosted(logits_at((45, 30)), target) < boosted(logits_at((30, 20)), target)
    assert base(logits_at((30, 20)), target) < base(logits_at((45, 30)), target)
    with pytest.raises(ValueError, match="positive"):
        ChromaBoostLoss(base, 0)


def _confident_at(centers: torch.Tensor, ab: tuple[float, float], size: int = 4) -> torch.Tensor:
    """Logits confident on the bin nearest to ``ab`` at every pixel."""
    q = ((centers - torch.tensor(ab)) ** 2).sum(1).argmin()
    lg = torch.full((1, centers.shape[0], size, size), -30.0)
    lg[:, q] = 30.0
    return lg


def test_colorfulness_loss_penalises_only_duller_predictions_by_their_chroma_deficit() -> None:
    from expertcolor.train.losses import ChromaBoostLoss, ColorfulnessLoss

    base = SoftEncodedCELoss(CENTERS)  # uniform prior: decoding's prior correction changes nothing
    loss = ColorfulnessLoss(base, weight=2.0, **SHIPPED)
    centers = base.centers_ab
    target = torch.zeros(1, 2, 4, 4)
    target[:, 0], target[:, 1] = 30.0, 40.0  # chroma 50
    grey, vivid = _confident_at(centers, (0, 0)), _confident_at(centers, (60, 80))
    q_grey = centers[((centers - torch.tensor([0.0, 0.0])) ** 2).sum(1).argmin()].norm()
    # the deficit is 50 minus the decoded chroma (the grey bin's centre), in ab/110 units
    assert torch.allclose(loss.deficit(grey, target), ((50 - q_grey) / 110).reshape(1), atol=1e-4)
    assert torch.allclose(loss(grey, target), base(grey, target) + 2 * (50 - q_grey) / 110, atol=1e-4)
    assert loss.deficit(vivid, target).item() == 0  # one-sided: more colour than the target is free
    assert torch.allclose(loss(vivid, target), base(vivid, target))
    # per-pixel weights (routing-aware training): only the weighted pixels' chroma counts
    half = target.clone()
    half[..., 2:] = 0.0
    w = torch.zeros(1, 1, 4, 4)
    w[..., :2] = 1.0
    assert torch.allclose(loss.deficit(grey, torch.cat([half, w], 1)), loss.deficit(grey, target), atol=1e-5)
    # a gradient step on the penalty alone makes a dull, uncertain prediction more colourful
    g = (grey / 60).requires_grad_(True)
    before = loss.deficit(g, target)
    loss.deficit(g, target).sum().backward()
    assert loss.deficit(g.detach() - 50 * g.grad, target) < before
    # through a chroma-boost wrapper it finds the CE's bins; it needs bin logits
    assert ColorfulnessLoss(ChromaBoostLoss(base, 1.2), 1.0, **SHIPPED).ce is base
    with pytest.raises(ValueError, match="soft_ce or ce"):
        ColorfulnessLoss(torch.nn.MSELoss(), 1.0, **SHIPPED)
    for bad in ({"weight": -1.0}, {"weight": 1.0, "temperature": 0.0}, {"weight": 1.0, "prior_correction": 2.0}):
        with pytest.raises(ValueError):
            ColorfulnessLoss(base, **{**SHIPPED, **bad})
