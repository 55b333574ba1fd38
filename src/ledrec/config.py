"""Options declared once, with type, default, bounds and help, and everything else derived from them:

* :class:`Option` — a model's hyper-parameter (``ledrec.models``): the constructor's signature, docs and
  checks, and ``ledrec run``'s flags, come from it; :func:`number` makes a command-line type of it.
* :func:`option` — a field of a configuration dataclass that is also a flag (:func:`add_flags`,
  :func:`from_args`): ``ledrec serve``, ``ledrec bench chaos``.
"""

from __future__ import annotations

import argparse
import typing
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np

from ledrec.errors import ConfigError


@dataclass(frozen=True)
class Option:
    """A hyper-parameter: CLI flag ``--name`` (underscores become dashes). ``searchable`` options accept a
    comma-separated list on the command line, and ``ledrec run`` picks the best value on validation.
    ``low`` / ``high`` bound its value (inclusive unless ``low_open`` / ``high_open``); :meth:`check` is
    what the model's constructor, and so the CLI, applies to every value."""

    name: str
    type: type
    default: Any
    help: str
    searchable: bool = False
    choices: tuple[Any, ...] | None = None
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def describe(self) -> str:
        """What a value must be, in words: "an int >= 1", "a float in [0, 1)", "one of ('a', 'b')"."""
        if self.choices is not None:
            return f"one of {self.choices}"
        kind = {int: "an int", float: "a number", str: "a string", bool: "a bool"}.get(self.type, self.type.__name__)
        if self.low is not None and self.high is not None:
            return (
                f"{kind} in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"
            )
        if self.low is not None:
            return f"{kind} {'>' if self.low_open else '>='} {self.low:g}"
        if self.high is not None:
            return f"{kind} {'<' if self.high_open else '<='} {self.high:g}"
        return kind

    def parse(self, text: str) -> list[Any]:
        """Command-line text → the values it names, as this option's type: a comma-separated list for a
        searchable option (the candidates of a search), else the one value. Bounds are :meth:`check`'s;
        a value that is not of the type is a ConfigError naming the flag."""
        values = [v.strip() for v in text.split(",")] if self.searchable else [text]
        out = []
        for v in values:
            if self.type is bool:  # (bool("false") is True)
                words = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
                if v.strip().lower() not in words:
                    raise ConfigError(f"--{self.name.replace('_', '-')}: {v!r} is not true or false")
                out.append(words[v.strip().lower()])
                continue
            try:
                out.append(self.type(v))
            except ValueError:
                raise ConfigError(f"--{self.name.replace('_', '-')}: {v!r} is not {self.describe()}") from None
        return out

    def check(self, value: Any, owner: str) -> Any:
        """``value`` as this option's type (an int is a valid float), or ConfigError naming the option.
        An option whose default is None takes None too (a value decided later, e.g. by a model's preset)."""
        if value is None and self.default is None:
            return None
        ok = {
            int: lambda v: isinstance(v, int | np.integer) and not isinstance(v, bool),
            float: lambda v: isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool),
            str: lambda v: isinstance(v, str),
            bool: lambda v: isinstance(v, bool | np.bool_),
        }.get(self.type, lambda v: isinstance(v, self.type))
        if not ok(value):
            raise ConfigError(f"{owner}: {self.name} must be {self.describe()}, not {value!r}")
        value = self.type(value)
        if self.choices is not None and value not in self.choices:
            raise ConfigError(f"{owner}: {self.name} must be {self.describe()}, not {value!r}")
        too_low = self.low is not None and (value <= self.low if self.low_open else value < self.low)
        too_high = self.high is not None and (value >= self.high if self.high_open else value > self.high)
        if too_low or too_high or (self.type is float and not np.isfinite(value)):
            raise ConfigError(f"{owner}: {self.name} must be {self.describe()}, not {value!r}")
        return value


def number(kind: type, **bounds: Any) -> Callable[[str], Any]:
    """An argparse ``type``: the text as ``kind`` within ``bounds`` (those of :class:`Option`), or a
    one-line usage error saying what it must be."""
    rule = Option("value", kind, None, "", **bounds)

    def parse(text: str) -> Any:
        try:
            return rule.check(kind(text), "")
        except (ValueError, ConfigError):
            raise argparse.ArgumentTypeError(f"{text!r} is not {rule.describe()}") from None

    return parse


def option(
    default: Any, help: str, flag: str | None = None, choices: tuple[Any, ...] | None = None, **bounds: Any
) -> Any:
    """A field of a configuration dataclass declared as an :class:`Option` (its type is the field's): also
    a command-line flag (``--field-name``, or ``flag``), checked by the option's type, ``choices`` and
    ``bounds`` (those of :class:`Option`). Booleans get ``--name`` / ``--no-name``; ``X | None`` fields
    default to None."""
    declared = Option("", object, default, help, choices=choices, **bounds)
    return field(default=default, metadata={"option": declared, "flag": flag})


def field_options(cls: type) -> list[tuple[Option, str]]:
    """The fields of the dataclass ``cls`` declared with :func:`option`, each as an :class:`Option` (named
    and typed from the field) and its flag. Other fields (a nested configuration, a path given as an
    argument) are not options."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in fields(cls):
        declared = f.metadata.get("option")
        if declared is None:
            continue
        kind = hints[f.name]
        args = typing.get_args(kind)
        if args and type(None) in args:  # X | None
            kind = next(a for a in args if a is not type(None))
        flag = f.metadata.get("flag") or "--" + f.name.replace("_", "-")
        out.append((replace(declared, name=f.name, type=kind), flag))
    return out


def check_fields(config: Any) -> None:
    """ConfigError naming the first field of the configuration dataclass instance ``config`` whose value
    its :class:`Option` refuses (type, choices, bounds); for a ``__post_init__``."""
    for o, _ in field_options(type(config)):
        o.check(getattr(config, o.name), type(config).__name__)


def add_flags(parser: argparse.ArgumentParser | Any, cls: type, skip: tuple[str, ...] = ()) -> None:
    """One flag per option of the configuration dataclass ``cls`` (but ``skip``): type, default, choices,
    bounds and help declared once, in the dataclass."""
    for o, flag in field_options(cls):
        if o.name in skip:
            continue
        if o.type is bool:
            parser.add_argument(
                flag, dest=o.name, action=argparse.BooleanOptionalAction, default=o.default, help=o.help
            )
            continue

        def value(text: str, o: Option = o, flag: str = flag) -> Any:
            try:
                return o.check(o.parse(text)[0], flag)
            except ConfigError as exc:
                raise argparse.ArgumentTypeError(str(exc).split(": ", 1)[-1]) from None

        metavar = None if o.choices else flag.lstrip("-").upper().replace("-", "_")
        parser.add_argument(flag, dest=o.name, type=value, default=o.default, metavar=metavar, help=o.help)


def from_args(cls: type, args: argparse.Namespace, **values: Any) -> Any:
    """An instance of ``cls`` from the parsed flags of :func:`add_flags` (``values`` override or add)."""
    given = {o.name: getattr(args, o.name) for o, _ in field_options(cls) if hasattr(args, o.name)}
    return cls(**{**given, **values})
