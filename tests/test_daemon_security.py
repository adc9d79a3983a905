"""The control API as a local attacker meets it: tcp:// needs CURVE keys, ipc:// sockets are
their owner's, hostile requests get an error and the daemon keeps serving, every state
change is recorded with who asked, and the event history is a bounded ring.

Daemons run as subprocesses on loopback with free ports; each is killed by its PID."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq
from ports import free_udp_ports

from ipseclab.errors import ControlError
from ipseclab.runtime.control import PeerClient

ROOT = Path(__file__).resolve().parent.parent
CONFIG = """
[peer]
name = "solo"
address = "127.0.0.1"
port = {port}
natt_port = {natt}
psk = "security-test-psk"

[connections.site]
remote_addrs = "127.0.0.1"
remote_port = {remote}

[connections.site.children.net1]
local_ts = "10.1.0.0/24"
remote_ts = "10.2.0.0/24"
"""


def _free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="ipl-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen]]:
    started: list[subprocess.Popen] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


def _start(procs: list[subprocess.Popen], workdir: Path, control: str, events: str | None, *extra: str) -> subprocess.Popen:
    port, natt, remote = free_udp_ports(3)
    cfg = workdir / "solo.toml"
    cfg.write_text(CONFIG.format(port=port, natt=natt, remote=remote))
    argv = [sys.executable, "-m", "ipseclab.cli", "peer", "--config", str(cfg), "--control", control, *extra]
    if events:
        argv += ["--events", events]
    log = open(workdir / "solo.log", "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    procs.append(proc)
    return proc


def _wait_ready(client: PeerClient, proc: subprocess.Popen, workdir: Path) -> None:
    deadline = time.monotonic() + 10
    while True:
        if proc.poll() is not None:
            pytest.fail(f"daemon exited: {(workdir / 'solo.log').read_text(errors='replace')}")
        try:
            client.request({"cmd": "status"}, timeout=0.25)
            return
        except ControlError:
            if time.monotonic() > deadline:
                pytest.fail("daemon did not answer within 10 s")


def test_tcp_without_keys_is_refused_with_the_reason(procs: list, workdir: Path) -> None:
    proc = _start(procs, workdir, f"tcp://127.0.0.1:{_free_tcp_port()}", None)
    assert proc.wait(timeout=15) == 2
    log = (workdir / "solo.log").read_text()
    assert "tcp:// socket needs authentication" in log and "--curve" in log


def test_tcp_with_curve_admits_only_key_holders(procs: list, workdir: Path) -> None:
    keys = workdir / "keys"
    control = f"tcp://127.0.0.1:{_free_tcp_port()}"
    events = f"tcp://127.0.0.1:{_free_tcp_port()}"
    proc = _start(procs, workdir, control, events, "--curve", str(keys))
    deadline = time.monotonic() + 10
    while not (keys / "client.key_secret").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    for secret in (keys / "server.key_secret", keys / "client.key_secret"):
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert stat.S_IMODE(keys.stat().st_mode) == 0o700
    with PeerClient(control, events, timeout=5, curve=str(keys)) as client:
        _wait_ready(client, proc, workdir)
        assert client.status()["name"] == "solo"
        client.hold(True)
        notes = [e for e in client.event_dicts_since(0) if e["kind"] == "info" and e["message"].startswith("control: hold")]
        public = (keys / "clients" / "client.key").read_text()
        assert notes and "CURVE client" in notes[-1]["message"]
        assert notes[-1]["message"].split("CURVE client ")[1] in public
    # a client without keys, and one with a key the daemon does not know, get nothing at all
    with PeerClient(control, timeout=1.0) as plain, pytest.raises(ControlError):
        plain.status()
    stranger = workdir / "stranger"
    stranger.mkdir()
    import zmq.auth

    zmq.auth.create_certificates(stranger, "client")
    shutil.copy(keys / "server.key", stranger / "server.key")
    with PeerClient(control, timeout=1.0, curve=str(stranger)) as other, pytest.raises(ControlError):
        other.status()


def test_ipc_sockets_are_their_owners_and_hostile_requests_do_not_stop_the_daemon(procs: list, workdir: Path) -> None:
    control, events = f"ipc://{workdir}/solo.ctl", f"ipc://{workdir}/solo.ev"
    old = os.umask(0)  # even a careless umask must not open the sockets to others
    try:
        proc = _start(procs, workdir, control, events, "--history", "40")
    finally:
        os.umask(old)
    with PeerClient(control, events, timeout=5) as client:
        _wait_ready(client, proc, workdir)
        for path in (workdir / "solo.ctl", workdir / "solo.ev"):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
        ctx = zmq.Context.instance()
        raw = ctx.socket(zmq.REQ)
        raw.setsockopt(zmq.LINGER, 0)
        raw.setsockopt(zmq.RCVTIMEO, 5000)
        raw.connect(control)
        raw.send(b"[" * 1000 + b"]" * 1000)  # 2 KB nested 1,000 deep: a RecursionError before
        reply = json.loads(raw.recv())
        assert not reply["ok"] and "nests deeper" in reply["error"]
        raw.send(b'{"cmd": "status", "pad": "' + b"x" * 262_400 + b'"}')  # just over MAX_REQUEST
        reply = json.loads(raw.recv())
        assert not reply["ok"] and "at most 262144" in reply["error"]
        raw.send(b'{"cmd": "status", "pad": "' + b"x" * 1_000_000 + b'"}')  # far over: ZeroMQ drops it unread
        with pytest.raises(zmq.Again):
            raw.recv()
        raw.close()
        assert client.status()["name"] == "solo", "still serving"
        # the history is a ring of 40 events: asking from the start says what was trimmed
        for n in range(30):
            client.hold(n % 2 == 0)
        reply = client.request({"cmd": "events", "since": 0})
        assert len(reply["events"]) == 40 and reply["trimmed"]["first_seq"] > 1
        assert reply["trimmed"]["lost"] == reply["trimmed"]["first_seq"] - 1
        last = reply["last_seq"]
        assert client.request({"cmd": "events", "since": last - 5})["events"][0]["seq"] == last - 4
        assert "trimmed" not in client.request({"cmd": "events", "since": last - 5})
        status = client.status()
        assert status["history"] == {"kept": 40, "limit": 40}
        assert any("asked by the owner of" in e["message"] for e in reply["events"] if e["kind"] == "info")
