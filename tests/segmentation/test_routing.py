"""Routing table: defaults, validation, probabilities."""

import pytest
import torch

from expertcolor.segmentation import VOC_CATEGORIES, RoutingTable


def test_default_routes():
    t = RoutingTable()
    assert t.experts == ("animals", "birds", "faces", "places")
    assert t.expert_for("person") == "faces"
    assert t.expert_for("bird") == "birds"
    assert {t.expert_for(c) for c in ("cat", "dog", "horse", "sheep", "cow")} == {"animals"}
    assert t.expert_for("car") == "places" and t.expert_for("background") == "places"


def test_validation_errors():
    with pytest.raises(ValueError, match="unknown categories.*unicorn"):
        RoutingTable({"unicorn": "faces"})
    with pytest.raises(ValueError, match=r"experts \[.cars.\] that are not available"):
        RoutingTable({"car": "cars"}, experts=["faces", "places"])
    with pytest.raises(ValueError, match="not available"):
        RoutingTable({}, default="nowhere", experts=["faces"])
    with pytest.raises(ValueError, match="unknown category"):
        RoutingTable().expert_for("unicorn")


def test_probabilities_are_summed_per_expert():
    t = RoutingTable()
    probs = torch.rand(2, 21, 5, 6).softmax(1)
    w = t(probs)
    assert w.shape == (2, 4, 5, 6)
    assert torch.allclose(w.sum(1), torch.ones(2, 5, 6), atol=1e-6)
    animals = sum(probs[:, VOC_CATEGORIES.index(c)] for c in ("cat", "dog", "horse", "sheep", "cow"))
    assert torch.allclose(w[:, t.experts.index("animals")], animals, atol=1e-6)
    with pytest.raises(ValueError, match="shape"):
        t(torch.rand(1, 3, 4, 4))


def test_user_edit_and_round_trip():
    t = RoutingTable({"person": "faces", "car": "cars"}, experts=["cars", "faces", "places"])
    assert t.expert_for("car") == "cars" and t.expert_for("dog") == "places"
    again = RoutingTable.from_dict(t.to_dict(), VOC_CATEGORIES)
    assert again.routes == t.routes and again.experts == t.experts
    with pytest.raises(ValueError, match="missing"):
        RoutingTable.from_dict({"routes": {}}, VOC_CATEGORIES)
