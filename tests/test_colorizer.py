"""ExpertColorizer end to end with tiny random-weight models (no network access)."""

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from expertcolor import ExpertColorizer, WeightsNotFoundError, create_expert
from expertcolor.color import rgb_to_lab
from expertcolor.merge import create_merge
from expertcolor.modeldir import add_expert as add_expert_to_model_dir
from expertcolor.modeldir import default_model_dir
from expertcolor.segmentation import VOC_CATEGORIES, Segmenter

from .conftest import make_colorizer


def lab_of(rgb_u8: np.ndarray) -> np.ndarray:
    t = torch.from_numpy(rgb_u8[..., :3].astype(np.float64) / 255).permute(2, 0, 1)
    return rgb_to_lab(t).permute(1, 2, 0).numpy()


def test_output_keeps_input_lightness_with_saturated_colours(tiny_colorizer, rgb_image):
    out = tiny_colorizer.colorize(rgb_image)
    assert out.shape == rgb_image.shape and out.dtype == np.uint8
    lab_out, lab_in = lab_of(out), lab_of(rgb_image)
    chroma = np.hypot(lab_out[..., 1], lab_out[..., 2])
    assert chroma.mean() > 15, "the test needs strongly coloured predictions"
    assert np.abs(lab_out[..., 0] - lab_in[..., 0]).max() <= 1.0


@pytest.mark.parametrize("merge", ["hard", "soft", "feather", "guided"])
@pytest.mark.parametrize("upsample", ["guided", "bilinear"])
def test_merge_and_upsample_options_keep_l(merge, upsample, tiny_colorizer, rgb_image):
    c = ExpertColorizer(
        tiny_colorizer.experts, tiny_colorizer.segmenter, merge=merge, upsample=upsample, working_size=32
    )
    out = c.colorize(rgb_image)
    assert np.abs(lab_of(out)[..., 0] - lab_of(rgb_image)[..., 0]).max() <= 1.0


def test_pil_modes(tiny_colorizer, rgb_image):
    rgb = Image.fromarray(rgb_image)
    gray = rgb.convert("L")
    modes = {
        "L": gray,
        "LA": gray.convert("LA"),
        "RGB": rgb,
        "RGBA": rgb.convert("RGBA"),
        "P": rgb.convert("P"),
        "CMYK": rgb.convert("CMYK"),
        "I;16": Image.fromarray(np.asarray(gray).astype(np.uint16) * 257),
        "1": gray.convert("1"),
    }
    assert modes["I;16"].mode.startswith("I;16")
    ref_L = lab_of(np.asarray(gray.convert("RGB")))[..., 0]
    for mode, img in modes.items():
        out = tiny_colorizer.colorize(img)
        assert isinstance(out, Image.Image), mode
        assert out.size == rgb.size, mode
        assert out.mode == ("RGBA" if mode in ("LA", "RGBA") else "RGB"), mode
        if mode in ("L", "LA", "I;16"):
            assert np.abs(lab_of(np.asarray(out))[..., 0] - ref_L).max() <= 1.0, mode


def test_alpha_is_kept(tiny_colorizer, rgb_image):
    rgba = np.dstack([rgb_image, np.full(rgb_image.shape[:2], 77, np.uint8)])
    out = tiny_colorizer.colorize(rgba)
    assert out.shape == rgba.shape and (out[..., 3] == 77).all()


def test_ndarray_inputs(tiny_colorizer, rgb_image):
    gray = np.asarray(Image.fromarray(rgb_image).convert("L"))
    assert tiny_colorizer.colorize(gray).shape == gray.shape + (3,)
    f = rgb_image.astype(np.float64) / 255
    out = tiny_colorizer.colorize(f)
    assert out.dtype == np.float32 and out.shape == f.shape and out.min() >= 0 and out.max() <= 1
    # float and uint8 inputs of the same picture agree
    assert np.abs(out * 255 - tiny_colorizer.colorize(rgb_image)).max() <= 1.0
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        tiny_colorizer.colorize(f * 255)
    with pytest.raises(ValueError, match="shape"):
        tiny_colorizer.colorize(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(TypeError, match="dtype"):
        tiny_colorizer.colorize(np.zeros((4, 4), np.int64))


def test_tensor_inputs(tiny_colorizer, rgb_image):
    x = torch.from_numpy(rgb_image).permute(2, 0, 1).float().div(255)
    batch = torch.stack([x, x.flip(-1)])
    out = tiny_colorizer.colorize(batch)
    assert out.shape == (2, 3, *rgb_image.shape[:2]) and out.dtype == torch.float32
    gray = tiny_colorizer.colorize(batch[:, :1])
    assert gray.shape == (2, 3, *rgb_image.shape[:2])
    ref = tiny_colorizer.colorize(rgb_image)
    assert np.abs(out[0].permute(1, 2, 0).numpy() * 255 - ref).max() <= 1.0
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\)"):
        tiny_colorizer.colorize(torch.rand(3, 10, 10))
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\)"):
        tiny_colorizer.colorize(torch.rand(1, 2, 10, 10))
    with pytest.raises(ValueError, match="empty"):
        tiny_colorizer.colorize(torch.rand(0, 3, 10, 10))


