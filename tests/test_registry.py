"""The registry idiom shared by every name → constructor family."""

import pytest

from expertcolor._registry import Registry


def test_register_create_and_list():
    reg = Registry("widget")

    @reg.register("b")
    class B:
        def __init__(self, x=1):
            self.x = x

    reg.register("a", lambda: "made a")
    assert reg.names() == ["a", "b"] and list(reg) == ["a", "b"] and len(reg) == 2
    assert "a" in reg and "c" not in reg
    assert reg.create("b", x=3).x == 3 and reg.create("a") == "made a"
    assert reg.get("b") is B


def test_errors_name_the_problem():
    reg = Registry("widget")
    reg.register("a", dict)
    with pytest.raises(ValueError, match="widget 'a' is already registered"):
        reg.register("a", list)
    with pytest.raises(KeyError, match=r"unknown widget 'z'; choose from \['a'\]"):
        reg.create("z")
    with pytest.raises(TypeError, match="non-empty string"):
        reg.register("", dict)
    reg.register("value", 3)
    with pytest.raises(TypeError, match="not a constructor"):
        reg.create("value")
