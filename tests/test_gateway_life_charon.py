"""A gateway's whole life against charon (strongSwan 5.9, kernel-libipsec) in namespaces (root).

Our daemon in ``left``, charon in ``right``, as a gateway administrator would drive them:
charon terminates (we stay down unless ``close_action = start``), rekeys the child and
re-authenticates the ISAKMP SA (from UDP 4500: libipsec always encapsulates), restarts and
reconnects with INITIAL-CONTACT — and so do we —, Dead Peer Detection both ways with the
other side killed, IKE that starts on 4500, narrowing both ways and a remote-ID mismatch.
Each asserts both SA tables (our ``list_sas``, charon's vici ``list-sas``) and, where traffic
flows, a ping through the data plane.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.root


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces, TUN, raw sockets); CI runs as root"
    from ipseclab.runtime.netlab.charon import Charon

    return Charon.available()


_REASON = _why_not()
if _REASON:
    print(f"skipping the charon life-cycle tests: {_REASON}", file=sys.stderr)
    pytest.skip(_REASON, allow_module_level=True)

from ipseclab.runtime.netlab.esp_interop import CharonTunnel  # noqa: E402
from ipseclab.runtime.netlab.topology import site_to_site  # noqa: E402


def _wait(condition: Callable[[], object], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _ours(t: CharonTunnel) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Our established ISAKMP SAs and IPsec pairs in use (not those a peer's rekey superseded)."""
    table = t.client.list_sas()
    return [s for s in table["isakmp"] if s["state"] == "QM_IDLE"], [p for p in table["ipsec"] if p["state"] == "ESTABLISHED"]


def _theirs(t: CharonTunnel) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """charon's established IKE SAs and installed children (not REKEYED ones)."""
    assert t.charon is not None
    ikes = [s for s in t.charon.list_sas() if s.get("state") == "ESTABLISHED"]
    children = [c for s in t.charon.list_sas() for c in (s.get("child-sas") or {}).values() if c.get("state") == "INSTALLED"]
    return ikes, children


def _exactly_one_each(t: CharonTunnel) -> bool:
    ours, theirs = _ours(t), _theirs(t)
    return len(ours[0]) == len(ours[1]) == len(theirs[0]) == len(theirs[1]) == 1


def _settled(t: CharonTunnel, what: str, timeout: float = 20.0) -> None:
    """One ISAKMP SA and one IPsec pair on each side, still so a second later, and a ping through."""
    _wait(lambda: _exactly_one_each(t), what, timeout)
    time.sleep(1.0)
    assert _exactly_one_each(t), f"{what}: ours {_ours(t)}, charon {_theirs(t)}"
    stats = t.ping("left", 3)
    assert stats.received >= 2, stats.lines


def _down(t: CharonTunnel) -> bool:
    ours, theirs = _ours(t), _theirs(t)
    return not ours[0] and not ours[1] and not theirs[0] and not theirs[1]


@contextmanager
def _tunnel(tmp_path: Path, name: str, **kw: Any) -> Iterator[CharonTunnel]:
    with site_to_site(f"gl{name}{os.getpid() % 10000}", routes=False) as topo, CharonTunnel(topo, tmp_path / "work", **kw) as t:
        yield t


def _with(lines: str) -> Callable[[str], str]:
    """Add TOML lines to our ``[connections.lab]``."""
    return lambda text: text.replace("[connections.lab.children.c1]", f"{lines}\n\n[connections.lab.children.c1]")


def _kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    _wait(lambda: not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower(),
          f"process {pid} to die", 10)


def test_charon_terminates_and_we_stay_down(tmp_path: Path) -> None:
    """close_action = none (strongSwan's default): the gateway's administrator takes the tunnel down."""
    with _tunnel(tmp_path, "t") as t:
        t.establish("ipseclab")
        _settled(t, "the tunnel")
        assert t.charon is not None and t.charon.terminate(ike="lab").ok
        _wait(lambda: _down(t), "both sides to hold nothing")
        time.sleep(3.0)
        assert _down(t), f"nothing negotiated again: ours {_ours(t)}, charon {_theirs(t)}"
        events = t.client.event_dicts_since(0)
        assert any("close_action = none: it stays down" in (e.get("message") or "") for e in events)


def test_close_action_start_negotiates_again(tmp_path: Path) -> None:
    with _tunnel(tmp_path, "s", config=_with('close_action = "start"')) as t:
        t.establish("ipseclab")
        _settled(t, "the tunnel")
        first = {s["cookies"] for s in _ours(t)[0]}
        assert t.charon is not None and t.charon.terminate(ike="lab").ok
        _wait(lambda: _ours(t)[0] and {s["cookies"] for s in _ours(t)[0]}.isdisjoint(first), "a new ISAKMP SA")
        _settled(t, "the tunnel negotiated again")