def test_paths_exif_and_lists(tmp_path, tiny_colorizer, rgb_image):
    img = Image.fromarray(rgb_image)
    img.save(tmp_path / "a.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    img.save(tmp_path / "rot.jpg", exif=exif)
    out = tiny_colorizer.colorize(tmp_path / "a.png")
    assert isinstance(out, Image.Image) and out.size == img.size
    rot = tiny_colorizer.colorize(str(tmp_path / "rot.jpg"))
    assert rot.size == (img.height, img.width)
    # a list mixing kinds and sizes, batched by working size, equals one-by-one results
    items = [rgb_image, str(tmp_path / "a.png"), rgb_image[:30, :40]]
    outs = tiny_colorizer.colorize(items)
    assert isinstance(outs, list) and len(outs) == 3
    assert np.array_equal(outs[0], tiny_colorizer.colorize(rgb_image))
    assert np.array_equal(outs[2], tiny_colorizer.colorize(rgb_image[:30, :40]))
    assert tiny_colorizer.colorize([]) == []


def test_bad_inputs(tmp_path, tiny_colorizer):
    with pytest.raises(FileNotFoundError, match="no such image"):
        tiny_colorizer.colorize(tmp_path / "missing.jpg")
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(ValueError, match="not a readable image"):
        tiny_colorizer.colorize(tmp_path / "notes.txt")
    with pytest.raises(ValueError, match="empty"):
        tiny_colorizer.colorize(np.zeros((0, 5, 3), np.uint8))
    with pytest.raises(ValueError, match="empty"):
        tiny_colorizer.colorize(Image.new("RGB", (0, 0)))
    with pytest.raises(TypeError, match="unsupported image type"):
        tiny_colorizer.colorize(42)
    for bad in (-1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="saturation"):
            tiny_colorizer.colorize(np.zeros((4, 4), np.uint8), saturation=bad)


def test_odd_sizes_and_large_images_downscale(tiny_colorizer):
    rng = np.random.default_rng(0)
    for shape in [(1, 1), (7, 3), (33, 65), (300, 517)]:
        img = rng.integers(0, 255, shape, dtype=np.uint8)
        out = tiny_colorizer.colorize(img)
        assert out.shape == shape + (3,)
    assert tiny_colorizer.working_shape(300, 517) == (149, 256)
    assert tiny_colorizer.working_shape(10, 20) == (10, 20)


def test_large_photos_are_decoded_and_finished_in_strips_with_the_same_result(tiny_colorizer, monkeypatch):
    import expertcolor.colorizer as colorizer_module
    import expertcolor.io as io_module

    rng = np.random.default_rng(3)
    img = rng.integers(0, 255, (301, 517, 3), dtype=np.uint8)
    batch = torch.from_numpy(img / 255.0).float().permute(2, 0, 1)[None].repeat(2, 1, 1, 1)
    whole, whole_t = tiny_colorizer.colorize(img / 255.0), tiny_colorizer.colorize(batch)
    # Strips of 10 000 pixels: 19 rows of this photo at a time (the last 16), decoding and finishing.
    monkeypatch.setattr(io_module, "_STRIP_PIXELS", 10_000)
    monkeypatch.setattr(colorizer_module, "FINISH_STRIP_PIXELS", 10_000)
    strips, strips_t = tiny_colorizer.colorize(img / 255.0), tiny_colorizer.colorize(batch)
    assert np.abs(strips - whole).max() < 1e-4
    assert strips_t.shape == (2, 3, 301, 517) and torch.allclose(strips_t, whole_t, atol=1e-4)
    assert np.abs(lab_of(tiny_colorizer.colorize(img))[..., 0] - lab_of(img)[..., 0]).max() <= 1.0  # L kept


def test_8_bit_outputs_are_rounded_strip_by_strip_as_the_float_result_would_be(tiny_colorizer, monkeypatch):
    """uint8 and PIL outputs (and 8-bit gray and RGB PIL inputs, decoded without a float copy) give
    exactly the rounded float result, whole or in strips."""
    import expertcolor.colorizer as colorizer_module
    import expertcolor.io as io_module

    rng = np.random.default_rng(4)
    img = rng.integers(0, 255, (301, 517, 3), dtype=np.uint8)
    for photo in (img, img[..., 1]):
        exact = np.rint(np.clip(tiny_colorizer.colorize(photo / 255.0), 0, 1) * 255).astype(np.uint8)
        for strip in (None, 10_000):
            if strip:
                monkeypatch.setattr(io_module, "_STRIP_PIXELS", strip)
                monkeypatch.setattr(colorizer_module, "FINISH_STRIP_PIXELS", strip)
            out = tiny_colorizer.colorize(photo)
            assert out.dtype == np.uint8 and out.shape == (301, 517, 3) and np.abs(out.astype(int) - exact).max() <= 1
            pil = np.asarray(tiny_colorizer.colorize(Image.fromarray(photo))).astype(int)
            assert np.abs(pil - exact).max() <= 1  # (gray arrays take another route to L: float rounding)
        monkeypatch.undo()


def test_details(tiny_colorizer, rgb_image):
    r = tiny_colorizer.colorize(rgb_image, return_details=True)
    h, w = rgb_image.shape[:2]
    assert r.rgb.shape == rgb_image.shape
    assert r.L.shape == (h, w) and r.ab.shape == (2, h, w)
    assert set(r.weights) == {"animals", "birds", "faces", "places"}
    total = sum(r.weights.values())
    assert np.allclose(total, 1, atol=1e-5)
    assert set(r.expert_ab) == {n for n, wt in r.weights.items() if wt.max() > 0}
    assert r.labels.shape == (h, w) and r.labels.max() < len(r.categories)
    assert r.expert_map().shape == (h, w)


class ConstSegmenter(Segmenter):
    """Says every pixel is one category."""

    def __init__(self, category: str) -> None:
        super().__init__()
        self.categories = VOC_CATEGORIES
        self.index = VOC_CATEGORIES.index(category)

    def forward(self, L):
        p = torch.zeros(L.shape[0], len(self.categories), *L.shape[-2:])
        p[:, self.index] = 1
        return p


def test_experts_without_pixels_are_not_run(tiny_colorizer, rgb_image):
    calls = []
    experts = {n: e for n, e in tiny_colorizer.experts.items()}
    hooks = [e.register_forward_hook(lambda m, i, o, n=n: calls.append(n)) for n, e in experts.items()]
    try:
        c = ExpertColorizer(experts, ConstSegmenter("dog"), merge="guided")
        r = c.colorize(rgb_image, return_details=True)
    finally:
        for h in hooks:
            h.remove()
    assert calls == ["animals"]
    assert np.allclose(r.weights["animals"], 1)
    # the merged ab is exactly that expert's
    assert np.allclose(r.ab, r.expert_ab["animals"], atol=1e-5)


class LeftHalfSegmenter(Segmenter):
    """Person on the left half of the image, background on the right: not mirror-symmetric."""

    def __init__(self) -> None:
        super().__init__()
        self.categories = VOC_CATEGORIES

    def forward(self, L):
        p = torch.zeros(L.shape[0], len(self.categories), *L.shape[-2:])
        half = L.shape[-1] // 2
        p[:, VOC_CATEGORIES.index("person"), :, :half] = 1
        p[:, 0, :, half:] = 1
        return p


def test_flip_segmentation_averages_with_the_mirror_image(tmp_path, tiny_colorizer, rgb_image):
    L = torch.rand(2, 1, 12, 16) * 100
    plain = ExpertColorizer(tiny_colorizer.experts, LeftHalfSegmenter())
    flipped = ExpertColorizer(tiny_colorizer.experts, LeftHalfSegmenter(), flip_segmentation=True)
    person = VOC_CATEGORIES.index("person")
    assert torch.equal(plain.segment(L)[:, person, :, :8], torch.ones(2, 12, 8))
    p = flipped.segment(L)
    assert torch.allclose(p[:, person], torch.full((2, 12, 16), 0.5))
    assert torch.allclose(p.sum(1), torch.ones(2, 12, 16))
    r = flipped.colorize(rgb_image, return_details=True)
    w = r.weights["faces"]  # 45 x 61: away from the odd middle column, both experts share every pixel
    assert np.allclose(w[:, :25], 0.5, atol=1e-5) and np.allclose(w[:, -25:], 0.5, atol=1e-5)
    assert np.allclose(r.weights["faces"] + r.weights["places"], 1, atol=1e-5)
    # Saved with the model, and overridable on load.
    ExpertColorizer(tiny_colorizer.experts, tiny_colorizer.segmenter, flip_segmentation=True).save_pretrained(
        tmp_path / "m")
    assert ExpertColorizer.from_pretrained(tmp_path / "m").flip_segmentation
    assert not ExpertColorizer.from_pretrained(tmp_path / "m", flip_segmentation=False).flip_segmentation


def test_save_load_round_trip(tmp_path, tiny_colorizer, rgb_image):
    tiny_colorizer.save_pretrained(tmp_path / "m")
    loaded = ExpertColorizer.from_pretrained(tmp_path / "m")
    assert list(loaded.experts) == list(tiny_colorizer.experts)
    assert loaded.merge == tiny_colorizer.merge and loaded.working_size == tiny_colorizer.working_size
    assert np.array_equal(loaded.colorize(rgb_image), tiny_colorizer.colorize(rgb_image))
    # fp16 storage halves the size and stays close
    tiny_colorizer.save_pretrained(tmp_path / "m16", dtype=torch.float16)
    size = lambda d: sum(p.stat().st_size for p in d.rglob("*.safetensors"))  # noqa: E731
    assert size(tmp_path / "m16") < 0.6 * size(tmp_path / "m")
    out16 = ExpertColorizer.from_pretrained(tmp_path / "m16").colorize(rgb_image)
    assert np.abs(out16.astype(int) - tiny_colorizer.colorize(rgb_image)).mean() < 2
    overridden = ExpertColorizer.from_pretrained(tmp_path / "m", merge="hard", working_size=64)
    assert overridden.merge.name == "hard" and overridden.working_size == 64


def test_corrupted_model_dir_is_detected(tmp_path, tiny_model_dir):
    d = tmp_path / "m"
    shutil.copytree(tiny_model_dir, d)
    with open(d / "experts" / "faces" / "model.safetensors", "r+b") as f:
        f.seek(-8, 2)
        tail = f.read(8)
        f.seek(-8, 2)
        f.write(bytes(b ^ 0xFF for b in tail))  # flip the bits: corrupt whatever the last tensor holds
    with pytest.raises(ValueError, match="does not match manifest"):
        ExpertColorizer.from_pretrained(d)
    with pytest.raises(FileNotFoundError, match="not found"):
        ExpertColorizer.from_pretrained(tmp_path / "nope")


def test_add_expert_to_model_dir(tmp_path, tiny_model_dir, rgb_image):
    d = tmp_path / "m"
    shutil.copytree(tiny_model_dir, d)
    create_expert(name="vehicles", classes=["car", "bus", "train"]).save_pretrained(tmp_path / "veh")
    assert add_expert_to_model_dir(d, tmp_path / "veh") == ["car", "bus", "train"]
    c = ExpertColorizer.from_pretrained(d)
    assert "vehicles" in c.experts and c.routing.expert_for("bus") == "vehicles"
    assert c.routing.expert_for("person") == "faces"
    with pytest.raises(ValueError, match="unknown categories"):
        add_expert_to_model_dir(d, tmp_path / "veh", classes=["spaceship"])
    # a new default expert (no classes of its own) replaces the old one and keeps the unrouted categories
    default = c.routing.default
    create_expert(name=default).save_pretrained(tmp_path / "new_default")
    routed = add_expert_to_model_dir(d, tmp_path / "new_default")
    assert "background" in routed and "person" not in routed and "bus" not in routed
    assert ExpertColorizer.from_pretrained(d).experts[default].config.classes == ()
    create_expert(name="nobody").save_pretrained(tmp_path / "nobody")
    with pytest.raises(ValueError, match="owns no classes"):
        add_expert_to_model_dir(d, tmp_path / "nobody")
    # the API equivalent
    c2 = make_colorizer()
    c2.add_expert(create_expert(name="vehicles"), classes=["car"])
    assert c2.routing.expert_for("car") == "vehicles"
    assert c2.colorize(rgb_image).shape == rgb_image.shape


def test_embedded_default():
    try:
        d = default_model_dir()
    except WeightsNotFoundError as e:
        assert "train-expert" in str(e) and "from_pretrained" in str(e)
        with pytest.raises(WeightsNotFoundError):
            ExpertColorizer.from_pretrained()
        return
    c = ExpertColorizer.from_pretrained(device="cpu")
    assert d.is_dir() and set(c.experts) >= {"faces", "birds", "animals", "places"}
    out = c.colorize(np.full((40, 50), 128, np.uint8))
    assert out.shape == (40, 50, 3)


def test_constructor_validation(tiny_colorizer):
    with pytest.raises(ValueError, match="at least one expert"):
        ExpertColorizer([], tiny_colorizer.segmenter)
    with pytest.raises(TypeError, match="Segmenter"):
        ExpertColorizer(list(tiny_colorizer.experts.values()), object())
    with pytest.raises(ValueError, match="working_size"):
        ExpertColorizer(list(tiny_colorizer.experts.values()), tiny_colorizer.segmenter, working_size=8)
    with pytest.raises(ValueError, match="unknown merge"):
        ExpertColorizer(list(tiny_colorizer.experts.values()), tiny_colorizer.segmenter, merge="median")


def test_default_routing_uses_the_experts_at_hand(tiny_colorizer):
    experts = {n: tiny_colorizer.experts[n] for n in ("faces", "places")}
    c = ExpertColorizer(experts, tiny_colorizer.segmenter)
    assert c.routing.expert_for("person") == "faces" and c.routing.expert_for("dog") == "places"
    with pytest.raises(ValueError, match="no 'places' expert"):
        ExpertColorizer({"faces": experts["faces"]}, tiny_colorizer.segmenter)


def test_prior_correction_override(tmp_path, tiny_model_dir, rgb_image):
    c = make_colorizer()
    for e in c.experts.values():
        e.set_rebalance_weights(torch.linspace(0.1, 8.0, e.num_outputs))  # as a trained expert stores them
    c.save_pretrained(tmp_path / "m")
    as_trained = ExpertColorizer.from_pretrained(tmp_path / "m")
    calibrated = ExpertColorizer.from_pretrained(tmp_path / "m", prior_correction=1.0)
    assert {e.config.prior_correction for e in as_trained.experts.values()} == {0.0}
    assert {e.config.prior_correction for e in calibrated.experts.values()} == {1.0}
    assert not np.array_equal(as_trained.colorize(rgb_image), calibrated.colorize(rgb_image))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        ExpertColorizer.from_pretrained(tmp_path / "m", prior_correction=-0.1)
    # experts saved without their training's rebalancing weights cannot undo them
    with pytest.raises(ValueError, match="no stored rebalancing weights"):
        ExpertColorizer.from_pretrained(tiny_model_dir, prior_correction=0.5)


@pytest.mark.parametrize("hostile", ["../victim", "/tmp/abs_victim", "..", "a/b", "ok\\..\\x", "bad name"])
def test_add_expert_refuses_names_that_leave_the_model_dir(tmp_path, tiny_model_dir, hostile):
    """A crafted expert config.json must not make add-expert delete or write outside the model directory."""
    d = tmp_path / "m"
    shutil.copytree(tiny_model_dir, d)
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("precious")
    src = tmp_path / "evil"
    create_expert(name="vehicles", classes=["car"]).save_pretrained(src)
    cfg = json.loads((src / "config.json").read_text())
    (src / "config.json").write_text(json.dumps({**cfg, "name": hostile}))
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    with pytest.raises(ValueError, match="expert name"):
        add_expert_to_model_dir(d, src)
    assert (victim / "keep.txt").read_text() == "precious"
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_model_config_cannot_load_or_save_experts_outside_the_directory(tmp_path, tiny_model_dir, tiny_colorizer):
    d = tmp_path / "m"
    shutil.copytree(tiny_model_dir, d)
    outside = tmp_path / "outside_expert"
    tiny_colorizer.experts["faces"].save_pretrained(outside)
    cfg = json.loads((d / "config.json").read_text())
    cfg["experts"] = [*cfg["experts"], "../../outside_expert"]
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="expert name"):
        ExpertColorizer.from_pretrained(d)
    # a symlinked expert folder also leads outside, and is refused
    cfg["experts"] = [*cfg["experts"][:-1], "linked"]
    (d / "config.json").write_text(json.dumps(cfg))
    (d / "experts" / "linked").symlink_to(outside)
    with pytest.raises(ValueError, match="leads outside"):
        ExpertColorizer.from_pretrained(d)
    # saving: names are checked before anything is written
    with pytest.raises(ValueError, match="expert name"):
        ExpertColorizer({"../escape": tiny_colorizer.experts["faces"]}, tiny_colorizer.segmenter)
    tiny_colorizer.experts["../escape"] = tiny_colorizer.experts["faces"]  # bypassing the constructor
    try:
        with pytest.raises(ValueError, match="expert name"):
            tiny_colorizer.save_pretrained(tmp_path / "saved" / "m")
    finally:
        del tiny_colorizer.experts["../escape"]
    assert not (tmp_path / "saved").exists() and not (tmp_path / "saved" / "escape").exists()


