"""Errors a user can fix, which the command line reports in one line with exit status 2 (with
:class:`ledrec.io.ArtifactError` for artifacts and :class:`ledrec.data.interactions.DataError` for data)."""

from __future__ import annotations

from collections.abc import Iterable
from numbers import Integral
from typing import Any


class ConfigError(ValueError):
    """An option value, or a combination of options, that cannot work: the message names the option."""


class InputError(ConfigError, TypeError):
    """An argument of the wrong kind — a DataFrame where a matrix is expected, a string where a list of item
    ids is —: the message names what to pass instead. (A TypeError too, as Python's own would be.)"""


def check_k(k: Any, name: str = "k") -> int:
    """``k`` as an int >= 1 (numpy ints too). A bool, a float or a string is an :class:`InputError`, zero or a
    negative value a :class:`ConfigError`: ``k=0`` silently gave nothing and ``k=-1`` every item."""
    if isinstance(k, bool) or not isinstance(k, Integral):
        raise InputError(f"{name} must be an int >= 1, not {type(k).__name__} {k!r}")
    if k < 1:
        raise ConfigError(f"{name} must be an int >= 1, not {k}")
    return int(k)


def check_ids(ids: Any, name: str = "history") -> list[str]:
    """A list of item ids (as strings) from any iterable of ids. A single string or bytes is an
    :class:`InputError`: iterating it would read "50" as the two ids "5" and "0"."""
    if isinstance(ids, str | bytes):
        raise InputError(f"{name} must be a list of item ids, not a {type(ids).__name__}: for one item, [{ids!r}]")
    if not isinstance(ids, Iterable):
        raise InputError(f"{name} must be a list of item ids, not {type(ids).__name__}")
    return [str(i) for i in ids]
