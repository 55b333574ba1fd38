"""Data flows one way: no stage imports a later one (the README's layout), checked on the source's imports
(module level and inside functions alike)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "ledrec"
# the pipeline's order; a package may import its own and any earlier one
ORDER = [
    ("errors", "io", "config", "monitor", "similarity"),
    ("data",),
    ("evaluate",),
    ("pretrain",),
    ("models",),
    ("train",),
    ("index",),
    ("export",),
    ("twostage",),  # the Banner call of the service serves a two-stage system
    ("serve",),
    ("pipeline",),  # the daily job: data → … → export, the index built and self-checked as the service will
    ("simulate",),
    ("bench",),
    ("look",),  # the web page: may import every stage above; only the command line imports it
    ("cli", "__init__"),
]
LEVEL = {name: level for level, names in enumerate(ORDER) for name in names}


def stage(module: str) -> str:
    """'ledrec.serve.server' → 'serve'; 'ledrec.io' → 'io'."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports(path: Path) -> list[tuple[int, str]]:
    module = "ledrec." + ".".join(path.relative_to(SRC).with_suffix("").parts)
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
        elif isinstance(node, ast.ImportFrom) and node.level:  # relative: resolve against the package
            base = module.split(".")[: -node.level]
            out.append((node.lineno, ".".join([*base, node.module or ""])))
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
    return [(line, m) for line, m in out if m == "ledrec" or m.startswith("ledrec.")]


def test_no_stage_imports_a_later_stage():
    upward = []
    for path in sorted(SRC.rglob("*.py")):
        here = stage("ledrec." + ".".join(path.relative_to(SRC).with_suffix("").parts))
        for line, target in imports(path):
            there = stage(target)
            if there == "__init__" and target == "ledrec":
                there = "errors"  # `from ledrec import __version__`: the package's constants
            if LEVEL[there] > LEVEL[here]:
                upward.append(f"{path.relative_to(SRC)}:{line} ({here}) imports {target} ({there})")
    assert not upward, "\n".join(upward)


def test_the_service_imports_neither_the_simulator_nor_the_training_stack():
    served = [
        *(f"serve/{name}.py" for name in ("server", "config", "source", "loading", "manager", "metrics")),
        *(f"serve/{name}.py" for name in ("python_front", "native_front", "native", "supervisor", "ports")),
        "serve/retriever.py",
        "export/loading.py",
        "export/mips.py",
        "twostage/artifact.py",
    ]
    for name in served:
        for line, target in imports(SRC / name):
            assert stage(target) not in ("simulate", "train", "models", "pretrain", "bench"), f"{name}:{line} {target}"
