"""Peer daemons (``ipseclab peer``) as real subprocesses, driven over the ZeroMQ control API.

Two daemons run on 127.0.0.1 with free high UDP ports and ``ipc://`` sockets in a private
temporary directory: Main Mode + Quick Mode must come up with both SA tables agreeing;
in hold mode every ``step`` delivers exactly one datagram (6 MM + 3 QM) and the peer's
clock stands still (no retransmission however long a message is held); the event stream
carries every message with its textbook summary; :class:`RemoteLabSession` drives the
unchanged :class:`~ipseclab.teaching.widgets.IkeLab` widgets; bad requests get plain-words errors
and the daemon keeps running; ``shutdown`` and SIGTERM end it with status 0.

Every wait is bounded, and every process this module starts is killed by its PID in a
finalizer, whatever happens.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from ports import free_udp_ports

from ipseclab.errors import ControlError
from ipseclab.runtime.control import PeerClient, RemoteLabSession
from ipseclab.trace import KeyDerived, MessageEvent, Retransmitted, SaEstablished

HOST = "127.0.0.1"
TIMEOUT = 10.0
ROOT = Path(__file__).resolve().parent.parent

CONFIG = """
[peer]
name = "{name}"
address = "127.0.0.1"
port = {port}
natt_port = {natt}
psk = "daemon-test-psk"
retransmit_timeout = 0.5

[connections.site]
remote_addrs = "127.0.0.1"
remote_port = {remote_port}

[connections.site.children.net1]
local_ts = "{local_ts}"
remote_ts = "{remote_ts}"
esp_proposals = ["aes128-sha1"]
"""

EXPECTED = [
    ("left", "Main Mode", 1, "HDR, SA, VID, VID, VID, VID, VID"),
    ("right", "Main Mode", 2, "HDR, SA, VID, VID"),
    ("left", "Main Mode", 3, "HDR, KE, Ni, NAT-D, NAT-D"),
    ("right", "Main Mode", 4, "HDR, KE, Nr, NAT-D, NAT-D"),
    ("left", "Main Mode", 5, "HDR*, IDii, HASH_I"),
    ("right", "Main Mode", 6, "HDR*, IDir, HASH_R"),
    ("left", "Quick Mode", 1, "HDR*, HASH(1), SA, Ni, IDci, IDcr"),
    ("right", "Quick Mode", 2, "HDR*, HASH(2), SA, Nr, IDci, IDcr"),
    ("left", "Quick Mode", 3, "HDR*, HASH(3)"),
]




def wait_until(predicate: Callable[[], bool], timeout: float = TIMEOUT, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


@dataclass
class Daemon:
    """One ``ipseclab peer`` subprocess and a client for it."""

    name: str
    proc: subprocess.Popen
    client: PeerClient
    control: str
    events: str
    port: int
    natt_port: int
    log: Path

    def pending(self) -> list[dict]:
        return self.client.pending()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


class Processes:
    """Every daemon a test started; ``kill_all`` kills each by its PID."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []
        self.clients: list[PeerClient] = []

    def kill_all(self) -> None:
        for client in self.clients:
            client.close()
        for proc in self.procs:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def config_text(name: str, port: int, natt: int, remote_port: int) -> str:
    nets = ("10.1.0.0/24", "10.2.0.0/24") if name.startswith("left") else ("10.2.0.0/24", "10.1.0.0/24")
    return CONFIG.format(name=name, port=port, natt=natt, remote_port=remote_port, local_ts=nets[0], remote_ts=nets[1])


def spawn(
    procs: Processes, workdir: Path, name: str, config: str, *extra: str
) -> tuple[subprocess.Popen, Path, str, str]:
    path = workdir / f"{name}.toml"
    path.write_text(config)
    control, events = f"ipc://{workdir}/{name}.ctl", f"ipc://{workdir}/{name}.ev"
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ipseclab.cli", "peer", "--config", str(path), "--control", control, "--events", events, *extra],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    procs.procs.append(proc)
    return proc, log, control, events


