"""``ledrec look`` as a user starts it: one JSON ready line on stdout naming the URL of the port it bound, the
pages served there, errors one line with exit status 2."""

from __future__ import annotations

import socket
import subprocess
import sys
import urllib.request

import pytest

pytest.importorskip("uvicorn", reason="ledrec look needs the look extra: pip install -e '.[look]'")

from ledrec.look.process import start_look, stop_server

pytestmark = pytest.mark.slow


def test_the_ready_line_names_the_port_it_listens_on(world):
    proc, ready = start_look(world["root"], "--items", str(world["items"]), "--events", str(world["events"]))
    try:
        assert ready["url"] == f"http://127.0.0.1:{ready['port']}/" and ready["port"] > 0
        assert ready["catalogues"] == {"de": {"items": 40, "users": 60}, "fr": {"items": 40, "users": 60}}
        assert ready["published"] is True
        with urllib.request.urlopen(ready["url"] + "?catalogue=fr&h=m21", timeout=10) as response:
            assert response.status == 200 and "Toy Story (1995)" in response.read().decode()
        with urllib.request.urlopen(ready["url"] + "pipeline", timeout=10) as response:
            assert "refused" in response.read().decode()
    finally:
        assert stop_server(proc) == 0  # SIGTERM: a clean stop
    assert proc.returncode == 0


def test_a_port_in_use_and_a_bad_items_file_are_one_line_errors(world, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "ledrec.cli", "look", str(world["export"]), "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().count("\n") == 0 and f"cannot listen on 127.0.0.1:{port}" in done.stderr
    bad = tmp_path / "items.csv"
    bad.write_text("title\nno id column\n")
    done = subprocess.run(
        [sys.executable, "-m", "ledrec.cli", "look", str(world["export"]), "--items", str(bad), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("ledrec look: error: ") and "no item id column" in done.stderr
    assert done.stderr.strip().count("\n") == 0
    done = subprocess.run(
        [sys.executable, "-m", "ledrec.cli", "look", str(tmp_path), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "not a folder ledrec wrote" in done.stderr, done.stderr


@pytest.mark.parametrize(
    "also, says",
    [("als", "expected LABEL=DIR"), ("led={export}", "short label other than"), ("x={export}/nope", "nope")],
)
def test_a_bad_also_is_one_line(world, capsys, also, says):
    from ledrec.cli import main

    assert main(["look", str(world["export"]), "--also", also.format(export=world["export"]), "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert says in err and err.count("\n") == 1, err
