"""Colour conversions against scikit-image reference values."""

import warnings

import numpy as np
import pytest
import torch
from skimage.color import lab2rgb, rgb2lab

from expertcolor.color import (
    ab_bin_centers,
    denormalize_ab,
    in_gamut,
    lab_to_rgb,
    lab_to_rgb_gamut,
    normalize_ab,
    normalize_l,
    rgb_to_l,
    rgb_to_lab,
)


def to_t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a).permute(2, 0, 1)


def to_np(t: torch.Tensor) -> np.ndarray:
    return t.permute(1, 2, 0).numpy()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_rgb_to_lab_matches_skimage(dtype):
    rng = np.random.default_rng(0)
    img = rng.random((31, 17, 3))
    img[0, :3] = [[0, 0, 0], [1, 1, 1], [0.02, 0.03, 0.01]]  # black, white, the linear segment
    ours = to_np(rgb_to_lab(to_t(img).to(dtype)).double())
    assert np.abs(ours - rgb2lab(img)).max() < 1e-3


def test_lab_to_rgb_matches_skimage_including_out_of_gamut():
    rng = np.random.default_rng(1)
    lab = np.dstack([rng.uniform(0, 100, (20, 20)), rng.uniform(-128, 127, (20, 20, 2))])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # skimage warns about clipped negative Z
        ref = lab2rgb(lab)
    ours = to_np(lab_to_rgb(to_t(lab).float()).double())
    assert np.abs(ours - ref).max() < 1e-3


def test_round_trip_and_batch_dims():
    x = torch.rand(2, 4, 3, 8, 9)
    assert torch.allclose(lab_to_rgb(rgb_to_lab(x)), x, atol=1e-4)
    assert rgb_to_l(x).shape == (2, 4, 1, 8, 9)


def test_reference_values():
    # White is not exactly neutral (|ab| < 0.005) because the sRGB matrix and the D65 white point
    # are rounded differently; scikit-image behaves the same.
    white = torch.ones(3, 1, 1)
    assert torch.allclose(rgb_to_lab(white).flatten(), torch.tensor([100.0, 0.0, 0.0]), atol=5e-3)
    red = torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1)
    assert torch.allclose(rgb_to_lab(red).flatten(), torch.tensor([53.2408, 80.0925, 67.2032]), atol=1e-3)


def test_bad_input_errors():
    with pytest.raises(ValueError, match="shape"):
        rgb_to_lab(torch.rand(4, 8, 8))
    with pytest.raises(TypeError, match="floating"):
        rgb_to_lab(torch.zeros(3, 2, 2, dtype=torch.uint8))
    with pytest.raises(TypeError, match="Tensor"):
        rgb_to_lab(np.zeros((3, 2, 2)))


def test_gamut_mapping_keeps_lightness_and_hue():
    rng = np.random.default_rng(2)
    L = rng.uniform(5, 95, (16, 16))
    ab = rng.uniform(-120, 120, (16, 16, 2))
    lab = to_t(np.dstack([L, ab])).float()
    assert not bool(in_gamut(lab).all())  # the test needs out-of-gamut colours
    rgb = lab_to_rgb_gamut(lab)
    assert rgb.min() >= 0 and rgb.max() <= 1
    back = rgb_to_lab(rgb)
    assert (back[0] - lab[0]).abs().max() < 0.05  # L kept (clipping RGB would move it by many units)
    # hue kept: the mapped ab is a non-negative multiple of the requested ab
    cross = back[1] * lab[2] - back[2] * lab[1]
    chroma = lab[1:].norm(dim=0)
    assert (cross.abs() / chroma.clamp_min(1)).max() < 0.5
    assert ((back[1] * lab[1] + back[2] * lab[2]) >= -1e-3).all()
    inside = in_gamut(lab)
    assert torch.allclose(rgb[:, inside], lab_to_rgb(lab)[:, inside], atol=1e-6)  # in-gamut untouched


def test_ab_bins_and_normalisation():
    centers = ab_bin_centers()
    assert centers.shape == (225, 2)
    lab = torch.cat([torch.full((1, 225), 50.0), centers.T]).view(3, 225, 1)
    # every bin is showable at some L; neutral is a bin
    assert (centers == 0).all(dim=1).any()
    assert in_gamut(lab).shape == (225, 1)
    x = torch.linspace(-100, 100, 5)
    assert torch.allclose(denormalize_ab(normalize_ab(x)), x)
    assert normalize_l(torch.tensor([0.0, 100.0])).tolist() == [-1.0, 1.0]


def test_rgb_to_l_is_rgb_to_lab_lightness():
    from expertcolor.color import rgb_to_l

    rgb = torch.rand(2, 3, 17, 23, generator=torch.Generator().manual_seed(1))
    rgb[0, :, 0, 0] = 0.0  # black and the linear segment of the sRGB curve
    rgb[0, :, 0, 1] = 0.02
    assert torch.allclose(rgb_to_l(rgb), rgb_to_lab(rgb)[:, :1], atol=1e-4)  # float rounding only


def test_gamut_mapping_equals_the_plain_bisection_reference():
    """The result reuses the first full conversion for in-gamut pixels; it must equal converting
    the bisected Lab of every pixel again, as the reference below does."""
    from expertcolor.color import in_gamut, lab_to_rgb_gamut

    g = torch.Generator().manual_seed(0)
    L0, ab0 = torch.rand(1, 1, 31, 37, generator=g) * 100, (torch.rand(1, 2, 31, 37, generator=g) - 0.5) * 160
    lab = torch.cat([L0, ab0], 1)
    ok = in_gamut(lab)
    assert 0.2 < float((~ok).float().mean()) < 0.9
    L, ab = lab[:, :1], lab[:, 1:]
    lo, hi = torch.zeros_like(L), torch.ones_like(L)
    for _ in range(14):
        mid = (lo + hi) / 2
        fits = in_gamut(torch.cat([L, ab * mid], 1))[:, None]
        lo, hi = torch.where(fits, mid, lo), torch.where(fits, hi, mid)
    scale = torch.where(ok[:, None], torch.ones_like(lo), lo)
    ref = lab_to_rgb(torch.cat([L, ab * scale], 1))
    # Same values through differently shaped tensors: SIMD paths round differently (1.8e-6 seen with
    # AVX-512), far below 8-bit resolution (3.9e-3).
    assert torch.allclose(lab_to_rgb_gamut(lab), ref, atol=1e-5)
