"""The locks (requirements/*.txt, made by ``bash scripts/lock.sh``) agree with pyproject.toml, and this
environment holds what they say: a fresh clone installs exactly what CI tested."""

from __future__ import annotations

import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.conftest import parse_lock

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
BUILD_IN = ROOT / "requirements" / "build.in"
FROM_PYPROJECT, FROM_BUILD_IN = "ledrec (pyproject.toml)", "-r requirements/build.in"


def requirements(lines: list[str]) -> list[Requirement]:
    return [Requirement(line) for line in lines if line.strip() and not line.lstrip().startswith("#")]


RUNTIME = requirements(PYPROJECT["project"]["dependencies"])
DEV = requirements(PYPROJECT["project"]["optional-dependencies"]["dev"])
BUILD = requirements(BUILD_IN.read_text().splitlines()) + requirements(PYPROJECT["build-system"]["requires"])
LOCKS = {profile: parse_lock(ROOT / "requirements" / f"{profile}.txt") for profile in ("demo", "test")}
WANTED = {"demo": RUNTIME + BUILD, "test": RUNTIME + DEV + BUILD}


@pytest.mark.parametrize("profile", ["demo", "test"])
def test_every_requirement_is_locked_at_a_version_it_allows(profile):
    lock = LOCKS[profile]
    for req in WANTED[profile]:
        name = canonicalize_name(req.name)
        assert name in lock, f"{req} is not in requirements/{profile}.txt: bash scripts/lock.sh"
        assert req.specifier.contains(lock[name][0], prereleases=True), (
            f"requirements/{profile}.txt locks {name}=={lock[name][0]}, pyproject.toml wants {req}: "
            "bash scripts/lock.sh"
        )


@pytest.mark.parametrize("profile", ["demo", "test"])
def test_the_lock_holds_nothing_pyproject_no_longer_asks_for(profile):
    lock = LOCKS[profile]
    direct = {n for n, (_, _, via) in lock.items() if FROM_PYPROJECT in via}
    wanted = {canonicalize_name(r.name) for r in (RUNTIME + DEV if profile == "test" else RUNTIME)}
    assert direct == wanted, f"requirements/{profile}.txt is stale: bash scripts/lock.sh"
    built = {n for n, (_, _, via) in lock.items() if FROM_BUILD_IN in via}
    assert built == {canonicalize_name(r.name) for r in requirements(BUILD_IN.read_text().splitlines())}
    # every package is there for a reason inside the same lock (no orphan of a dropped dependency)
    for name, (_, _, via) in lock.items():
        reasons = {v for v in via if not v.startswith("-c ")}
        assert reasons, f"{name} is in requirements/{profile}.txt for no reason: bash scripts/lock.sh"
        for reason in reasons - {FROM_PYPROJECT, FROM_BUILD_IN}:
            assert canonicalize_name(reason) in lock, f"{name} is there for {reason}, which is not locked"


def test_the_demo_lock_is_the_test_lock_restricted():
    demo, test = LOCKS["demo"], LOCKS["test"]
    assert set(demo) < set(test)
    for name, (locked, hashes, _) in demo.items():
        assert (locked, hashes) == test[name][:2], f"{name}: the demo and test locks disagree"
    for dev_only in ("pytest", "ruff", "pyspark"):
        assert dev_only not in demo, f"the demo installs {dev_only}, which it never runs"


def test_every_file_is_pinned_by_hash_and_torch_is_the_cpu_build():
    for profile, lock in LOCKS.items():
        for name, (_, hashes, _) in lock.items():
            assert hashes, f"requirements/{profile}.txt: {name} has no hash"
        # a looser torch pulls a multi-GB CUDA build: the lock must name the CPU one
        assert lock["torch"][0] == "2.13.0+cpu"


def test_this_environment_holds_exactly_the_locked_versions():
    """What `bash scripts/test.sh` installed: the test lock, package for package."""
    wrong = {}
    for name, (locked, _, _) in LOCKS["test"].items():
        try:
            installed = version(name)
        except PackageNotFoundError:
            installed = None
        if installed is None or Version(installed) != Version(locked):
            wrong[name] = (installed, locked)
    assert not wrong, f"installed vs locked: {wrong}; run bash scripts/bootstrap.sh test"
