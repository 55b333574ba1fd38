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

from ledrec.serve import ledrec_pb2, ledrec_pb2_grpc
from ledrec.serve.client import read_ready_line
from tests.serve.test_retriever import toy_model
from tests.serve.test_server import free_port

pytestmark = pytest.mark.slow


def start(export: Path, *flags: str) -> tuple[subprocess.Popen, dict]:
    cmd = [sys.executable, "-m", "ledrec.cli", "serve", str(export), "--metrics-port", "0", "--exact-below", "0"]
    proc = subprocess.Popen(
        [*cmd, *flags], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        return proc, read_ready_line(proc, timeout=60)
    except RuntimeError as exc:
        raise AssertionError(f"{exc}: {proc.stderr.read()}") from None


def stop(proc: subprocess.Popen) -> int:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        return proc.wait(30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


def ask(address: str, credentials: grpc.ChannelCredentials | None = None, **kwargs) -> ledrec_pb2.RecommendResponse:
    channel = grpc.secure_channel(address, credentials, **kwargs) if credentials else grpc.insecure_channel(address)
    try:
        stub = ledrec_pb2_grpc.RecommenderStub(channel)
        return stub.Recommend(ledrec_pb2.RecommendRequest(partition="fr", item_ids=["i1"], k=5), timeout=10)
    finally:
        channel.close()


def children(pid: int) -> list[int]:
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture()
def export(tmp_path):
    toy_model().save(tmp_path / "export")
    return tmp_path / "export"


def test_a_second_server_cannot_join_the_port_of_a_multi_worker_one(export, tmp_path):
    """With --workers N, SO_REUSEPORT let an unrelated instance (another model) silently share the port."""
    other = tmp_path / "other"
    toy_model(seed=7).save(other)
    port = free_port()
    first, ready = start(export, "--port", str(port), "--workers", "2")
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
        assert stop(first) == 0


def test_workers_exit_when_their_parent_is_killed(export):
    """After kill -9 of the parent the workers lived on (and kept the port)."""
    port = free_port()
    proc, _ = start(export, "--port", str(port), "--workers", "2", "--grace", "2")
    workers = children(proc.pid)
    assert len(workers) == 2
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    deadline = time.monotonic() + 15
    while any(running(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(running(w) for w in workers)
    again, _ = start(export, "--port", str(port))  # the port and its lock are free again
    assert ask(f"127.0.0.1:{port}").items
    assert stop(again) == 0


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


def test_tls_and_mutual_tls(export, tmp_path):
    certs = make_certificates(tmp_path)
    read = lambda name: certs[name].read_bytes()  # noqa: E731
    port = free_port()
    address = f"localhost:{port}"
    tls = ["--tls-cert", str(certs["server.pem"]), "--tls-key", str(certs["server.key"])]
    proc, _ = start(export, "--port", str(port), *tls)
    try:
        assert ask(address, grpc.ssl_channel_credentials(read("ca.pem"))).items
        with pytest.raises(grpc.RpcError):  # plaintext against a TLS port
            ask(f"127.0.0.1:{port}")
    finally:
        assert stop(proc) == 0
    proc, _ = start(export, "--port", str(port), *tls, "--tls-client-ca", str(certs["ca.pem"]))
    try:
        with pytest.raises(grpc.RpcError):  # no client certificate
            ask(address, grpc.ssl_channel_credentials(read("ca.pem")))
        mutual = grpc.ssl_channel_credentials(read("ca.pem"), read("client.key"), read("client.pem"))
        assert ask(address, mutual).items
    finally:
        assert stop(proc) == 0