def start_daemon(procs: Processes, workdir: Path, name: str, port: int, natt: int, remote_port: int, *extra: str) -> Daemon:
    """Start a daemon and wait (bounded) until it answers ``status``; fail with its log if it exits."""
    proc, log, control, events = spawn(procs, workdir, name, config_text(name, port, natt, remote_port), *extra)
    client = PeerClient(control, events, timeout=TIMEOUT)
    procs.clients.append(client)
    deadline = time.monotonic() + TIMEOUT
    while True:
        if proc.poll() is not None:
            raise OSError(f"daemon {name} exited with {proc.returncode}: {log.read_text(errors='replace')}")
        try:
            client.request({"cmd": "status"}, timeout=0.25)
            break
        except ControlError:
            if time.monotonic() > deadline:
                pytest.fail(f"daemon {name} did not answer within {TIMEOUT} s: {log.read_text(errors='replace')}")
    return Daemon(name, proc, client, control, events, port, natt, log)


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    # ipc:// paths are limited to ~107 bytes: a short directory under /tmp
    path = Path(tempfile.mkdtemp(prefix="ipl-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def procs() -> Iterator[Processes]:
    p = Processes()
    try:
        yield p
    finally:
        p.kill_all()


@pytest.fixture(scope="module")
def pair(procs: Processes, workdir: Path) -> tuple[Daemon, Daemon]:
    for _attempt in range(3):
        lp, ln, rp, rn = free_udp_ports(4)
        try:
            left = start_daemon(procs, workdir, "left", lp, ln, rp)
            right = start_daemon(procs, workdir, "right", rp, rn, lp)
            return left, right
        except OSError:  # a port was taken in between: kill what started and try other ports
            for proc in procs.procs:
                if proc.poll() is None:
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=5)
    pytest.fail("could not start two daemons on free UDP ports")


def clean(pair: tuple[Daemon, Daemon]) -> None:
    """No SA, nothing held, not holding, on both daemons (terminate while holding: no traffic)."""
    for d in pair:
        d.client.hold(True)
        d.client.terminate()
        d.client.discard()
    for d in pair:
        d.client.hold(False)


def up(d: Daemon) -> bool:
    sas = d.client.list_sas()
    return any(s["state"] == "QM_IDLE" for s in sas["isakmp"]) and len(sas["ipsec"]) == 1


def check_tables_agree(left: Daemon, right: Daemon) -> None:
    lt, rt = left.client.list_sas(), right.client.list_sas()
    (li,), (ri,) = lt["isakmp"], rt["isakmp"]
    assert li["cookies"] == ri["cookies"]
    assert (li["role"], ri["role"]) == ("initiator", "responder")
    assert li["state"] == ri["state"] == "QM_IDLE"
    assert (li["local"], li["remote"]) == (f"{HOST}:{left.port}", f"{HOST}:{right.port}")
    assert (ri["local"], ri["remote"]) == (f"{HOST}:{right.port}", f"{HOST}:{left.port}")
    assert li["suite"] == ri["suite"] == "AES-CBC-128, SHA1, pre-shared key, DH group 14, lifetime 86400 s"
    (ls,), (rs,) = lt["ipsec"], rt["ipsec"]
    assert (ls["spi_in"], ls["spi_out"]) == (rs["spi_out"], rs["spi_in"])
    assert (ls["local_ts"], ls["remote_ts"]) == (rs["remote_ts"], rs["local_ts"]) == ("10.1.0.0/24", "10.2.0.0/24")
    assert ls["encryption"] == rs["encryption"] == "AES-CBC-128"


def test_initiate_and_both_sa_tables_agree(pair: tuple[Daemon, Daemon]) -> None:
    left, right = pair
    clean(pair)
    reply = left.client.initiate("site")
    assert reply["ok"] and reply["ref"]["kind"] == "ike" and reply["ref"]["version"] == 1
    assert reply["ref"]["spi_i"] in reply["sa"]  # the label, for people
    wait_until(lambda: up(left) and up(right), what="both SAs up")
    check_tables_agree(left, right)
    # a new configuration is refused while SAs exist, and nothing changes
    with pytest.raises(ControlError, match=r"load: 2 SA\(s\) exist: terminate them"):
        left.client.load(left.client.config_text())
    assert up(left)
    status = left.client.status()
    assert (status["name"], status["port"], status["natt_port"], status["holding"]) == ("left", left.port, left.natt_port, False)
    assert (status["isakmp_sas"], status["ipsec_sas"]) == (1, 1)


def test_hold_mode_steps_one_message_at_a_time(pair: tuple[Daemon, Daemon]) -> None:
    left, right = pair
    clean(pair)
    received = {d.name: d.client.status()["received"] for d in pair}
    first_seq = {d.name: d.client.status()["last_seq"] for d in pair}
    for d in pair:
        assert d.client.hold(True)["holding"] is True
    left.client.initiate("site")
    # longer than retransmit_timeout (0.5 s): the peer's clock is stopped, so no retransmission
    time.sleep(0.8)
    (mm1,) = left.pending()
    assert right.pending() == []
    assert (mm1["exchange"], mm1["index"], mm1["summary"]) == ("Main Mode", 1, EXPECTED[0][3])

    seen = []
    for _ in range(9):
        lp, rp = left.pending(), right.pending()
        assert len(lp) + len(rp) == 1, (lp, rp)
        sender, receiver = (left, right) if lp else (right, left)
        (item,) = lp or rp
        seen.append((sender.name, item["exchange"], item["index"], item["summary"]))
        assert item["src"] == [HOST, sender.port] and item["dst"] == [HOST, receiver.port]
        assert item["seq"] is not None and item["size"] > 28
        before = receiver.client.status()["received"]
        released = sender.client.step()
        assert released["id"] == item["id"]
        wait_until(lambda r=receiver, b=before: r.client.status()["received"] > b, what="the datagram to arrive")
        assert receiver.client.status()["received"] == before + 1
        assert sender.pending() == []
    assert seen == EXPECTED

    time.sleep(0.1)  # nothing else may arrive: every step delivered exactly one datagram
    assert {d.name: d.client.status()["received"] - received[d.name] for d in pair} == {"left": 4, "right": 5}
    assert left.pending() == right.pending() == []
    with pytest.raises(ControlError, match="step: nothing pending"):
        left.client.step()
    assert up(left) and up(right)
    check_tables_agree(left, right)
    for d in pair:
        events = d.client.events_since(first_seq[d.name])
        assert not any(isinstance(e, Retransmitted) or (isinstance(e, MessageEvent) and e.retransmission) for e in events)
        # while holding, the peer's clock stood still: every event of the run has one time
        times = {e.time for e in events if isinstance(e, MessageEvent)}
        assert len(times) == 1, times


def test_hold_off_sends_what_is_held_and_release_all(pair: tuple[Daemon, Daemon]) -> None:
    left, right = pair
    clean(pair)
    for d in pair:
        d.client.hold(True)
    left.client.initiate("site")
    assert left.client.hold(False)["released"] == 1  # MM1 goes out, left no longer holds
    wait_until(lambda: len(right.pending()) == 1, what="MM2 held at right")
    assert right.client.release_all() == 1
    wait_until(lambda: len(right.pending()) == 1, what="MM4 held at right")
    assert right.pending()[0]["summary"] == EXPECTED[3][3]
    assert right.client.hold(False) == {"ok": True, "holding": False, "released": 1}
    wait_until(lambda: up(left) and up(right), what="both SAs up")
    check_tables_agree(left, right)


def test_event_stream_carries_every_message(pair: tuple[Daemon, Daemon], procs: Processes) -> None:
    left, right = pair
    subs = {d.name: PeerClient(d.control, d.events, timeout=TIMEOUT) for d in pair}
    procs.clients.extend(subs.values())
    # ZeroMQ's subscriptions take a moment: make events until both subscribers hear them
    deadline = time.monotonic() + TIMEOUT
    heard: set[str] = set()
    while heard != {"left", "right"}:
        assert time.monotonic() < deadline, "the subscribers never received an event"
        clean(pair)
        heard |= {name for name, s in subs.items() if s.next_event(0.1) is not None}
    clean(pair)
    for s in subs.values():
        while s.next_event(0.2) is not None:
            pass
    start = {d.name: d.client.status()["last_seq"] for d in pair}

    left.client.initiate("site")
    got: dict[str, list] = {"left": [], "right": []}

    def done(name: str) -> bool:
        return any(isinstance(e, SaEstablished) and e.sa.kind == "child" for e in got[name])

    deadline = time.monotonic() + TIMEOUT
    while not (done("left") and done("right")):
        assert time.monotonic() < deadline, "the exchange did not complete on the event stream"
        for name, s in subs.items():
            got[name].extend(s.events(timeout=0.05))

    for name, sent_by in (("left", "left"), ("right", "right")):
        sent = [(e.exchange, e.index, e.summary) for e in got[name] if isinstance(e, MessageEvent) and e.direction == "sent"]
        assert sent == [(x, i, s) for who, x, i, s in EXPECTED if who == sent_by]
        other = [(x, i, s) for who, x, i, s in EXPECTED if who != sent_by]
        recv = [(e.exchange, e.index, e.summary) for e in got[name] if isinstance(e, MessageEvent) and e.direction == "received"]
        assert recv == other
        # the stream is the history: same events, seq numbered without gaps
        seqs = [e.seq for e in got[name]]
        assert seqs == list(range(start[name] + 1, start[name] + 1 + len(seqs)))
        replay = subs[name].events_since(start[name])[: len(seqs)]
        assert [(e.kind, e.seq, e.describe()) for e in replay] == [(e.kind, e.seq, e.describe()) for e in got[name]]
        # a teaching daemon publishes derived keys unless run with --no-secrets
        keys = [e for e in got[name] if isinstance(e, KeyDerived)]
        assert keys and all(len(e.value) > 0 for e in keys)


def test_remote_session_drives_the_ikelab_widgets(pair: tuple[Daemon, Daemon], tmp_path: Path) -> None:
    pytest.importorskip("ipywidgets")
    from ipseclab.teaching.widgets import IkeLab

    left, right = pair
    clean(pair)
    session = RemoteLabSession(left.client, right.client, "site")
    lab = IkeLab(session=session)  # type: ignore[arg-type]
    assert [p.name for p in session.network.peers] == ["left", "right"]
    assert session.left.config.address == HOST and session.options.mode == "main"
    assert len(lab.diagram.rows.children) == 1
    assert not lab.stepper.next_button.disabled

    for n in range(1, 10):  # nine deliveries; the last (QM3) adds no arrow
        lab.stepper.next_button.click()
        assert len(lab.diagram.rows.children) == min(n + 1, 9)
    assert lab.diagram.arrow_labels() == [
        f"{'MM' if x == 'Main Mode' else 'QM'}{i}  {s}" for _, x, i, s in EXPECTED
    ]
    assert lab.stepper.next_button.disabled
    assert session.states() == {"left": "QM_IDLE", "right": "QM_IDLE"}
    assert set(session.quick_mode_states()["left"].values()) == {"QM_ESTABLISHED"}
    assert session.established() and session.explanation() == []
    assert "Established:</span> phase 1 and every Quick Mode are up" in lab.stepper.status.value
    assert lab.inspector.message is not None and lab.inspector.message.summary == "HDR*, HASH(3)"
    assert "SKEYID" in lab.key_panel.table.value
    check_tables_agree(left, right)
    lab.export_dir = str(tmp_path)
    pcap, keys = lab.export()  # the export tab, from the daemons' events (keys included)
    assert pcap.stat().st_size > 0 and (keys / "ikev1_decryption_table").read_text().strip()

    lab.stepper.start_button.click()  # back to start: terminate, re-initiate held
    assert len(lab.diagram.rows.children) == 1 and not session.established()
    lab.stepper.end_button.click()
    assert len(lab.diagram.rows.children) == 9 and session.established()

    # the policy editor loads new configurations into the daemons and explains the failure
    lab.policy.peer_forms[1][1][0].hash.value = "sha256"
    lab.policy.apply()
    assert right.client.config().isakmp_policies[0].hash == "sha256"
    assert "Hash algorithm offered does not match policy!" in lab.policy.result.value
    assert not session.established()
    lab.stepper.reset_button.click()  # the notebook's configuration again
    assert right.client.config().isakmp_policies[0].hash == "sha1"
    session.run_to_end()
    assert session.established()


def test_bad_requests_get_clear_errors_and_the_daemon_keeps_running(pair: tuple[Daemon, Daemon]) -> None:
    left, _ = pair
    clean(pair)
    c = left.client
    cases = [
        (b'{"cmd": "fly"}', ['unknown command "fly"', "status, config, load, initiate, hold"]),
        (b"{not json", ["not valid JSON"]),
        (b"\xff\xfe", ["not valid JSON"]),
        (b"[1, 2]", ['a request is a JSON object like {"cmd": "status"}']),
        (b"{}", ['the request has no "cmd"']),
        (b'{"cmd": 3}', ["unknown command 3"]),
        (b'{"cmd": "initiate"}', ['"initiate" needs "connection"', "site"]),
        (b'{"cmd": "initiate", "connection": "nowhere"}', ["no connection named 'nowhere'"]),
        (b'{"cmd": "initiate", "connection": 5}', ['"connection" must be']),
        (b'{"cmd": "hold"}', ['"hold" needs "on": true or false']),
        (b'{"cmd": "hold", "on": "yes"}', ['"on" must be true or false (got "yes")']),
        (b'{"cmd": "hold", "on": 1}', ['"on" must be true or false (got 1)']),
        (b'{"cmd": "step"}', ["nothing pending"]),
        (b'{"cmd": "step", "id": "one"}', ['"id" must be']),
        (b'{"cmd": "events", "since": "x"}', ['"since" must be an integer']),
        (b'{"cmd": "load"}', ['"load" needs "config"']),
        (b'{"cmd": "load", "config": "[peer"}', ["not valid TOML"]),
        (b'{"cmd": "load", "config": "[peer]\\nname = \\"x\\"\\nadress = \\"1.2.3.4\\""}', ["peer.adress: unknown key", "allowed keys: address"]),
    ]
    for body, words in cases:
        reply = c.send_raw(body)
        assert reply["ok"] is False, (body, reply)
        for w in words:
            assert w in reply["error"], (body, reply)
    # a step for an id that is not held
    c.hold(True)
    c.initiate("site")
    reply = c.request({"cmd": "step", "id": 999})
    assert not reply["ok"] and "no held datagram has id 999" in reply["error"]
    with pytest.raises(ControlError, match="initiate: peer left has no connection named 'x'"):
        c.initiate("x")
    clean(pair)
    assert c.status()["ok"] and left.proc.poll() is None
    assert c.events_since(10**9) == []


def test_no_secrets_and_shutdown(pair: tuple[Daemon, Daemon], procs: Processes, workdir: Path) -> None:
    """A third daemon with --no-secrets initiates to ``right``, masks its keys, and shuts down."""
    _, right = pair
    clean(pair)
    port, natt = free_udp_ports(2)
    masked = start_daemon(procs, workdir, "left2", port, natt, right.port, "--no-secrets")
    start = masked.client.status()["last_seq"]
    assert masked.client.status()["secrets"] is False
    text = masked.client.config_text()
    assert "psk" not in text.split("[[", 1)[0] and "daemon-test-psk" not in text
    masked.client.initiate("site")
    wait_until(lambda: up(masked) and up(right), what="left2 and right up")
    keys = [e for e in masked.client.event_dicts_since(start) if e["kind"] == "key"]
    assert keys and all(e["value"] == "<secret>" for e in keys)
    right_keys = [e for e in right.client.event_dicts_since(0) if e["kind"] == "key"]
    assert right_keys and all(isinstance(e["value"], dict) and e["value"]["hex"] for e in right_keys)

    assert masked.client.shutdown() == {"ok": True, "bye": True}
    assert masked.proc.wait(timeout=TIMEOUT) == 0
    assert not Path(masked.control.removeprefix("ipc://")).exists()
    with pytest.raises(ControlError, match="no reply from the daemon"):
        masked.client.request({"cmd": "status"}, timeout=0.2)
    clean(pair)


def test_hold_flag_and_sigterm(pair: tuple[Daemon, Daemon], procs: Processes, workdir: Path) -> None:
    _, right = pair
    port, natt = free_udp_ports(2)
    d = start_daemon(procs, workdir, "left3", port, natt, right.port, "--hold", "--seed", "7")
    assert d.client.status()["holding"] is True
    os.kill(d.proc.pid, signal.SIGTERM)
    assert d.proc.wait(timeout=TIMEOUT) == 0
    assert "ipseclab peer left3: IKE on 127.0.0.1" in d.log_text() and "holding" in d.log_text()


def test_bad_config_and_taken_port_exit_2_with_plain_words(pair: tuple[Daemon, Daemon], procs: Processes, workdir: Path) -> None:
    left, _ = pair
    bad, log, _, _ = spawn(procs, workdir, "bad", '[peer]\nname = "bad"\naddress = "127.0.0.1"\nport = "x"\n')
    assert bad.wait(timeout=TIMEOUT) == 2
    text = log.read_text()
    assert "ipseclab: peer.port: must be an integer from 1 to 65535" in text and "Traceback" not in text

    taken, log, _, _ = spawn(procs, workdir, "taken", config_text("taken", left.port, free_udp_ports(1)[0], 9))
    assert taken.wait(timeout=TIMEOUT) == 2
    text = log.read_text()
    assert f"cannot bind UDP 127.0.0.1 ports {left.port}" in text and "Traceback" not in text


def test_hold_stops_the_peer_clock_and_timers_keep_their_remaining_time() -> None:
    """In-process: a peer initiating towards nobody, held for 0.5 s with a 0.3 s retransmission
    timeout, does not retransmit while held; after hold off the timer fires with its remaining
    time on the peer's clock, which did not count the held half second."""
    import asyncio

    from ipseclab.peer import Peer
    from ipseclab.runtime.config_toml import parse_peer_config
    from ipseclab.runtime.daemon import HoldingRunner

    port, natt, dead = free_udp_ports(3)
    cfg = parse_peer_config(config_text("left", port, natt, dead).replace("retransmit_timeout = 0.5", "retransmit_timeout = 0.3"))

    async def run() -> None:
        runner = HoldingRunner(Peer(cfg), host=HOST)
        events: list = []
        runner.listeners.append(events.append)
        await runner.start()
        try:
            runner.set_hold(True)
            real_start = time.monotonic()
            runner.initiate("site")
            await asyncio.sleep(0.5)
            assert len(runner.held) == 1 and not any(isinstance(e, Retransmitted) for e in events)
            assert [h.datagram for h in runner.set_hold(False)] and not runner.held
            deadline = time.monotonic() + TIMEOUT
            while not any(isinstance(e, Retransmitted) for e in events):
                assert time.monotonic() < deadline, "no retransmission after hold off"
                await asyncio.sleep(0.01)
            sent = [e for e in events if isinstance(e, MessageEvent) and e.direction == "sent"]
            assert [e.retransmission for e in sent] == [False, True]
            # the full timeout on the peer's clock, which did not count the held 0.5 s
            assert 0.3 <= sent[1].time - sent[0].time < 0.75
            assert time.monotonic() - real_start >= 0.8
        finally:
            await runner.close()

    asyncio.run(asyncio.wait_for(run(), TIMEOUT + 5))
