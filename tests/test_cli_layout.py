"""The command line stays thin: every function of every module under src/ledrec/cli/ fits on a screen (a
handler parses its flags, calls one library function and prints; a parser builder builds one command)."""

from __future__ import annotations

import ast
from pathlib import Path

CLI = Path(__file__).resolve().parents[1] / "src" / "ledrec" / "cli"
MAX_LINES = 60


def test_the_cli_is_a_package_of_modules():
    names = {p.name for p in CLI.glob("*.py")}
    assert {"__init__.py", "__main__.py", "common.py"} < names and len(names) > 3
    assert not (CLI.parent / "cli.py").exists()  # the package, not a module beside it


def test_no_cli_function_is_longer_than_60_lines():
    long = []
    for path in sorted(CLI.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_LINES:
                    name = getattr(node, "name", "<lambda>")
                    long.append(f"{path.relative_to(CLI.parent)}:{node.lineno} {name}: {lines} lines")
    assert not long, "split these (at most 60 lines each):\n" + "\n".join(long)
