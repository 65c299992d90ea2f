"""Metrics against hand-computed and scikit-image reference values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from skimage.color import deltaE_ciede2000, rgb2lab
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from expertcolor import metrics as M


@pytest.fixture
def pair() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (32, 40, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-20, 21, a.shape), 0, 255).astype(np.uint8)
    return a, b


def test_psnr_of_known_error() -> None:
    a = np.full((10, 10, 3), 100, np.uint8)
    b = a.copy()
    b[..., 0] += 10  # squared error 100 on a third of the values -> MSE 100/3
    assert M.psnr(a, b) == pytest.approx(10 * math.log10(255**2 / (100 / 3)))
    assert M.psnr(a, a) == math.inf


def test_psnr_matches_skimage_and_masks(pair) -> None:
    a, b = pair
    assert M.psnr(a, b) == pytest.approx(peak_signal_noise_ratio(a, b, data_range=255))
    mask = np.zeros(a.shape[:2], bool)
    mask[:, :20] = True
    assert M.psnr(a, b, mask) == pytest.approx(peak_signal_noise_ratio(a[:, :20], b[:, :20], data_range=255))
    assert math.isnan(M.psnr(a, b, np.zeros_like(mask)))


def test_ssim_matches_skimage(pair) -> None:
    a, b = pair
    ref = structural_similarity(a, b, channel_axis=2, data_range=255)
    assert M.ssim(a, b) == pytest.approx(ref, abs=1e-9)
    assert M.ssim(a, a) == pytest.approx(1.0)
    smap = M.ssim_map(a, b)
    assert smap.shape == a.shape[:2]
    mask = np.ones(a.shape[:2], bool)
    assert M.ssim(a, b, mask) == pytest.approx(smap.mean())


def test_ciede2000(pair) -> None:
    a, b = pair
    assert np.allclose(M.ciede2000_map(a, a), 0)
    ref = deltaE_ciede2000(rgb2lab(a), rgb2lab(b))
    assert np.allclose(M.ciede2000_map(a, b), ref)
    # Pure lightness difference between neutral grays: ΔE00 is a function of L only.
    g1, g2 = np.full((2, 2, 3), 100, np.uint8), np.full((2, 2, 3), 120, np.uint8)
    assert np.all(M.ciede2000_map(g1, g2) > 0)


def test_colorfulness() -> None:
    gray = np.repeat(np.arange(256, dtype=np.uint8).reshape(16, 16)[..., None], 3, axis=2)
    assert M.colorfulness(gray) == pytest.approx(0.0)
    red = np.zeros((4, 4, 3), np.uint8)
    red[..., 0] = 255  # rg = 255, yb = 127.5, no spread: M = 0.3 * |(255, 127.5)|
    assert M.colorfulness(red) == pytest.approx(0.3 * math.hypot(255, 127.5))
    half = red.copy()
    half[:, :2] = 0  # rg in {0, 255}: std 127.5; yb in {0, 127.5}: std 63.75
    expected = math.hypot(127.5, 63.75) + 0.3 * math.hypot(127.5, 63.75)
    assert M.colorfulness(half) == pytest.approx(expected)
    mask = np.zeros((4, 4), bool)
    mask[:, 2:] = True
    assert M.colorfulness(half, mask) == pytest.approx(M.colorfulness(red))


def test_boundary_band_width() -> None:
    g = np.zeros((40, 60), np.uint8)
    g[:, 30:] = 1
    band = M.boundary_band(g, width=8)
    # Columns 22..29 (distance 1..8 to column 30) and 30..37 (1..8 to column 29).
    assert np.array_equal(np.flatnonzero(band[0]), np.arange(22, 38))
    assert band.sum() == 16 * 40
    assert not M.boundary_band(np.zeros((5, 5), np.uint8)).any()  # no boundary, image edge is none


def test_boundary_band_is_euclidean() -> None:
    g = np.zeros((41, 41), np.uint8)
    g[20, 20] = 1
    band = M.boundary_band(g, width=5)
    yy, xx = np.mgrid[:41, :41]
    expected = (yy - 20) ** 2 + (xx - 20) ** 2 <= 25
    assert np.array_equal(band, expected)


def test_shape_errors() -> None:
    with pytest.raises(ValueError):
        M.psnr(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 5, 3), np.uint8))
    with pytest.raises(ValueError):
        M.boundary_band(np.zeros((2, 2, 2)))


def test_training_metrics_use_the_one_set_of_routing_groups() -> None:
    from expertcolor.segmentation.categories import ROUTING_GROUPS
    from expertcolor.train.metrics import GROUP_NAMES, VOC_TO_GROUP

    assert GROUP_NAMES == ROUTING_GROUPS == ("background", "person", "bird", "animal")
    # person 15 -> 1, bird 3 -> 2, cat/cow/dog/horse/sheep -> 3, the rest 0: as segmenter training always had it
    assert tuple(1 if c == 15 else 2 if c == 3 else 3 if c in (8, 10, 12, 13, 17) else 0
                                 for c in range(21)) == VOC_TO_GROUP