@pytest.mark.parametrize("initiator", ["ipseclab", "charon"])
def test_charon_rekeys_the_child_and_reauthenticates_the_isakmp_sa(tmp_path: Path, initiator: str) -> None:
    with _tunnel(tmp_path, "r" + initiator[0]) as t:
        t.establish(initiator)
        _settled(t, "the tunnel")
        assert t.charon is not None
        spis = {p["spi_in"] for p in _ours(t)[1]}
        t.charon.vici.rekey({"child": "c1"})
        _wait(lambda: _ours(t)[1] and {p["spi_in"] for p in _ours(t)[1]}.isdisjoint(spis), "new IPsec SAs")
        _settled(t, "the child rekeyed")
        (pair,) = _ours(t)[1]
        (child,) = _theirs(t)[1]
        assert (pair["spi_in"], pair["spi_out"]) == (child["spi-out"], child["spi-in"]), "both use the new pair"
        if initiator == "charon":  # the rekey's responder: the old pair is superseded, not deleted
            assert [p["spi_in"] for p in t.client.list_sas()["ipsec"] if p["state"] == "REKEYED"] == sorted(spis)
        cookies = {s["cookies"] for s in _ours(t)[0]}
        t.charon.vici.rekey({"ike": "lab", "reauth": "yes"})  # IKEv1: a new Main Mode, from 4500 (floated)
        _wait(lambda: _ours(t)[0] and {s["cookies"] for s in _ours(t)[0]}.isdisjoint(cookies), "a re-authenticated ISAKMP SA")
        _settled(t, "the ISAKMP SA re-authenticated")
        (ike,) = _ours(t)[0]
        assert ike["local"].endswith(":4500") and ike["remote"].endswith(":4500")


def test_a_restarted_gateway_says_initial_contact_and_we_keep_one_sa_per_child(tmp_path: Path) -> None:
    with _tunnel(tmp_path, "g") as t:
        t.establish("ipseclab")
        _settled(t, "the tunnel")
        assert t.charon is not None and t.charon.pid is not None
        _kill(t.charon.pid)
        t.charon.stop()
        t.start_charon()
        t.establish("charon")
        _settled(t, "the gateway reconnected")  # without INITIAL-CONTACT we would hold two of each


def test_when_we_restart_our_initial_contact_clears_charons_old_sas(tmp_path: Path) -> None:
    with _tunnel(tmp_path, "i") as t:
        t.establish("ipseclab")
        _settled(t, "the tunnel")
        _kill(int(t.client.status()["pid"]))
        t.client.close()
        t.start_ours()
        t.establish("ipseclab")
        _settled(t, "we reconnected")  # charon drops the old IKE SA and child on our INITIAL-CONTACT


def test_dead_peer_detection_from_our_side(tmp_path: Path) -> None:
    with _tunnel(tmp_path, "d", config=_with("dpd_delay = 1\ndpd_timeout = 4")) as t:
        t.establish("ipseclab")
        _settled(t, "the tunnel")
        assert t.charon is not None and t.charon.pid is not None
        _kill(t.charon.pid)
        killed = time.monotonic()
        _wait(lambda: not _ours(t)[0] and not _ours(t)[1], "our SAs cleared", timeout=10)
        assert time.monotonic() - killed <= 4 + 1.5, "within dpd_timeout (and one dpd_delay)"
        events = t.client.event_dicts_since(0)
        assert any("dead peer" in (e.get("reason") or "") for e in events)
        t.charon.stop()


def test_charons_dead_peer_detection_clears_its_sas_when_we_die(tmp_path: Path) -> None:
    def dpd(conn: dict[str, Any]) -> dict[str, Any]:
        return {**conn, "dpd_delay": "1s", "dpd_timeout": "4s"}

    with _tunnel(tmp_path, "e", charon_conn=dpd) as t:
        t.establish("ipseclab")
        _settled(t, "the tunnel")
        _kill(int(t.client.status()["pid"]))
        _wait(lambda: not _theirs(t)[0], "charon to clear the dead peer's IKE SA", timeout=15)


@pytest.mark.parametrize("initiator", ["ipseclab", "charon"])
def test_ike_that_starts_on_4500(tmp_path: Path, initiator: str) -> None:
    def charon_4500(conn: dict[str, Any]) -> dict[str, Any]:
        return {**conn, "local_port": "4500", "remote_port": "4500"}  # from 4500: with the marker

    with _tunnel(tmp_path, "p" + initiator[0], config=_with("remote_port = 4500"), charon_conn=charon_4500) as t:
        t.establish(initiator)
        _settled(t, "IKE on 4500")
        (ike,) = _ours(t)[0]
        assert ike["local"].endswith(":4500") and ike["remote"].endswith(":4500")


