"""Expert registry, configs, shapes and serialization."""

import json

import pytest
import torch

from expertcolor.experts import Expert, ExpertConfig, create_expert, list_experts


def test_registry_lists_and_creates():
    names = list_experts()
    assert "fpn_mobilenet_v2" in names and names == sorted(names)
    e = create_expert("unet_mobilenet_v2", name="birds", classes=["bird"], head="regression")
    assert isinstance(e, Expert) and e.config.classes == ("bird",) and e.config.arch == "unet"
    with pytest.raises(KeyError, match="choose from"):
        create_expert("no_such_arch")


@pytest.mark.parametrize("head", ["classification", "regression"])
@pytest.mark.parametrize("size", [(1, 1), (37, 53), (64, 64)])
def test_forward_any_size(head, size):
    e = create_expert(head=head).eval()
    with torch.no_grad():
        ab = e(torch.rand(2, 1, *size) * 100)
    assert ab.shape == (2, 2, *size) and torch.isfinite(ab).all()


def test_classification_decode_is_annealed_mean():
    e = create_expert()
    q = e.num_outputs
    logits = torch.full((1, q, 1, 1), -1e4)
    logits[0, 7] = 0.0
    ab = e.decode(logits)
    assert torch.allclose(ab[0, :, 0, 0], e.bin_centers[7], atol=1e-6)


def test_config_validation():
    with pytest.raises(ValueError, match="name"):
        ExpertConfig(name="")
    with pytest.raises(ValueError, match="head"):
        ExpertConfig(name="x", head="gan")
    with pytest.raises(ValueError, match="resolution"):
        ExpertConfig(name="x", resolution=4)
    with pytest.raises(ValueError, match="input"):
        create_expert()(torch.rand(1, 3, 8, 8))


def test_save_load_round_trip(tmp_path):
    torch.manual_seed(0)
    e = create_expert(name="faces", classes=["person"]).eval()
    e.save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["type"] == "expert" and cfg["classes"] == ["person"]
    loaded = Expert.from_pretrained(tmp_path)
    x = torch.rand(1, 1, 40, 48) * 100
    with torch.no_grad():
        assert torch.equal(e(x), loaded(x))
    assert loaded.config == e.config


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        Expert.from_pretrained(tmp_path / "missing")
    create_expert().save_pretrained(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"not weights")
    with pytest.raises(ValueError, match="cannot read weights"):
        Expert.from_pretrained(tmp_path)


def test_init_encoder_from_shared_weights(shared_data):
    w = shared_data.parent / "weights" / "mobilenet_v2_imagenet_bnstats.safetensors"
    if not w.is_file():
        pytest.skip("shared MobileNetV2 weights absent")
    e = create_expert(init_encoder=w)
    from safetensors.torch import load_file

    ref = load_file(str(w))["features.0.0.weight"].sum(1, keepdim=True)
    assert torch.allclose(e.net.encoder.state_dict()["features.0.0.weight"], ref)
    assert e.config.provenance["init_encoder"] == w.name


def test_init_encoder_rejects_wrong_file(tmp_path):
    torch.save({"foo": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="does not fit"):
        create_expert(init_encoder=tmp_path / "bad.pth")
