"""Segmenters: the grayscale smp model and the torchvision adapter (no downloads)."""

import pytest
import torch

from expertcolor.segmentation import (
    VOC_CATEGORIES,
    GraySegmenter,
    SegmenterConfig,
    TorchvisionSegmenter,
    TorchvisionSegmenterConfig,
    load_segmenter,
)


def test_gray_segmenter_probabilities_any_size():
    s = GraySegmenter().eval()
    with torch.no_grad():
        p = s(torch.rand(2, 1, 45, 61) * 100)
    assert p.shape == (2, 21, 45, 61)
    assert torch.allclose(p.sum(1), torch.ones(2, 45, 61), atol=1e-5)
    assert s.categories == VOC_CATEGORIES
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\)"):
        s(torch.rand(1, 3, 8, 8))


def test_gray_segmenter_custom_categories_and_round_trip(tmp_path):
    s = GraySegmenter(SegmenterConfig(categories=("background", "person", "dog"))).eval()
    s.save_pretrained(tmp_path)
    loaded = load_segmenter(tmp_path)
    assert isinstance(loaded, GraySegmenter) and loaded.categories == ("background", "person", "dog")
    x = torch.rand(1, 1, 32, 32) * 100
    with torch.no_grad():
        assert torch.equal(s(x), loaded(x))
    with pytest.raises(ValueError, match="distinct"):
        SegmenterConfig(categories=("a", "a"))


def test_torchvision_adapter_without_weights():
    s = TorchvisionSegmenter(TorchvisionSegmenterConfig(model="lraspp_mobilenet_v3_large")).eval()
    with torch.no_grad():
        p = s(torch.rand(1, 1, 50, 70) * 100)
    assert p.shape == (1, 21, 50, 70)
    assert torch.allclose(p.sum(1), torch.ones(1, 50, 70), atol=1e-5)
    with pytest.raises(ValueError, match="unknown torchvision segmenter"):
        TorchvisionSegmenterConfig(model="yolo")


def test_torchvision_loads_local_official_style_file(tmp_path, monkeypatch):
    torch.manual_seed(0)
    ref = TorchvisionSegmenter().eval()
    # torchvision's official files are plain state dicts of the bare model (.pth).
    torch.save(ref.net.state_dict(), tmp_path / "lraspp.pth")
    s = TorchvisionSegmenter.from_torchvision("lraspp_mobilenet_v3_large", weights=tmp_path / "lraspp.pth")
    x = torch.rand(1, 1, 40, 40) * 100
    with torch.no_grad():
        assert torch.equal(ref(x), s.eval()(x))
    # and from the hub cache, with downloads off
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    cached = TorchvisionSegmenter.cached_weights_path("lraspp_mobilenet_v3_large")
    assert str(cached).startswith(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="hub cache"):
        TorchvisionSegmenter.from_torchvision("lraspp_mobilenet_v3_large", download=False)
    cached.parent.mkdir(parents=True)
    torch.save(ref.net.state_dict(), cached)
    s2 = TorchvisionSegmenter.from_torchvision("lraspp_mobilenet_v3_large", download=False)
    with torch.no_grad():
        assert torch.equal(ref(x), s2.eval()(x))
    s2.save_pretrained(tmp_path / "saved")
    assert isinstance(load_segmenter(tmp_path / "saved"), TorchvisionSegmenter)


def test_torchvision_rejects_wrong_weights(tmp_path):
    torch.save({"x": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="does not fit"):
        TorchvisionSegmenter.from_torchvision(weights=tmp_path / "bad.pth")


def test_load_segmenter_unknown_type(tmp_path):
    (tmp_path / "config.json").write_text('{"type": "magic"}')
    with pytest.raises(ValueError, match="unknown segmenter type"):
        load_segmenter(tmp_path)


def test_segmenter_types_registry():
    from expertcolor.segmentation import create_segmenter, list_segmenters

    assert list_segmenters() == ["smp_segmenter", "torchvision_segmenter"]
    seg = create_segmenter("smp_segmenter", SegmenterConfig(categories=("a", "b")))
    assert isinstance(seg, GraySegmenter) and seg.categories == ("a", "b")
    with pytest.raises(KeyError, match=r"unknown segmenter type 'magic'; choose from \['smp_segmenter', "):
        create_segmenter("magic")
