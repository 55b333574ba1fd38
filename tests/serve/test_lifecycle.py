"""``ledrec serve`` as processes: one port per server (no silent sharing), workers that die with their parent,
TLS and mutual TLS, option checks. Loopback only, every wait bounded."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest

from ledrec.serve.client import start_server, stop_server
from tests.serve.conftest import ask, children, running, toy_model

pytestmark = pytest.mark.slow


def start(export: Path, front: str, *flags: str) -> tuple[subprocess.Popen, dict]:
    """``ledrec serve --front FRONT`` on ports it binds itself (port 0), and its ready line (``port``,
    ``address``, ``front``)."""
    proc, ready = start_server(export, "--exact-below", "0", "--front", front, *flags, timeout=60)
    assert ready["front"] == front
    return proc, ready


@pytest.fixture()
def export(tmp_path):
    toy_model().save(tmp_path / "export")
    return tmp_path / "export"


def test_a_second_server_cannot_join_the_port_of_a_multi_worker_one(export, tmp_path, front):
    """With --workers N, SO_REUSEPORT let an unrelated instance (another model) silently share the port."""
    other = tmp_path / "other"
    toy_model(seed=7).save(other)
    first, ready = start(export, front, "--workers", "2")
    port = ready["port"]
    try:
        assert ready["workers"] == 2
        version = ask(f"127.0.0.1:{port}").model_version
        for workers in ("2", "1"):
            second = subprocess.run(
                [sys.executable, "-m", "ledrec.cli", "serve", str(other), "--port", str(port), "--workers", workers],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert second.returncode == 2 and "Traceback" not in second.stderr
            assert str(port) in second.stderr and len(second.stderr.strip().splitlines()) == 1
        assert {ask(f"127.0.0.1:{port}").model_version for _ in range(20)} == {version}
    finally:
        assert stop_server(first) == 0


def test_workers_exit_when_their_parent_is_killed(export, front):
    """After kill -9 of the parent the workers lived on (and kept the port)."""
    proc, ready = start(export, front, "--workers", "2", "--grace", "2")
    port = ready["port"]
    workers = children(proc.pid)
    assert len(workers) == 2
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    deadline = time.monotonic() + 15
    while any(running(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(running(w) for w in workers)
    again, _ = start(export, front, "--port", str(port))  # the port and its lock are free again
    assert ask(f"127.0.0.1:{port}").items
    assert stop_server(again) == 0


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--port", "-1"], "--port"),
        (["--workers", "0"], "--workers"),
        (["--grace", "-2"], "--grace"),
        (["--tls-cert", "x.pem"], "--tls-key"),
        (["--index", "annoy"], "--index"),
        (["--ef", "0"], "--ef"),
    ],
)
def test_bad_options_are_one_line_errors(export, flags, message):
    done = subprocess.run(
        [sys.executable, "-m", "ledrec.cli", "serve", str(export), *flags], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def make_certificates(folder: Path) -> dict[str, Path]:
    """A CA, a server certificate for localhost / 127.0.0.1 and a client certificate, with openssl."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=folder, timeout=60)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=ledrec test CA")  # fmt: skip
    (folder / "san.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    for name in ("server", "client"):
        run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
            "-subj", f"/CN={name}")  # fmt: skip
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", f"{name}.pem", "-days", "2", "-extfile", "san.cnf")  # fmt: skip
    return {n: folder / n for n in ("ca.pem", "server.pem", "server.key", "client.pem", "client.key")}


def test_tls_and_mutual_tls(export, tmp_path, front):
    certs = make_certificates(tmp_path)
    read = lambda name: certs[name].read_bytes()  # noqa: E731
    tls = ["--tls-cert", str(certs["server.pem"]), "--tls-key", str(certs["server.key"])]
    proc, ready = start(export, front, *tls)
    port = ready["port"]
    address = f"localhost:{port}"
    try:
        assert ask(address, grpc.ssl_channel_credentials(read("ca.pem"))).items
        with pytest.raises(grpc.RpcError):  # plaintext against a TLS port
            ask(f"127.0.0.1:{port}")
    finally:
        assert stop_server(proc) == 0
    proc, ready = start(export, front, *tls, "--tls-client-ca", str(certs["ca.pem"]))
    address = f"localhost:{ready['port']}"
    try:
        with pytest.raises(grpc.RpcError):  # no client certificate
            ask(address, grpc.ssl_channel_credentials(read("ca.pem")))
        mutual = grpc.ssl_channel_credentials(read("ca.pem"), read("client.key"), read("client.pem"))
        assert ask(address, mutual).items
    finally:
        assert stop_server(proc) == 0
