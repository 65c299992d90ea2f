"""The model directory format as Python API: save/load round trips, assemble and add_expert."""

from __future__ import annotations

import filecmp
import importlib
import json
import shutil
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import expertcolor
from expertcolor import Expert, ExpertColorizer, GraySegmenter, create_expert, modeldir
from expertcolor.modeldir import add_expert, assemble, verify_manifest

PRETRAINED = Path(expertcolor.__file__).parent / "pretrained"


def _files(root: Path) -> list[Path]:
    return sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())


def _same_files(a: Path, b: Path, skip: tuple[str, ...] = ()) -> None:
    assert _files(a) == _files(b)
    for rel in _files(a):
        if rel.as_posix() not in skip:
            assert filecmp.cmp(a / rel, b / rel, shallow=False), rel


@pytest.fixture
def parts(tmp_path: Path) -> tuple[Path, list[Path]]:
    """A segmenter and three expert directories, as train-segmenter / train-expert leave them."""
    torch.manual_seed(0)
    GraySegmenter().save_pretrained(tmp_path / "seg")
    dirs = []
    for name, classes in [("faces", ["person"]), ("places", []), ("vehicles", ["car", "bus"])]:
        e = create_expert(name=name, classes=classes)
        e.set_rebalance_weights(torch.linspace(0.1, 8.0, e.num_outputs))
        e.save_pretrained(tmp_path / name)
        dirs.append(tmp_path / name)
    return tmp_path / "seg", dirs


def test_a_directory_written_by_save_pretrained_resaves_to_the_same_files(tiny_model_dir, tmp_path) -> None:
    c = ExpertColorizer.from_pretrained(tiny_model_dir, device="cpu")
    c.save_pretrained(tmp_path / "again")
    _same_files(tiny_model_dir, tmp_path / "again")
    parts = modeldir.load(tmp_path / "again")
    assert list(parts.experts) == list(c.experts) and parts.routing.to_dict() == c.routing.to_dict()
    assert parts.config == json.loads((tiny_model_dir / "config.json").read_text())


@pytest.mark.skipif(not (PRETRAINED / "default" / "config.json").is_file(), reason="no embedded weights")
def test_the_shipped_directories_load_and_resave_unchanged(tmp_path) -> None:
    default = PRETRAINED / "default"
    c = ExpertColorizer.from_pretrained(default, device="cpu")
    c.save_pretrained(tmp_path / "default", dtype=torch.float16)
    _same_files(default, tmp_path / "default")
    assert list(json.loads((default / "config.json").read_text())) == list(c.config_dict())
    generalist = Expert.from_pretrained(PRETRAINED / "generalist")
    generalist.save_pretrained(tmp_path / "generalist", dtype=torch.float16)
    _same_files(PRETRAINED / "generalist", tmp_path / "generalist")


def test_assemble_as_python_api(parts, tmp_path) -> None:
    seg, dirs = parts
    out = tmp_path / "model"
    built = assemble(out, seg, dirs, merge="context:strength=0.75", working_size=128, flip_segmentation=True,
                     temperature=0.2, prior_correction=0.3, fp16=True)
    loaded = ExpertColorizer.from_pretrained(out, device="cpu")
    assert list(loaded.experts) == ["faces", "places", "vehicles"] == list(built.experts)
    assert {e.config.temperature for e in loaded.experts.values()} == {0.2}
    assert {e.config.prior_correction for e in loaded.experts.values()} == {0.3}
    assert loaded.merge == built.merge and loaded.merge.to_dict()["strength"] == 0.75
    assert loaded.working_size == 128 and loaded.flip_segmentation
    assert loaded.routing.expert_for("bus") == "vehicles" and loaded.routing.expert_for("dog") == "places"
    assert all(t.dtype == torch.float16 for t in load_file(out / "experts" / "faces" / "model.safetensors").values()
               if t.is_floating_point())
    verify_manifest(out)  # every weight file listed and matching
    manifest = json.loads((out / "manifest.json").read_text())
    assert sorted(manifest["files"]) == sorted(p.relative_to(out).as_posix() for p in out.rglob("*.safetensors"))
    # the source directories are left alone
    assert Expert.from_pretrained(dirs[0]).config.temperature != 0.2
    # a tampered weight file is caught on load
    with open(out / "experts" / "places" / "model.safetensors", "r+b") as f:
        f.seek(-4, 2)
        f.write(b"\0\0\0\1")
    with pytest.raises(ValueError, match="does not match manifest.json"):
        ExpertColorizer.from_pretrained(out)


