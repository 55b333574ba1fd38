"""Options are declared once, in a configuration dataclass, and the flags, their checks and the
dataclass's own checks all come from that one declaration."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import pytest

from ledrec.config import add_flags, check_fields, field_options, from_args, option
from ledrec.errors import ConfigError


@dataclass(frozen=True)
class Toy:
    path: str  # not an option: given as an argument
    size: int = option(8, "how many", low=1)
    rate: float = option(0.5, "a fraction", low=0.0, high=1.0, high_open=True)
    mode: str = option("fast", "how", choices=("fast", "exact"))
    window: int | None = option(None, "optional, positive", low=1)
    quiet: bool = option(False, "say nothing")
    grace_s: float = option(2.0, "seconds", "--grace", low=0.0)

    def __post_init__(self) -> None:
        check_fields(self)


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(exit_on_error=False)
    add_flags(p, Toy)
    return p.parse_args(argv)


def test_every_option_is_a_flag_with_its_declared_default_and_the_rest_are_not():
    assert [o.name for o, _ in field_options(Toy)] == ["size", "rate", "mode", "window", "quiet", "grace_s"]
    args = parse([])
    assert from_args(Toy, args, path="p") == Toy(path="p")
    assert not hasattr(args, "path")


def test_flags_are_typed_and_bounded_as_declared():
    args = parse(["--size", "3", "--rate", "0.25", "--mode", "exact", "--window", "4", "--quiet", "--grace", "0"])
    assert from_args(Toy, args, path="p") == Toy("p", 3, 0.25, "exact", 4, True, 0.0)
    assert from_args(Toy, parse(["--no-quiet"]), path="p").quiet is False
    for bad in (["--size", "0"], ["--size", "2.5"], ["--rate", "1"], ["--mode", "slow"], ["--window", "0"]):
        with pytest.raises(argparse.ArgumentError):
            parse(bad)


def test_the_dataclass_refuses_what_the_flags_refuse():
    with pytest.raises(ConfigError, match=r"Toy: size must be an int >= 1, not 0"):
        Toy("p", size=0)
    with pytest.raises(ConfigError, match=r"rate must be a number in \[0, 1\)"):
        Toy("p", rate=1.0)
    with pytest.raises(ConfigError, match="mode must be one of"):
        Toy("p", mode="slow")
    with pytest.raises(ConfigError, match="size must be an int"):
        Toy("p", size=True)  # a bool is not a count


def test_the_package_configurations_check_their_declared_bounds():
    from ledrec.data.synthetic import SyntheticConfig
    from ledrec.pretrain import PretrainConfig
    from ledrec.simulate.world import ProductionConfig

    for cls, bad in (
        (PretrainConfig, {"alpha": 2.0}),
        (SyntheticConfig, {"n_users": 0}),
        (ProductionConfig, {"sale_rate": -1.0}),
    ):
        with pytest.raises(ConfigError):
            cls(**bad)