def test_ike_to_4500_without_the_marker_is_reported_not_taken_for_esp(tmp_path: Path) -> None:
    """charon with remote_port = 4500 but its local port 500 sends IKE to 4500 without the
    non-ESP marker (RFC 3948 §2.2 requires it): we drop it and say why."""
    def charon_4500(conn: dict[str, Any]) -> dict[str, Any]:
        return {**conn, "remote_port": "4500"}

    with _tunnel(tmp_path, "k", charon_conn=charon_4500) as t:
        assert t.charon is not None
        t.charon.initiate("c1", ike="lab", timeout=1.5)
        _wait(lambda: any(e.get("code") == "NO_NON_ESP_MARKER" for e in t.client.event_dicts_since(0)), "the event")
        (event,) = [e for e in t.client.event_dicts_since(0) if e.get("code") == "NO_NON_ESP_MARKER"][:1]
        assert "looks like an IKE message sent without the four zero bytes" in event["message"]


def test_charon_narrows_what_we_propose_and_we_install_it(tmp_path: Path) -> None:
    def wide(text: str) -> str:
        import re

        return re.sub(r'(local_ts|remote_ts) = "(\d+\.\d+)\.\d+\.\d+/32"', r'\1 = "\2.0.0/16"', text)

    with _tunnel(tmp_path, "n", config=wide) as t:
        t.establish("ipseclab")
        _settled(t, "the narrowed tunnel")
        (pair,) = _ours(t)[1]
        me, other = t.topo.hosts["left"].protected[0], t.topo.hosts["right"].protected[0]
        assert (pair["local_ts"], pair["remote_ts"]) == (f"{me}/32", f"{other}/32")


def test_we_narrow_what_charon_proposes(tmp_path: Path) -> None:
    def wide(conn: dict[str, Any]) -> dict[str, Any]:
        child = dict(conn["children"]["c1"])
        child["local_ts"] = [child["local_ts"][0].rsplit(".", 2)[0] + ".0.0/16"]
        child["remote_ts"] = [child["remote_ts"][0].rsplit(".", 2)[0] + ".0.0/16"]
        return {**conn, "children": {"c1": child}}

    with _tunnel(tmp_path, "w", charon_conn=wide) as t:
        t.establish("charon")
        _settled(t, "the narrowed tunnel")
        (child,) = _theirs(t)[1]
        me, other = t.topo.hosts["right"].protected[0], t.topo.hosts["left"].protected[0]
        assert (child["local-ts"], child["remote-ts"]) == ([f"{me}/32"], [f"{other}/32"])


def test_a_remote_id_mismatch_is_explained_on_our_side(tmp_path: Path) -> None:
    def other_id(text: str) -> str:
        return text.replace('remote_id = "right@lab"', 'remote_id = "gateway@lab"')

    with _tunnel(tmp_path, "m", config=other_id) as t:
        t.client.initiate("lab")
        _wait(lambda: any(e.get("code") == "ID_MISMATCH" for e in t.client.event_dicts_since(0)), "the mismatch")
        (err,) = [e for e in t.client.event_dicts_since(0) if e.get("code") == "ID_MISMATCH"]
        assert "right@lab" in err["message"] and "gateway@lab" in err["message"]
        assert not _ours(t)[1] and not _theirs(t)[0]


def test_the_shipped_example_policies_accept_charons_default_proposal(tmp_path: Path) -> None:
    """A gateway left at ``proposals = default`` offers, in IKEv1, AES-CBC-128/SHA2-256/
    Curve25519 first (and an AEAD transform IKEv1 cannot use): the example configurations'
    policies take it."""
    import re

    example = (Path(__file__).resolve().parent.parent / "containers" / "peer-right.toml").read_text()
    policies = "".join(re.findall(r"\[\[peer\.ike_policies\]\][^\[]*", example))
    assert "curve25519" in policies

    def with_example_policies(text: str) -> str:
        return re.sub(r"\[\[peer\.ike_policies\]\][^\[]*", lambda _m: policies, text, count=1)

    def default(conn: dict[str, Any]) -> dict[str, Any]:
        return {**conn, "proposals": ["default"]}

    with _tunnel(tmp_path, "x", config=with_example_policies, charon_conn=default) as t:
        t.establish("charon")
        _settled(t, "charon's default proposal")
        (ike,) = _ours(t)[0]
        assert "SHA2-256" in ike["suite"] and ("31" in ike["suite"] or "25519" in ike["suite"]), ike["suite"]