def test_assemble_matches_the_colorizer_it_returns(parts, tmp_path) -> None:
    seg, dirs = parts
    built = assemble(tmp_path / "model", seg, dirs)
    loaded = ExpertColorizer.from_pretrained(tmp_path / "model", device="cpu")
    gray = np.tile(np.linspace(0, 255, 40, dtype=np.uint8), (30, 1))
    assert np.array_equal(built.colorize(gray), loaded.colorize(gray))


def test_assemble_refuses_bad_input(parts, tmp_path) -> None:
    seg, dirs = parts
    out = tmp_path / "model"
    with pytest.raises(FileNotFoundError, match="no config.json"):
        assemble(out, tmp_path / "nope", dirs)
    with pytest.raises(ValueError, match="distinct"):
        assemble(out, seg, [dirs[0], dirs[0]])
    with pytest.raises(ValueError, match=r"temperature must be in \(0, 1\]"):
        assemble(out, seg, dirs, temperature=1.5)
    with pytest.raises(KeyError, match="unknown merge strategy 'median'; choose from"):
        assemble(out, seg, dirs, merge="median")
    plain = create_expert(name="plain", classes=["cat"])  # no rebalancing weights: no prior correction
    plain.save_pretrained(tmp_path / "plain")
    with pytest.raises(ValueError, match="no stored rebalancing weights"):
        assemble(out, seg, [*dirs, tmp_path / "plain"], prior_correction=0.5)
    assert not out.exists()  # nothing written by any refused call


def test_add_expert_as_python_api(tiny_model_dir, tmp_path) -> None:
    d = tmp_path / "model"
    shutil.copytree(tiny_model_dir, d)
    create_expert(name="pets", classes=("cat", "dog")).save_pretrained(tmp_path / "pets")
    assert add_expert(d, tmp_path / "pets", temperature=0.5) == ["cat", "dog"]
    verify_manifest(d)
    assert "experts/pets/model.safetensors" in json.loads((d / "manifest.json").read_text())["files"]
    assert filecmp.cmp(tmp_path / "pets" / "model.safetensors", d / "experts" / "pets" / "model.safetensors",
                       shallow=False)  # copied byte for byte
    c = ExpertColorizer.from_pretrained(d, device="cpu")
    assert c.routing.expert_for("dog") == "pets" and c.experts["pets"].config.temperature == 0.5
    # re-adding replaces the copy and narrows its routes
    assert add_expert(d, tmp_path / "pets", classes=["cat"]) == ["cat"]
    c = ExpertColorizer.from_pretrained(d, device="cpu")
    assert c.routing.expert_for("cat") == "pets" and c.experts["pets"].config.temperature != 0.5


@pytest.mark.parametrize("name", ["../evil", "a/b", "", "ünïcode", None])
def test_add_expert_refuses_a_bad_expert_name_before_writing(tiny_model_dir, tmp_path, name) -> None:
    d = tmp_path / "model"
    shutil.copytree(tiny_model_dir, d)
    src = tmp_path / "bad"
    create_expert(name="ok", classes=["cat"]).save_pretrained(src)
    cfg = json.loads((src / "config.json").read_text())
    (src / "config.json").write_text(json.dumps({**cfg, "name": name}))
    before = {p: p.read_bytes() for p in d.rglob("*") if p.is_file()}
    with pytest.raises(ValueError, match="expert name"):
        add_expert(d, src)
    assert {p: p.read_bytes() for p in d.rglob("*") if p.is_file()} == before
    assert not (tmp_path / "evil").exists()


def test_hub_is_a_deprecated_alias() -> None:
    sys.modules.pop("expertcolor.hub", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        hub = importlib.import_module("expertcolor.hub")
    assert any(issubclass(w.category, DeprecationWarning) and "expertcolor.modeldir" in str(w.message)
               for w in caught)
    assert hub.add_expert_to_model_dir is add_expert and hub.default_model_dir is modeldir.default_model_dir
    assert hub.WeightsNotFoundError is expertcolor.WeightsNotFoundError is modeldir.WeightsNotFoundError