def test_model_dir_without_manifest_or_routing(tmp_path, tiny_model_dir, caplog):
    d = tmp_path / "m"
    shutil.copytree(tiny_model_dir, d)
    (d / "manifest.json").unlink()
    with caplog.at_level("WARNING", logger="expertcolor.modeldir"):
        ExpertColorizer.from_pretrained(d)
    assert "no manifest.json" in caplog.text
    cfg = json.loads((d / "config.json").read_text())
    del cfg["routing"]
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="no 'routing' table"):
        ExpertColorizer.from_pretrained(d)


def test_experts_run_only_on_the_box_they_have_weight_in(tiny_colorizer, rgb_image, monkeypatch):
    """With crop_margin each expert sees only its region; with a margin as large as the photo the
    output is the whole-photo output exactly."""
    import copy

    whole = copy.copy(tiny_colorizer)
    whole.crop_margin = None
    wide = copy.copy(tiny_colorizer)
    wide.crop_margin = 10_000
    assert np.array_equal(wide.colorize(rgb_image), whole.colorize(rgb_image))
    # Route the left quarter of the photo to one expert and the rest to the background: the subject
    # expert then runs on a crop, the background expert on the whole photo.
    names = list(tiny_colorizer.routing.experts)
    bg = names.index(tiny_colorizer.routing.default)
    subject = next(i for i in range(len(names)) if i != bg)

    class LeftQuarterRouting:
        experts, default = tiny_colorizer.routing.experts, tiny_colorizer.routing.default

        def __call__(self, probs):
            r = torch.zeros(probs.shape[0], len(names), *probs.shape[-2:])
            q = probs.shape[-1] // 4
            r[:, bg, :, q:] = 1.0
            r[:, subject, :, :q] = 1.0
            return r

    cropped = copy.copy(tiny_colorizer)
    cropped.crop_margin = 0
    cropped.merge = create_merge("hard")
    cropped.routing = LeftQuarterRouting()
    seen = {}
    for n in names:
        e = cropped.experts[n]
        monkeypatch.setattr(e, "forward", lambda L, _e=e, _n=n, _f=e.forward: seen.setdefault(_n, L.shape) and _f(L))
    L = torch.rand(1, 1, 128, 256) * 100
    out = cropped.predict_ab(L)
    assert seen[names[subject]][-1] == 64 and seen[names[subject]][-2] == 128  # a quarter of the width
    assert seen[names[bg]][-2:] == (128, 192)  # the other three quarters: 75% < 80%, so cropped too
    assert out["expert_ab"][names[subject]][..., 64:].abs().max() == 0  # nothing computed outside its box


def test_add_expert_to_a_model_dir_with_a_broken_config_names_the_problem(tmp_path, tiny_model_dir):
    d = tmp_path / "m"
    shutil.copytree(tiny_model_dir, d)
    create_expert(name="vehicles", classes=["car"]).save_pretrained(tmp_path / "veh")
    cfg = json.loads((d / "config.json").read_text())
    (d / "config.json").write_text(json.dumps({k: v for k, v in cfg.items() if k != "routing"}))
    with pytest.raises(ValueError, match="no routing table"):
        add_expert_to_model_dir(d, tmp_path / "veh")
    (d / "config.json").write_text(json.dumps(cfg))
    seg = json.loads((d / "segmenter" / "config.json").read_text())
    (d / "segmenter" / "config.json").write_text(json.dumps({k: v for k, v in seg.items() if k != "categories"}))
    with pytest.raises(ValueError, match="lists no categories"):
        add_expert_to_model_dir(d, tmp_path / "veh")
