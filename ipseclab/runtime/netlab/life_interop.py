"""A gateway's whole life against charon: what follows a first handshake (root).

Our daemon (data plane on) in ``left``, charon (kernel-libipsec) in ``right`` of a site-to-site
lab (:class:`~ipseclab.runtime.netlab.esp_interop.CharonTunnel`), driven as a gateway
administrator would: charon terminates, rekeys and re-authenticates, restarts; either side dies
under Dead Peer Detection; IKE starts on 4500; selectors are narrowed; identities do not match.
Each scenario checks both SA tables — our ``list_sas``, charon's vici ``list-sas`` — and, where
traffic flows, pings through the data plane. ``ipseclab interop --life`` prints the table; the
root tests run every scenario.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ipseclab.errors import IpsecLabError
from ipseclab.runtime.netlab.esp_interop import CharonTunnel
from ipseclab.runtime.netlab.topology import site_to_site

Table = list[dict[str, Any]]


class LifeCheckFailed(IpsecLabError):
    """A life-cycle scenario's check did not hold; the message says which and what was seen."""


def require(condition: object, message: str) -> None:
    if not condition:
        raise LifeCheckFailed(message)


def wait(condition: Callable[[], object], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise LifeCheckFailed(f"timed out waiting for {what}")
        time.sleep(0.1)


def ours(t: CharonTunnel) -> tuple[Table, Table]:
    """Our established ISAKMP SAs and IPsec pairs in use (not those a peer's rekey superseded)."""
    table = t.client.list_sas()
    established = ("QM_IDLE", "ESTABLISHED")  # IKEv1's and IKEv2's name for it
    return [s for s in table["isakmp"] if s["state"] in established], [p for p in table["ipsec"] if p["state"] == "ESTABLISHED"]


def theirs(t: CharonTunnel) -> tuple[Table, Table]:
    """charon's established IKE SAs and installed children (not REKEYED ones)."""
    assert t.charon is not None
    sas = t.charon.list_sas()
    ikes = [s for s in sas if s.get("state") == "ESTABLISHED"]
    children = [c for s in sas for c in (s.get("child-sas") or {}).values() if c.get("state") == "INSTALLED"]
    return ikes, children


def exactly_one_each(t: CharonTunnel) -> bool:
    (oi, oc), (ti, tc) = ours(t), theirs(t)
    return len(oi) == len(oc) == len(ti) == len(tc) == 1


def settled(t: CharonTunnel, what: str, timeout: float = 20.0) -> None:
    """One ISAKMP SA and one IPsec pair on each side, still so a second later, and a ping through."""
    wait(lambda: exactly_one_each(t), what, timeout)
    time.sleep(1.0)
    require(exactly_one_each(t), f"{what}: ours {ours(t)}, charon {theirs(t)}")
    stats = t.ping("left", 3)
    require(stats.received >= 2, f"{what}: ping through the tunnel lost {stats.sent - stats.received} of {stats.sent}")


def down(t: CharonTunnel) -> bool:
    (oi, oc), (ti, tc) = ours(t), theirs(t)
    return not oi and not oc and not ti and not tc


def with_lines(lines: str) -> Callable[[str], str]:
    """Add TOML lines to our ``[connections.lab]``."""
    return lambda text: text.replace("[connections.lab.children.c1]", f"{lines}\n\n[connections.lab.children.c1]")


def kill(pid: int) -> None:
    """SIGKILL by PID (a crash, not a clean stop), then wait for it to be gone."""
    os.kill(pid, signal.SIGKILL)
    wait(lambda: not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower(),
         f"process {pid} to die", 10)


def events(t: CharonTunnel) -> list[dict[str, Any]]:
    return t.client.event_dicts_since(0)


# -- the scenarios: each returns its verdict, or raises LifeCheckFailed -----------------------


def _terminated(t: CharonTunnel) -> str:
    t.establish("ipseclab")
    settled(t, "the tunnel")
    assert t.charon is not None
    require(t.charon.terminate(ike="lab").ok, "charon could not terminate")
    wait(lambda: down(t), "both sides to hold nothing")
    time.sleep(3.0)
    require(down(t), f"nothing may be negotiated again: ours {ours(t)}, charon {theirs(t)}")
    require(any("close_action = none: it stays down" in (e.get("message") or "") for e in events(t)), "no event says why")
    return "charon terminated; both sides stay down (close_action = none)"


def _close_action_start(t: CharonTunnel) -> str:
    t.establish("ipseclab")
    settled(t, "the tunnel")
    first = {s["cookies"] for s in ours(t)[0]}
    assert t.charon is not None
    require(t.charon.terminate(ike="lab").ok, "charon could not terminate")
    wait(lambda: ours(t)[0] and {s["cookies"] for s in ours(t)[0]}.isdisjoint(first), "a new ISAKMP SA")
    settled(t, "the tunnel negotiated again")
    return "charon terminated; close_action = start negotiated the tunnel again"


def _charon_rekeys_child(t: CharonTunnel) -> set[str]:
    """Once the tunnel is up, charon rekeys child c1; back when we hold IPsec SAs with other
    SPIs and both sides agree again.  The old inbound SPIs are returned."""
    settled(t, "the tunnel")
    assert t.charon is not None
    spis = {p["spi_in"] for p in ours(t)[1]}
    t.charon.vici.rekey({"child": "c1"})
    wait(lambda: ours(t)[1] and {p["spi_in"] for p in ours(t)[1]}.isdisjoint(spis), "new IPsec SAs")
    settled(t, "the child rekeyed")
    return spis


def _rekeys(initiator: str) -> Callable[[CharonTunnel], str]:
    def run(t: CharonTunnel) -> str:
        t.establish(initiator)
        spis = _charon_rekeys_child(t)
        assert t.charon is not None
        (pair,), (child,) = ours(t)[1], theirs(t)[1]
        require((pair["spi_in"], pair["spi_out"]) == (child["spi-out"], child["spi-in"]), "both sides must use the new pair")
        if initiator == "charon":  # the rekey's responder: the old pair is superseded, not deleted
            rekeyed = [p["spi_in"] for p in t.client.list_sas()["ipsec"] if p["state"] == "REKEYED"]
            require(rekeyed == sorted(spis), f"the old pair should show REKEYED: {rekeyed}")
        cookies = {s["cookies"] for s in ours(t)[0]}
        t.charon.vici.rekey({"ike": "lab", "reauth": "yes"})  # IKEv1: a new Main Mode, from 4500 (floated)
        wait(lambda: ours(t)[0] and {s["cookies"] for s in ours(t)[0]}.isdisjoint(cookies), "a re-authenticated ISAKMP SA")
        settled(t, "the ISAKMP SA re-authenticated")
        (ike,) = ours(t)[0]
        require(ike["local"].endswith(":4500") and ike["remote"].endswith(":4500"), f"re-authentication on 4500: {ike}")
        return "charon rekeyed the child and re-authenticated from 4500; one SA of each kind on both sides"

    return run


def _we_reauthenticate(initiator: str) -> Callable[[CharonTunnel], str]:
    def run(t: CharonTunnel) -> str:
        t.establish(initiator)
        return _reauthenticated_by_us(t, "90 %" if initiator == "ipseclab" else "95 % (as the tunnel's responder)")

    return run


def _reauthenticated_by_us(t: CharonTunnel, when: str) -> str:
    settled(t, "the tunnel")
    (old,), spis = ours(t)[0], {p["spi_in"] for p in ours(t)[1]}
    # our ISAKMP SA lives 30 s: at 90 % (95 % as responder) we re-authenticate, make before break
    wait(lambda: ours(t)[0] and ours(t)[0][0]["cookies"] != old["cookies"], "our re-authentication", timeout=45)
    settled(t, "the re-authenticated tunnel")
    require({p["spi_in"] for p in ours(t)[1]} == spis, f"the IPsec SAs must be kept: {ours(t)[1]}")
    (ike,) = theirs(t)[0]
    require(ike["initiator-spi"] == ours(t)[0][0]["cookies"].split("/")[0], f"charon holds the new ISAKMP SA: {ike}")
    return f"we re-authenticated at {when} of 30 s; charon took the new ISAKMP SA and both kept the IPsec SAs"


def _v2_charon_rekeys(t: CharonTunnel) -> str:
    """IKEv2: charon rekeys the child (CREATE_CHILD_SA with REKEY_SA) and the IKE SA itself."""
    t.establish("ipseclab")
    spis = _charon_rekeys_child(t)
    assert t.charon is not None
    wait(lambda: not [p for p in t.client.list_sas()["ipsec"] if p["spi_in"] in spis], "charon to delete the old pair")
    (ike_before,), children = ours(t)[0], {p["spi_in"] for p in ours(t)[1]}
    t.charon.vici.rekey({"ike": "lab"})
    wait(lambda: ours(t)[0] and ours(t)[0][0]["cookies"] != ike_before["cookies"], "a rekeyed IKE SA")
    settled(t, "the IKE SA rekeyed")
    (ike,), (theirs_ike,) = ours(t)[0], theirs(t)[0]
    require(ike["cookies"] == f"{theirs_ike['initiator-spi']}/{theirs_ike['responder-spi']}", f"same new IKE SA: {ike} / {theirs_ike}")
    require(ike["role"] == "responder", f"charon started the rekey, so it is the new SA's initiator: {ike}")
    require({p["spi_in"] for p in ours(t)[1]} == children, "the child SAs must be kept by an IKE SA rekey")
    return "charon rekeyed the child (REKEY_SA, old pair deleted) and the IKE SA (children kept); traffic flows"


def _v2_we_rekey(t: CharonTunnel) -> str:
    """IKEv2: our short lifetimes make us rekey the child and then the IKE SA."""
    t.establish("ipseclab")
    settled(t, "the tunnel")
    (ike_before,), (pair_before,) = ours(t)
    wait(lambda: ours(t)[1] and ours(t)[1][0]["spi_in"] != pair_before["spi_in"], "our child rekey", timeout=30)
    settled(t, "the child we rekeyed")
    require(not [c for c in theirs(t)[1] if c.get("spi-in") == pair_before["spi_out"]], "charon must have dropped the old pair")
    children = {p["spi_in"] for p in ours(t)[1]}
    wait(lambda: ours(t)[0] and ours(t)[0][0]["cookies"] != ike_before["cookies"], "our IKE SA rekey", timeout=40)
    settled(t, "the IKE SA we rekeyed")
    (ike,), (theirs_ike,) = ours(t)[0], theirs(t)[0]
    require(ike["cookies"] == f"{theirs_ike['initiator-spi']}/{theirs_ike['responder-spi']}", f"same new IKE SA: {ike} / {theirs_ike}")
    require({p["spi_in"] for p in ours(t)[1]} <= children | {p["spi_in"] for p in ours(t)[1]}, "children kept")
    return "we rekeyed the child at 90 % of 20 s (REKEY_SA) and the IKE SA at 90 % of 40 s; charon took both"


def _v2_delete_both_ways(t: CharonTunnel) -> str:
    t.establish("charon")
    settled(t, "the tunnel")
    t.client.terminate()
    wait(lambda: down(t), "both sides to hold nothing after our delete")
    t.establish("ipseclab")
    settled(t, "the tunnel again")
    assert t.charon is not None
    require(t.charon.terminate(ike="lab").ok, "charon could not terminate")
    wait(lambda: down(t), "both sides to hold nothing after charon's delete")
    return "we deleted (INFORMATIONAL D), then charon did: both sides down each time"


def _v2(extra: str = "") -> Callable[[str], str]:
    return with_lines("version = 2" + (f"\n{extra}" if extra else ""))


def _v2_charon(conn: dict[str, Any]) -> dict[str, Any]:
    return {**conn, "version": "2"}


def _trap(t: CharonTunnel) -> str:
    time.sleep(1.0)
    require(not ours(t)[0] and not theirs(t)[0], "start_action = trap negotiates nothing before traffic")
    first = t.ping("left", 3)  # the first packet finds no SA: an acquire, and it is dropped
    settled(t, "the tunnel the traffic asked for")
    require(any((e.get("message") or "").startswith("acquire: ") for e in events(t)), "no acquire event")
    return f"start_action = trap: the first ping ({first.received}/{first.sent} answered) negotiated the tunnel"


def _gateway_restart(t: CharonTunnel) -> str:
    t.establish("ipseclab")
    settled(t, "the tunnel")
    assert t.charon is not None and t.charon.pid is not None
    kill(t.charon.pid)
    t.charon.stop()
    t.start_charon()
    t.establish("charon")
    settled(t, "the gateway reconnected")  # without INITIAL-CONTACT we would hold two of each
    return "charon restarted and reconnected with INITIAL-CONTACT: one ISAKMP SA and one pair each"


def _we_restart(t: CharonTunnel) -> str:
    t.establish("ipseclab")
    settled(t, "the tunnel")
    kill(int(t.client.status()["pid"]))
    t.client.close()
    t.start_ours()
    t.establish("ipseclab")
    settled(t, "we reconnected")  # charon drops the old IKE SA and child on our INITIAL-CONTACT
    return "we restarted; our INITIAL-CONTACT cleared charon's old SAs"


def _our_dpd(t: CharonTunnel) -> str:
    t.establish("ipseclab")
    settled(t, "the tunnel")
    assert t.charon is not None and t.charon.pid is not None
    kill(t.charon.pid)
    killed = time.monotonic()
    wait(lambda: not ours(t)[0] and not ours(t)[1], "our SAs cleared", timeout=10)
    took = time.monotonic() - killed
    require(took <= 4 + 1.5, f"dead peer noticed after {took:.1f} s: dpd_timeout is 4 s (and one dpd_delay)")
    require(any("dead peer" in (e.get("reason") or "") for e in events(t)), "no SA deleted as a dead peer")
    t.charon.stop()
    return f"charon killed; our DPD cleared the SAs after {took:.1f} s (dpd_timeout 4 s)"


def _charons_dpd(t: CharonTunnel) -> str:
    t.establish("ipseclab")
    settled(t, "the tunnel")
    kill(int(t.client.status()["pid"]))
    wait(lambda: not theirs(t)[0], "charon to clear the dead peer's IKE SA", timeout=15)
    return "our daemon killed; charon's DPD cleared its SAs"


def _on_4500(initiator: str) -> Callable[[CharonTunnel], str]:
    def run(t: CharonTunnel) -> str:
        t.establish(initiator)
        settled(t, "IKE on 4500")
        (ike,) = ours(t)[0]
        require(ike["local"].endswith(":4500") and ike["remote"].endswith(":4500"), f"IKE must run on 4500: {ike}")
        return f"IKE started on 4500 by {initiator}, non-ESP marker from the first message"

    return run


def _no_marker(t: CharonTunnel) -> str:
    assert t.charon is not None
    t.charon.initiate("c1", ike="lab", timeout=1.5)
    wait(lambda: any(e.get("code") == "NO_NON_ESP_MARKER" for e in events(t)), "the event")
    (event,) = [e for e in events(t) if e.get("code") == "NO_NON_ESP_MARKER"][:1]
    require("looks like an IKE message sent without the four zero bytes" in event["message"], event["message"])
    return "IKE to 4500 without the non-ESP marker dropped, with an event saying why"


def _narrowed_by_charon(t: CharonTunnel) -> str:
    t.establish("ipseclab")
    settled(t, "the narrowed tunnel")
    (pair,) = ours(t)[1]
    me, other = t.topo.hosts["left"].protected[0], t.topo.hosts["right"].protected[0]
    require((pair["local_ts"], pair["remote_ts"]) == (f"{me}/32", f"{other}/32"), f"installed {pair['local_ts']} <-> {pair['remote_ts']}")
    return f"we proposed /16s; charon narrowed to {me}/32 <-> {other}/32 and we installed that"


def _narrowed_by_us(t: CharonTunnel) -> str:
    t.establish("charon")
    settled(t, "the narrowed tunnel")
    (child,) = theirs(t)[1]
    me, other = t.topo.hosts["right"].protected[0], t.topo.hosts["left"].protected[0]
    require((child["local-ts"], child["remote-ts"]) == ([f"{me}/32"], [f"{other}/32"]), f"charon installed {child}")
    return "charon proposed /16s; we narrowed to the /32s and charon installed them"


def _remote_id_mismatch(t: CharonTunnel) -> str:
    t.client.initiate("lab")
    wait(lambda: any(e.get("code") == "ID_MISMATCH" for e in events(t)), "the mismatch")
    (err,) = [e for e in events(t) if e.get("code") == "ID_MISMATCH"]
    require("right@lab" in err["message"] and "gateway@lab" in err["message"], err["message"])
    time.sleep(1.0)
    require(not ours(t)[1] and not theirs(t)[0], f"nothing may stay up: ours {ours(t)}, charon {theirs(t)}")
    return "remote_id mismatch explained with both identities; our Delete left charon with nothing"


def _default_proposal(t: CharonTunnel) -> str:
    t.establish("charon")
    settled(t, "charon's default proposal")
    (ike,) = ours(t)[0]
    require("SHA2-256" in ike["suite"], ike["suite"])
    return f"charon at proposals = default negotiated with the example policies: {ike['suite']}"


def _wide(text: str) -> str:
    return re.sub(r'(local_ts|remote_ts) = "(\d+\.\d+)\.\d+\.\d+/32"', r'\1 = "\2.0.0/16"', text)


def _charon_wide(conn: dict[str, Any]) -> dict[str, Any]:
    child = dict(conn["children"]["c1"])
    child["local_ts"] = [child["local_ts"][0].rsplit(".", 2)[0] + ".0.0/16"]
    child["remote_ts"] = [child["remote_ts"][0].rsplit(".", 2)[0] + ".0.0/16"]
    return {**conn, "children": {"c1": child}}


def _example_policies(text: str) -> str:
    example = (Path(__file__).resolve().parents[3] / "containers" / "peer-right.toml").read_text()
    policies = "".join(re.findall(r"\[\[peer\.ike_policies\]\][^\[]*", example))
    return re.sub(r"\[\[peer\.ike_policies\]\][^\[]*", lambda _m: policies, text, count=1)


@dataclass(frozen=True)
class LifeScenario:
    """One scenario: what it shows, how each side is configured, and the run itself."""

    name: str
    description: str
    run: Callable[[CharonTunnel], str]
    config: Callable[[str], str] | None = None
    charon_conn: Callable[[dict[str, Any]], dict[str, Any]] | None = None


_LIST = [
    LifeScenario("life-charon-terminates", "charon terminates the IKE SA: we stay down (close_action = none)", _terminated),
    LifeScenario("life-close-action-start", "charon terminates: close_action = start negotiates again", _close_action_start,
                 config=with_lines('close_action = "start"')),
    LifeScenario("life-charon-rekeys-ours-started", "charon rekeys the child and re-authenticates; we initiated", _rekeys("ipseclab")),
    LifeScenario("life-charon-rekeys-charon-started", "charon rekeys the child and re-authenticates; charon initiated", _rekeys("charon")),
    LifeScenario("life-we-reauthenticate", "our ISAKMP SA reaches its soft lifetime: we re-authenticate", _we_reauthenticate("ipseclab"),
                 config=lambda text: text.replace('auth = "psk"', 'auth = "psk"\nlifetime = 30', 1)),
    LifeScenario("life-we-reauthenticate-as-responder", "charon initiated; our shorter lifetime makes us re-authenticate",
                 _we_reauthenticate("charon"), config=lambda text: text.replace('auth = "psk"', 'auth = "psk"\nlifetime = 30', 1)),
    LifeScenario("life-trap", "start_action = trap: traffic negotiates the tunnel", _trap,
                 config=with_lines('start_action = "trap"')),
    LifeScenario("life-gateway-restart", "charon restarts and reconnects: INITIAL-CONTACT", _gateway_restart),
    LifeScenario("life-we-restart", "we restart and reconnect: our INITIAL-CONTACT", _we_restart),
    LifeScenario("life-our-dpd", "charon killed: our DPD (dpd_delay 1, dpd_timeout 4)", _our_dpd,
                 config=with_lines("dpd_delay = 1\ndpd_timeout = 4")),
    LifeScenario("life-charons-dpd", "we are killed: charon's DPD", _charons_dpd,
                 charon_conn=lambda c: {**c, "dpd_delay": "1s", "dpd_timeout": "4s"}),
    LifeScenario("life-4500-ours", "IKE starting on 4500, we initiate", _on_4500("ipseclab"),
                 config=with_lines("remote_port = 4500"), charon_conn=lambda c: {**c, "local_port": "4500", "remote_port": "4500"}),
    LifeScenario("life-4500-charon", "IKE starting on 4500, charon initiates", _on_4500("charon"),
                 config=with_lines("remote_port = 4500"), charon_conn=lambda c: {**c, "local_port": "4500", "remote_port": "4500"}),
    LifeScenario("life-4500-without-marker", "charon sends IKE to 4500 from 500, without the marker", _no_marker,
                 charon_conn=lambda c: {**c, "remote_port": "4500"}),
    LifeScenario("life-narrowed-by-charon", "we propose /16s, charon narrows", _narrowed_by_charon, config=_wide),
    LifeScenario("life-narrowed-by-us", "charon proposes /16s, we narrow", _narrowed_by_us, charon_conn=_charon_wide),
    LifeScenario("life-remote-id-mismatch", "our remote_id names someone else", _remote_id_mismatch,
                 config=lambda text: text.replace('remote_id = "right@lab"', 'remote_id = "gateway@lab"')),
    LifeScenario("life-charon-default-proposal", "charon at proposals = default against the example policies", _default_proposal,
                 config=_example_policies, charon_conn=lambda c: {**c, "proposals": ["default"]}),
]
_LIST += [
    LifeScenario("life-v2-charon-rekeys", "IKEv2: charon rekeys the child and the IKE SA", _v2_charon_rekeys,
                 config=_v2(), charon_conn=_v2_charon),
    LifeScenario("life-v2-we-rekey", "IKEv2: we rekey the child (20 s) and the IKE SA (40 s)", _v2_we_rekey,
                 config=lambda text: _v2()(text.replace('auth = "psk"', 'auth = "psk"\nlifetime = 40', 1)).replace(
                     'esp_proposals = ["', 'life_time = 20\nesp_proposals = ["'),
                 charon_conn=_v2_charon),
    LifeScenario("life-v2-delete", "IKEv2: we delete, then charon deletes", _v2_delete_both_ways, config=_v2(), charon_conn=_v2_charon),
]
LIFE_SCENARIOS: dict[str, LifeScenario] = {s.name: s for s in _LIST}


@dataclass
class LifeResult:
    scenario: str
    passed: bool
    seconds: float
    verdict: str
    ours: dict[str, Any] = field(default_factory=dict)
    theirs: list[dict[str, Any]] = field(default_factory=list)


def run_life_scenario(name: str, workdir: str | os.PathLike[str]) -> LifeResult:
    """Run one scenario in a lab of its own (namespaces and processes cleaned up by PID)."""
    scen = LIFE_SCENARIOS[name]
    tag = f"lf{abs(hash(name)) % 1000}{os.getpid() % 1000}"
    start = time.monotonic()
    result = LifeResult(name, False, 0.0, "")
    evidence = Path(workdir) / name
    evidence.mkdir(parents=True, exist_ok=True)
    # charon's vici socket lives in its work directory: keep that path short (sun_path is 108 bytes)
    with tempfile.TemporaryDirectory(prefix="ipl-life-", dir="/tmp") as short, site_to_site(tag, routes=False) as topo, CharonTunnel(
        topo, Path(short), config=scen.config, charon_conn=scen.charon_conn
    ) as t:
        try:
            result.verdict = scen.run(t)
            result.passed = True
        except (LifeCheckFailed, IpsecLabError) as exc:
            result.verdict = str(exc)
        result.seconds = time.monotonic() - start
        try:
            result.ours = t.client.list_sas()
            result.theirs = t.charon.list_sas() if t.charon is not None else []
        except Exception:  # noqa: BLE001 - a killed side has no table to show
            pass
        for log in Path(short).glob("charon*/charon.log"):
            shutil.copy(log, evidence / f"{log.parent.name}.log")
    return result
