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


# -- prior correction: undoing the training's class rebalancing when decoding ------------------------
def _expert_with_weights(alpha: float = 0.0) -> tuple[Expert, torch.Tensor]:
    e = create_expert()
    w = torch.linspace(0.2, 5.0, e.num_outputs)  # rare bins weigh more, as in training
    e.set_rebalance_weights(w)
    return e.with_prior_correction(alpha), w


def test_prior_correction_recovers_the_calibrated_mean():
    # A loss weighted by w at the true bin learns q ∝ w * p; alpha = 1 divides w back out, so the
    # T = 1 decode is the plain mean of p. Reference values computed by hand from p.
    e, w = _expert_with_weights(1.0)
    q = e.num_outputs
    p = torch.zeros(q)
    p[[3, 50, 112]] = torch.tensor([0.2, 0.3, 0.5])
    p = p + 1e-12
    logits = torch.log(w * p).view(1, q, 1, 1)
    expected = (p[:, None] * e.bin_centers).sum(0) / p.sum()
    assert torch.allclose(e.decode(logits, temperature=1.0)[0, :, 0, 0], expected, atol=1e-5)
    # alpha = 0 decodes as trained: the rebalanced distribution, pulled towards the rare bins
    e.with_prior_correction(0.0)
    biased = ((w * p / (w * p).sum())[:, None] * e.bin_centers).sum(0)
    assert torch.allclose(e.decode(logits, temperature=1.0)[0, :, 0, 0], biased, atol=1e-5)
    assert not torch.allclose(biased, expected, atol=1e-3)
    # alpha in between interpolates in log space: logits - alpha * log w
    e.with_prior_correction(0.5)
    half = torch.softmax(logits.view(-1) - 0.5 * w.log(), 0)
    assert torch.allclose(e.decode(logits, temperature=1.0)[0, :, 0, 0], (half[:, None] * e.bin_centers).sum(0),
                          atol=1e-5)


def test_prior_correction_is_saved_and_checked(tmp_path):
    e, w = _expert_with_weights(0.25)
    e.eval().save_pretrained(tmp_path / "e")
    loaded = Expert.from_pretrained(tmp_path / "e")
    assert loaded.config.prior_correction == 0.25 and loaded.has_rebalance_weights
    assert torch.allclose(loaded.rebalance_log_weights.exp(), w, rtol=1e-5)
    x = torch.rand(1, 1, 32, 40) * 100
    with torch.no_grad():
        assert torch.equal(e(x), loaded(x))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        loaded.with_prior_correction(1.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        loaded.with_prior_correction(float("nan"))
    with pytest.raises(TypeError, match="number"):
        loaded.with_prior_correction("0.5")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="classification"):
        ExpertConfig(name="x", head="regression", prior_correction=0.5)
    with pytest.raises(ValueError, match="shape"):
        create_expert().set_rebalance_weights(torch.ones(3))
    with pytest.raises(ValueError, match="positive"):
        create_expert().set_rebalance_weights(torch.zeros(e.num_outputs))
    with pytest.raises(ValueError, match="classification only"):
        create_expert(head="regression").set_rebalance_weights(torch.ones(2))


def test_weights_saved_without_rebalancing_weights_still_load(tmp_path):
    # Older expert directories have no rebalance_log_weights: they load, and decode as trained.
    from safetensors.torch import load_file, save_file

    e = create_expert().eval()
    e.save_pretrained(tmp_path)
    sd = load_file(str(tmp_path / "model.safetensors"))
    del sd["rebalance_log_weights"]
    save_file(sd, str(tmp_path / "model.safetensors"))
    loaded = Expert.from_pretrained(tmp_path)
    assert not loaded.has_rebalance_weights
    x = torch.rand(1, 1, 32, 32) * 100
    with torch.no_grad():
        assert torch.equal(e(x), loaded(x))
    with pytest.raises(ValueError, match="no stored rebalancing weights"):
        loaded.with_prior_correction(0.5)
    assert loaded.with_prior_correction(0.0).config.prior_correction == 0.0
    cfg = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**cfg, "prior_correction": 0.5}))
    with pytest.raises(ValueError, match="prior_correction=0.5 but the weights hold no rebalancing weights"):
        Expert.from_pretrained(tmp_path)


# -- decoding settings: Expert.with_decoding, the one way to change them ----------------------------------
def test_with_decoding_decodes_as_the_old_outside_write():
    import dataclasses

    torch.manual_seed(0)
    a, _ = _expert_with_weights()
    b = create_expert()
    b.load_state_dict(a.state_dict())
    a.config = dataclasses.replace(a.config, temperature=0.2, prior_correction=0.4)  # what callers used to do
    assert b.with_decoding(temperature=0.2, prior_correction=0.4) is b
    assert b.config == a.config
    x = torch.rand(1, 1, 40, 36) * 100
    with torch.no_grad():
        assert torch.equal(a.eval()(x), b.eval()(x))
    b.with_decoding()  # None keeps each setting
    assert (b.config.temperature, b.config.prior_correction) == (0.2, 0.4)
    assert b.with_decoding(temperature=1).config.prior_correction == 0.4


def test_with_decoding_checks_and_changes_nothing_on_error():
    e, _ = _expert_with_weights(0.25)
    before = e.config
    with pytest.raises(ValueError, match=r"temperature must be in \(0, 1\]"):
        e.with_decoding(temperature=0.0)
    with pytest.raises(ValueError, match=r"prior_correction must be in \[0, 1\]"):
        e.with_decoding(temperature=0.5, prior_correction=1.5)  # the valid temperature is not applied either
    with pytest.raises(TypeError, match="temperature must be a number"):
        e.with_decoding(temperature=True)  # type: ignore[arg-type]
    assert e.config == before
    with pytest.raises(ValueError, match="no stored rebalancing weights"):
        create_expert().with_decoding(prior_correction=0.5)
    with pytest.raises(ValueError, match="classification"):
        create_expert(head="regression").with_decoding(prior_correction=0.5)
    assert create_expert(head="regression").with_decoding(temperature=0.5).config.temperature == 0.5


def test_unknown_architecture_is_a_key_error_listing_the_choices():
    from expertcolor.experts import EXPERTS

    with pytest.raises(KeyError, match=r"unknown expert architecture 'vit'; choose from \[.*'fpn_mobilenet_v2'"):
        create_expert("vit")
    assert EXPERTS.names() == list_experts()
