"""The one name → constructor idiom: every family (experts, merges, segmenters, datasets, losses,
training commands) keeps a :class:`Registry` and exposes ``create_<family>`` / ``list_<family>s``.

Example::

    MERGES = Registry("merge")

    @MERGES.register("soft")
    class SoftMerge: ...

    def list_merges() -> list[str]:
        return MERGES.names()

    def create_merge(name: str, **kwargs) -> MergeStrategy:
        return MERGES.create(name, **kwargs)
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

__all__ = ["Registry", "UnknownNameError"]

T = TypeVar("T")


class UnknownNameError(KeyError, ValueError):
    """A name no entry is registered under. A ``KeyError`` (a failed look-up) and a ``ValueError``
    (bad input, as the families raised before they had a registry); printed without quotes."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class Registry(Generic[T]):
    """Named entries of one family (a class, a function, or any value) with errors that list the choices.

    Args:
        family: what an entry is, for messages (``"merge"``, ``"expert architecture"``).
    """

    def __init__(self, family: str) -> None:
        self.family = family
        self._entries: dict[str, T] = {}

    def register(self, name: str, entry: T | None = None) -> Any:
        """Register ``entry`` under ``name``; without ``entry``, a decorator that registers what it decorates.

        Raises:
            ValueError: if ``name`` is taken (a second registration would silently shadow the first).
        """
        if not isinstance(name, str) or not name:
            raise TypeError(f"a {self.family} name must be a non-empty string, got {name!r}")

        def add(value: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.family} {name!r} is already registered")
            self._entries[name] = value
            return value

        return add if entry is None else add(entry)

    def names(self) -> list[str]:
        """The registered names, sorted."""
        return sorted(self._entries)

    def get(self, name: str) -> T:
        """The entry registered as ``name``.

        Raises:
            UnknownNameError: (a ``KeyError`` and a ``ValueError``) if ``name`` is unknown; the message
                lists the choices.
        """
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise UnknownNameError(f"unknown {self.family} {name!r}; choose from {self.names()}") from None

    def create(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Call the entry registered as ``name`` with the given arguments (it must be callable)."""
        entry = self.get(name)
        if not callable(entry):
            raise TypeError(f"{self.family} {name!r} is not a constructor")
        return entry(*args, **kwargs)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Any:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.family!r}, {self.names()})"
