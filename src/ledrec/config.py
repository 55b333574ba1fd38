"""Configuration dataclasses whose fields carry their own help text, so that a command's flags, their
types, defaults and help are derived from the one declaration (:func:`add_flags`, :func:`from_args`)."""

from __future__ import annotations

import argparse
import typing
from dataclasses import MISSING, field, fields
from typing import Any


def option(default: Any, help: str, flag: str | None = None) -> Any:
    """A field of a configuration dataclass that is also a command-line flag (``--field-name``, or
    ``flag``). Booleans get ``--name`` / ``--no-name``; ``X | None`` fields default to None."""
    return field(default=default, metadata={"help": help, "flag": flag})


def add_flags(parser: argparse.ArgumentParser | Any, cls: type) -> None:
    """One flag per :func:`option` field of ``cls``."""
    hints = typing.get_type_hints(cls)
    for f in fields(cls):
        if "help" not in f.metadata:
            continue
        flag = f.metadata["flag"] or "--" + f.name.replace("_", "-")
        kind = hints[f.name]
        args = typing.get_args(kind)
        if args and type(None) in args:  # X | None
            kind = next(a for a in args if a is not type(None))
        default = f.default if f.default is not MISSING else None
        metavar = flag.lstrip("-").upper().replace("-", "_")
        if kind is bool:
            parser.add_argument(
                flag, dest=f.name, action=argparse.BooleanOptionalAction, default=default, help=f.metadata["help"]
            )
        else:
            parser.add_argument(flag, dest=f.name, type=kind, default=default, metavar=metavar, help=f.metadata["help"])


def from_args(cls: type, args: argparse.Namespace, **values: Any) -> Any:
    """An instance of ``cls`` from the parsed flags of :func:`add_flags` (``values`` override or add)."""
    given = {f.name: getattr(args, f.name) for f in fields(cls) if "help" in f.metadata and hasattr(args, f.name)}
    return cls(**{**given, **values})
