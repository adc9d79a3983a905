"""ipseclab against strongSwan's charon: named scenarios, run in a lab, judged on evidence.

One scenario = one fresh charon (in the ``right`` host of a :func:`site_to_site` lab) and one
ipseclab peer (``python -m ipseclab.runtime.netlab.runpeer`` in ``left``), a tcpdump capture of the
link, and afterwards a verdict from what both sides say::

    result = run_scenario("main-psk-to-charon", "/tmp/interop")
    print(result.summary)
    for check in result.checks: print(check.describe())

Scenarios named ``...-to-charon`` have ipseclab initiate; ``...-from-charon`` have charon
initiate (VICI ``initiate`` per child).  For an ``up`` scenario every check must hold:
charon's ``list-sas`` shows our cookies, algorithms and mirrored child SPIs, our Ka and ESP
keys equal those in charon's level-4 log, and tshark decrypts the capture (MM5/MM6 identities,
every Quick Mode, and one ESP-in-UDP ping charon sends through the tunnel) with nothing but
the key tables exported from *our* trace.  For a ``fail`` scenario nothing may come up and our
side must report the expected error (e.g. AUTHENTICATION_FAILED rather than a timeout), and a
rejecting responder must name the one attribute that differs.

Charon is restarted between scenarios (~40 ms) inside one lab when several run
(:func:`run_scenarios`).  Every process is stopped by PID, also on errors; the lab's ``down``
removes the namespaces.  All secrets here are throw-away: charon's log prints them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ipseclab.errors import IpsecLabError
from ipseclab.files import open_private
from ipseclab.runtime.netlab import charonlog
from ipseclab.runtime.netlab.agreement import (
    Check,
    capture_checks,
    capture_checks_v2,
    compare_children,
    compare_ike,
    compare_keys,
    decode_matches_tshark,
)
from ipseclab.runtime.netlab.charon import (
    Charon,
    CharonChild,
    InitiateResult,
    charon_conn,
    topology_spawner,
)
from ipseclab.runtime.netlab.runpeer import ChildSpec, EspProposal, IkeProposal, PeerSpec
from ipseclab.runtime.netlab.tshark import TsharkError, dissect

PSK = "ipseclab-interop-throwaway-psk"
WRONG_PSK = "not-the-same-throwaway-psk"
OURS, THEIRS = "left", "right"  # lab roles: ipseclab runs on the left, charon on the right


class InteropError(IpsecLabError):
    """The harness itself failed (lab, charon or our peer could not be run)."""


@dataclass(frozen=True)
class Scenario:
    """One interop experiment; the charon side is described in swanctl proposal syntax."""

    name: str
    description: str
    initiator: str  # "ipseclab" | "charon"
    expect: str = "up"  # "up" | "fail"
    mode: str = "main"  # "main" | "aggressive"
    version: int = 1  # IKEv1 or IKEv2 on both sides
    auth: str = "psk"  # "psk" | "rsa"
    charon_proposals: str = "aes128-sha1-modp2048"
    charon_esp: str = "aes128-sha1"
    ike: tuple[IkeProposal, ...] = (IkeProposal(),)
    esp: tuple[EspProposal, ...] = (EspProposal(),)
    children: int = 1
    wrong_psk: bool = False
    expect_error: str | None = None  # our error code in a fail scenario
    expect_attribute: str | None = None  # the attribute our rejecting responder must name
    timeout: float = 12.0
    #: remote access (IKEv2 CP): "ours" leases a virtual IP to charon, "charon" leases one to us
    gateway: str | None = None
    #: remote access: the user proves itself with a password as EAP_USER — by EAP-MD5 in IKEv2 (the
    #: gateway by its certificate), by XAUTH in IKEv1; ``wrong_password``: not the gateway's
    eap: bool = False
    wrong_password: bool = False
    push: bool = False  # IKEv1 Mode Config push (swanctl's pull = no on both sides)


def _pair(name: str, description: str, **kw: Any) -> list[Scenario]:
    """The same set-up with ipseclab initiating (``-to-charon``) and responding (``-from-charon``)."""
    to_kw = {k[3:]: v for k, v in kw.items() if k.startswith("to_")}
    from_kw = {k[5:]: v for k, v in kw.items() if k.startswith("from_")}
    common = {k: v for k, v in kw.items() if not k.startswith(("to_", "from_"))}
    return [
        Scenario(f"{name}-to-charon", f"ipseclab initiates to charon: {description}", "ipseclab", **common, **to_kw),
        Scenario(f"{name}-from-charon", f"charon initiates to ipseclab: {description}", "charon", **common, **from_kw),
    ]


_SCENARIO_LIST: list[Scenario] = [
    *_pair("main-psk", "Main Mode, PSK, aes128-sha1-modp2048, ESP aes128-sha1, no PFS"),
    *_pair("main-rsa", "Main Mode, RSA signatures with lab-CA certificates (ID_DER_ASN1_DN)", auth="rsa"),
    *_pair("aggressive-psk", "Aggressive Mode, PSK", mode="aggressive"),
    *_pair(
        "pfs",
        "Main Mode, Quick Mode with PFS (modp2048)",
        charon_esp="aes128-sha1-modp2048",
        esp=(EspProposal(pfs_group=14),),
    ),
    *_pair("two-children", "Main Mode, two children (two Quick Modes) under one IKE SA", children=2),
    *_pair(
        "ike-mismatch",
        "phase-1 proposal mismatch: charon aes128-sha256-modp2048, ipseclab aes128-sha1-modp2048",
        expect="fail",
        charon_proposals="aes128-sha256-modp2048",
        to_expect_error="PEER_NO_PROPOSAL_CHOSEN",
        from_expect_error="NO_PROPOSAL_CHOSEN",
        from_expect_attribute="hash",
    ),
    *_pair(
        "esp-mismatch",
        "phase-2 proposal mismatch: charon ESP aes128-sha256, ipseclab aes128-sha1",
        expect="fail",
        charon_esp="aes128-sha256",
        to_expect_error="PEER_NO_PROPOSAL_CHOSEN",
        from_expect_error="NO_PROPOSAL_CHOSEN",
        from_expect_attribute="integrity",
    ),
    *_pair(
        "wrong-psk",
        "Main Mode with different pre-shared keys",
        expect="fail",
        wrong_psk=True,
        expect_error="AUTHENTICATION_FAILED",
    ),
    *_pair(
        "wrong-psk-aggressive",
        "Aggressive Mode with different pre-shared keys",
        expect="fail",
        mode="aggressive",
        wrong_psk=True,
        expect_error="AUTHENTICATION_FAILED",
    ),
]
_SCENARIO_LIST += [
    *_pair("v2-psk", "IKEv2, PSK, aes128-sha1-modp2048, ESP aes128-sha1", version=2),
    *_pair("v2-rsa", "IKEv2, RSA certificates from the lab CA, RFC 7427 signatures (ID_DER_ASN1_DN)", version=2, auth="rsa"),
    *_pair(
        "v2-sha256-pfs",
        "IKEv2, aes256-sha256-modp2048, two children, the second by CREATE_CHILD_SA with PFS (modp2048)",
        version=2,
        charon_proposals="aes256-sha256-modp2048",
        charon_esp="aes128-sha256-modp2048",
        ike=(IkeProposal("aes256", "sha256"),),
        esp=(EspProposal("aes128", "sha256", pfs_group=14),),
        children=2,
    ),
    *_pair(
        "v2-ike-mismatch",
        "IKEv2 proposal mismatch: charon aes128-sha256-modp2048, ipseclab aes128-sha1-modp2048",
        version=2,
        expect="fail",
        charon_proposals="aes128-sha256-modp2048",
        to_expect_error="NO_PROPOSAL_CHOSEN",
        from_expect_error="NO_PROPOSAL_CHOSEN",
    ),
    *_pair("v2-wrong-psk", "IKEv2 with different pre-shared keys", version=2, expect="fail", wrong_psk=True,
           expect_error="AUTHENTICATION_FAILED"),
    Scenario("v2-ra-charon-gateway", "IKEv2 remote access: charon leases us a virtual IP from its pool 10.3.0.0/24",
             "ipseclab", version=2, gateway="charon"),
    Scenario("v2-ra-ours-gateway", "IKEv2 remote access: we lease charon a virtual IP from our pool 10.3.0.0/24",
             "charon", version=2, gateway="ours"),
    Scenario("v2-ra-eap-charon-gateway", "IKEv2 remote access, charon's certificate and our EAP-MD5 password: "
             "a virtual IP from charon's pool", "ipseclab", version=2, gateway="charon", auth="rsa", eap=True),
    Scenario("v2-ra-eap-ours-gateway", "IKEv2 remote access, our certificate and charon's EAP-MD5 password: "
             "a virtual IP from our pool", "charon", version=2, gateway="ours", auth="rsa", eap=True),
    Scenario("v2-ra-eap-wrong-password", "IKEv2 remote access: our EAP-MD5 password is not the one charon has",
             "ipseclab", version=2, gateway="charon", auth="rsa", eap=True, wrong_password=True, expect="fail",
             expect_error="AUTHENTICATION_FAILED"),
    Scenario("v1-ra-xauth-charon-gateway", "IKEv1 remote access: PSK + XAUTH login to charon, then Mode Config gives us "
             "a virtual IP from charon's pool", "ipseclab", gateway="charon", eap=True),
    Scenario("v1-ra-xauth-ours-gateway", "IKEv1 remote access: charon logs in to us with PSK + XAUTH, Mode Config gives "
             "it a virtual IP from our pool", "charon", gateway="ours", eap=True),
    Scenario("v1-ra-push-charon-gateway", "IKEv1 remote access, Mode Config push: after XAUTH charon sends us the "
             "address unasked (SET/ACK)", "ipseclab", gateway="charon", eap=True, push=True),
    Scenario("v1-ra-push-ours-gateway", "IKEv1 remote access, Mode Config push: after XAUTH we send charon the "
             "address unasked (SET/ACK)", "charon", gateway="ours", eap=True, push=True),
    Scenario("v1-ra-xauth-wrong-password", "IKEv1 remote access: our XAUTH password is not the one charon has",
             "ipseclab", gateway="charon", eap=True, wrong_password=True, expect="fail", expect_error="AUTHENTICATION_FAILED"),
    Scenario("v1-ra-xauth-charon-wrong-password", "IKEv1 remote access: charon's XAUTH password is not the one we have",
             "charon", gateway="ours", eap=True, wrong_password=True, expect="fail", expect_error="AUTHENTICATION_FAILED"),
    Scenario("v2-ra-eap-charon-wrong-password", "IKEv2 remote access: charon's EAP-MD5 password is not the one we have",
             "charon", version=2, gateway="ours", auth="rsa", eap=True, wrong_password=True, expect="fail",
             expect_error="AUTHENTICATION_FAILED"),
]
#: the remote-access scenarios' pool, EAP user and password
RA_POOL = "10.3.0.0/24"
EAP_USER, EAP_PASSWORD = "alice", "alice-secret"
SCENARIOS: dict[str, Scenario] = {s.name: s for s in _SCENARIO_LIST}


@dataclass
class InteropResult:
    """Verdict and evidence of one scenario (everything also in ``<workdir>/result.json``)."""

    scenario: str
    description: str
    expect: str
    passed: bool = False
    summary: str = ""
    established: bool = False
    checks: list[Check] = field(default_factory=list)
    our_sa_table: dict[str, Any] = field(default_factory=dict)
    charon_sas: list[dict[str, Any]] = field(default_factory=list)
    our_errors: list[dict[str, Any]] = field(default_factory=list)
    our_policy: list[str] = field(default_factory=list)
    charon_errors: list[str] = field(default_factory=list)
    charon_initiate: list[dict[str, Any]] = field(default_factory=list)
    capture: str | None = None
    keys_ipseclab: str | None = None
    keys_charon: str | None = None
    tshark: list[str] = field(default_factory=list)
    seconds: float = 0.0
    workdir: str = ""
    harness_error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def failed_checks(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]


# -- credentials --------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def lab_pki() -> tuple[Any, Any, Any]:
    """(CA, ipseclab's identity, charon's identity): made once per process, RSA 2048."""
    from ipseclab.crypto.certs import issue_peer_cert, make_lab_ca

    ca = make_lab_ca("ipseclab interop CA")
    ours = issue_peer_cert(ca, "ipseclab-left", ip_addresses=["10.99.0.1"])
    theirs = issue_peer_cert(ca, "charon-right", ip_addresses=["10.99.0.2"])
    return ca, ours, theirs


def dn_text(cert: Any) -> str:
    """A certificate subject as strongSwan writes it: ``C=CH, O=ipseclab, CN=name`` (DER order)."""
    return ", ".join(rdn.rfc4514_string() for rdn in cert.subject.rdns)


def _write_private(path: Path, data: bytes) -> None:
    with open_private(path, "wb") as f:
        f.write(data)


# -- one scenario ---------------------------------------------------------------------------------


class _Run:
    """The processes and files of one scenario; :meth:`close` stops what is still running."""

    def __init__(self, scen: Scenario, topo: Any, workdir: Path) -> None:
        self.scen = scen
        self.topo = topo
        self.work = workdir
        self.charon = Charon(workdir / "charon", install_virtual_ip=scen.gateway == "ours")
        self.capture: Any = None
        self.peer: subprocess.Popen[bytes] | None = None
        self.initiates: list[InitiateResult] = []
        self.thread: threading.Thread | None = None

    # -- set-up
    def start_charon(self) -> None:
        scen, topo = self.scen, self.topo
        me, other = topo.hosts[THEIRS], topo.hosts[OURS]
        self.charon.start(topology_spawner(topo, THEIRS))
        children = [
            CharonChild(f"c{i + 1}", f"{me.protected[i]}/32", f"{other.protected[i]}/32", scen.charon_esp)
            for i in range(scen.children)
        ]
        if scen.gateway == "charon":  # the client's side is the address charon leases it
            self.charon.load_pool("rw", RA_POOL)
            children = [CharonChild("c1", f"{me.protected[0]}/32", "dynamic", scen.charon_esp)]
        elif scen.gateway == "ours":  # charon's side is the address we lease it
            children = [CharonChild("c1", "dynamic", f"{other.protected[0]}/32", scen.charon_esp)]
        common = {
            "local": me.address,
            "remote": other.address,
            "proposals": scen.charon_proposals,
            "children": children,
            "aggressive": scen.mode == "aggressive",
            "version": scen.version,
        }
        if scen.auth == "rsa":
            ca, ours, theirs = lab_pki()
            self.charon.load_cert(ca.cert_pem(), ca=True)
            self.charon.load_key(theirs.key_pem(), "rsa")
            conn = charon_conn(
                **common,
                auth="pubkey",
                local_id=dn_text(theirs.cert),
                remote_id=dn_text(ours.cert),
                certs=[theirs.cert_pem()],
                cacerts=[ca.cert_pem()],
            )
        else:
            self.charon.load_psk(PSK)
            conn = charon_conn(**common, local_id="right@lab", remote_id="left@lab")
        if scen.gateway == "charon":
            conn["pools"] = ["rw"]
        elif scen.gateway == "ours":
            conn["vips"] = ["0.0.0.0"]
        if scen.eap and scen.version == 2:  # the client by EAP-MD5, the gateway by its certificate
            charon_password = EAP_PASSWORD + ("-other" if scen.wrong_password and scen.gateway == "ours" else "")
            self.charon.load_eap(EAP_USER, charon_password)
            if scen.gateway == "charon":
                conn["remote"] = {"auth": "eap-md5", "eap_id": "%any"}
            else:
                conn["local"] = {"auth": "eap-md5", "eap_id": EAP_USER, "id": "right@lab"}
        elif scen.eap:  # IKEv1: the device by the PSK (XAUTHInitPreShared), then the user by XAUTH
            charon_password = EAP_PASSWORD + ("-other" if scen.wrong_password and scen.gateway == "ours" else "")
            self.charon.load_eap(EAP_USER, charon_password, kind="XAUTH")
            if scen.gateway == "charon":
                conn["remote-xauth"] = {"auth": "xauth"}
            else:
                conn["local-xauth"] = {"auth": "xauth", "xauth_id": EAP_USER}
        if scen.push:
            conn["pull"] = "no"
        self.charon.load_conn("lab", conn)

    def peer_spec(self) -> PeerSpec:
        scen, topo = self.scen, self.topo
        me, other = topo.hosts[OURS], topo.hosts[THEIRS]
        spec = PeerSpec(
            name="ipseclab",
            address=me.address,
            remote=other.address,
            role="initiator" if scen.initiator == "ipseclab" else "responder",
            mode=scen.mode,
            version=scen.version,
            auth="rsa-sig" if scen.auth == "rsa" else "psk",
            psk=WRONG_PSK if scen.wrong_psk else PSK,
            identity="left@lab",
            ike=list(scen.ike),
            esp=list(scen.esp),
            children=[ChildSpec(f"c{i + 1}", f"{me.protected[i]}/32", f"{other.protected[i]}/32") for i in range(scen.children)],
            vips=["0.0.0.0"] if scen.gateway == "charon" else [],
            pools={"rw": RA_POOL} if scen.gateway == "ours" else {},
            timeout=scen.timeout,
            linger=0.6 if scen.expect == "up" else 0.3,
            events=str(self.work / "ipseclab.events.jsonl"),
            result=str(self.work / "ipseclab.result.json"),
            ready=str(self.work / "ipseclab.ready"),
        )
        if scen.eap:
            password = EAP_PASSWORD + ("-typo" if scen.wrong_password and scen.gateway == "charon" else "")
            spec.eap_users = {EAP_USER: password}
            method = "eap-md5" if scen.version == 2 else "xauth"
            if scen.gateway == "charon":
                spec.local_auth, spec.eap_id = method, EAP_USER
            else:
                spec.remote_auth = method
        spec.pull = not scen.push
        if scen.gateway == "charon":  # our side of the child is whatever address charon leases us
            spec.children = [ChildSpec("c1", "0.0.0.0/0", f"{other.protected[0]}/32")]
        elif scen.gateway == "ours":  # charon's side is an address of our pool
            spec.children = [ChildSpec("c1", f"{me.protected[0]}/32", RA_POOL)]
        if scen.auth == "rsa":
            ca, ours, _ = lab_pki()
            pki = self.work / "pki"
            pki.mkdir(exist_ok=True)
            _write_private(pki / "ipseclab.key.pem", ours.key_pem())
            (pki / "ipseclab.cert.pem").write_bytes(ours.cert_pem())
            (pki / "ca.pem").write_bytes(ca.cert_pem())
            spec.key_pem, spec.cert_pem, spec.ca_pem = (str(pki / n) for n in ("ipseclab.key.pem", "ipseclab.cert.pem", "ca.pem"))
        return spec

    def start_peer(self) -> None:
        spec = self.peer_spec()
        path = self.work / "ipseclab.spec.json"
        _write_private(path, spec.to_json().encode())  # it holds the PSK
        src = str(Path(__file__).resolve().parents[2])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)}
        with open(self.work / "ipseclab.out", "wb") as out:
            self.peer = self.topo.spawn(
                OURS, [sys.executable, "-m", "ipseclab.runtime.netlab.runpeer", str(path)], stdout=out, stderr=subprocess.STDOUT, env=env
            )
        deadline = time.monotonic() + 20
        while not Path(spec.ready or "").exists():
            if self.peer.poll() is not None or time.monotonic() > deadline:
                raise InteropError("ipseclab peer did not start: " + (self.work / "ipseclab.out").read_text(errors="replace"))
            time.sleep(0.02)

    def charon_initiates(self) -> None:
        session = self.charon.session()

        def work() -> None:
            for i in range(self.scen.children):
                result = self.charon.initiate(f"c{i + 1}", ike="lab", timeout=self.scen.timeout, session=session)
                self.initiates.append(result)
                if not result.ok:
                    break

        self.thread = threading.Thread(target=work, name="charon-initiate", daemon=True)
        self.thread.start()

    def wait_peer(self) -> int | None:
        assert self.peer is not None
        try:
            return self.peer.wait(self.scen.timeout + 10)
        except subprocess.TimeoutExpired:
            self._stop_peer()
            return None

    def esp_probe(self) -> None:
        """One ping from charon's protected host through child c1: ESP-in-UDP for tshark."""
        me, other = self.topo.hosts[THEIRS], self.topo.hosts[OURS]
        src, dst = me.protected[0], other.protected[0]
        if self.scen.gateway == "charon":  # to the virtual IP charon leased us
            dst = str(ipaddress.ip_network(RA_POOL)[1])
        elif self.scen.gateway == "ours":  # from the virtual IP we leased charon
            src = str(ipaddress.ip_network(RA_POOL)[1])
        with contextlib.suppress(subprocess.TimeoutExpired, OSError, IpsecLabError):
            self.topo.run(THEIRS, ["ping", "-n", "-c", "1", "-W", "0.2", "-I", src, dst], capture_output=True, timeout=5)

    def _stop_peer(self) -> None:
        proc = self.peer
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
                proc.wait()

    def close(self) -> None:
        self._stop_peer()
        if self.capture is not None:
            with contextlib.suppress(Exception):
                self.capture.stop()
        self.charon.stop()


def _load_events(path: Path) -> list[Any]:
    from ipseclab.trace import event_from_dict

    if not path.exists():
        return []
    return [event_from_dict(json.loads(line)) for line in path.read_text().splitlines() if line.strip()]


def _policy_lines(events: Iterable[Any]) -> tuple[list[str], set[str]]:
    """Explanation lines of rejected proposals, and the attributes that differed in them."""
    from ipseclab.trace import PolicyDecision

    lines: list[str] = []
    differing: set[str] = set()
    for e in events:
        if isinstance(e, PolicyDecision) and not e.accepted:
            lines.extend(e.explanation)
            for tc in e.checks:
                differing.update(ac.attribute for ac in tc.checks if not ac.match)
    return lines, differing


def _write_charon_keys(keys: charonlog.CharonKeys, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    _write_private(directory / "ikev1_decryption_table", "".join(r + "\n" for r in keys.ikev1_decryption_rows()).encode())
    _write_private(directory / "esp_sa", "".join(r + "\n" for r in keys.esp_sa_rows()).encode())


def _analyse(run: _Run, result: InteropResult, charon_log: str) -> None:
    """Fill the result's evidence and checks from the files and charon's answers."""
    from ipseclab.export import write_keys

    scen, work = run.scen, run.work
    events = _load_events(work / "ipseclab.events.jsonl")
    peer_result = json.loads((work / "ipseclab.result.json").read_text()) if (work / "ipseclab.result.json").exists() else {}
    result.established = bool(peer_result.get("established"))
    result.our_sa_table = peer_result.get("sa_table", {})
    result.our_errors = peer_result.get("errors", [])
    result.our_policy, differing = _policy_lines(events)
    result.charon_errors = charonlog.charon_reports(charon_log)
    result.charon_initiate = [dataclasses.asdict(r) for r in run.initiates]
    result.keys_ipseclab = str(write_keys(events, work / "keys-ipseclab")["esp_sa"].parent)
    ckeys = charonlog.keys_from_log(charon_log)
    _write_charon_keys(ckeys, work / "keys-charon")
    result.keys_charon = str(work / "keys-charon")
    frames = []
    if result.capture and Path(result.capture).exists():
        try:
            frames = dissect(result.capture, result.keys_ipseclab)
            result.tshark = [f.describe() for f in frames]
        except TsharkError as exc:
            result.checks.append(Check("tshark dissection", False, str(exc)))
    if scen.expect == "up":
        result.checks += _up_checks(run, result, events, ckeys)
        ours, theirs = run.topo.hosts[OURS].address, run.topo.hosts[THEIRS].address
        if scen.version == 2:
            result.checks += capture_checks_v2(frames, our_address=ours, peer_address=theirs, children=scen.children)
            from ipseclab.teaching.decode import decode_pcap, read_ikev2_table

            decoded = decode_pcap(result.capture, ikev2_keys=read_ikev2_table(result.keys_ipseclab)) if frames else []
            result.checks.append(decode_matches_tshark(frames, decoded))
            if scen.gateway is not None:  # remote access: the CP payloads (47) opened inside SK, both ways
                cp = [f for f in frames if f.exchange_type == 35 and 47 in f.payloads and not f.retransmission]
                ok = {f.src for f in cp} == {ours, theirs}
                result.checks.append(Check("tshark decrypts the Configuration payloads (CFG_REQUEST and CFG_REPLY)", ok,
                                           "; ".join(f.describe() for f in cp) or "no IKE_AUTH frame with CP"))
        else:
            result.checks += capture_checks(frames, mode=scen.mode, our_address=ours, peer_address=theirs, quick_modes=scen.children)
            if scen.eap:  # XAUTH and Mode Config: three Transaction exchanges, each opened by tshark with our keys
                tx = [f for f in frames if f.exchange_type == 6 and not f.retransmission]
                ok = len(tx) == 6 and all(f.decrypted and 14 in f.payloads for f in tx)
                result.checks.append(Check("tshark decrypts every Transaction (HASH, ATTR): XAUTH and Mode Config", ok,
                                           "; ".join(f.describe() for f in tx) or "no Transaction frame"))
    else:
        result.checks += _fail_checks(scen, result, differing)


def _up_checks(run: _Run, result: InteropResult, events: list[Any], ckeys: charonlog.CharonKeys) -> list[Check]:
    """Established on both sides, and charon's view equals ours (SAs, algorithms, keys)."""
    from ipseclab.trace import SaEstablished

    codes = [e["code"] for e in result.our_errors]
    checks = [
        Check(
            "ipseclab established phase 1 and every child",
            result.established and not codes,
            f"errors: {codes}" if codes else "",
        )
    ]
    ours_p1 = [s for s in result.our_sa_table.get("isakmp", []) if s.get("state") in ("QM_IDLE", "ESTABLISHED")]
    charon_up = [s for s in result.charon_sas if s.get("state") == "ESTABLISHED"]
    if not (ours_p1 and charon_up):
        return [*checks, Check("both sides list an established IKE SA", False, f"ipseclab {len(ours_p1)}, charon {len(charon_up)}")]
    cookies = ours_p1[0]["cookies"]
    suite = next((e.ike for e in events if isinstance(e, SaEstablished) and e.ike is not None), None)
    ours_ipsec = result.our_sa_table.get("ipsec", [])
    checks += compare_ike(cookies, suite, charon_up[0])
    checks += compare_children(ours_ipsec, charon_up[0].get("child-sas") or {})
    checks += compare_keys(events, ckeys, cookies, [p[k] for p in ours_ipsec for k in ("spi_in", "spi_out")], version=run.scen.version)
    if run.scen.gateway is not None:  # remote access: the virtual IP both sides name, and the child narrowed to it
        ours_vip = ours_p1[0].get("virtual_ip")
        theirs_vip = charon_up[0].get("remote-vips" if run.scen.gateway == "charon" else "local-vips") or []
        checks.append(Check("virtual IP", ours_vip is not None and [ours_vip] == theirs_vip,
                            f"ipseclab {ours_vip}, charon {theirs_vip}"))
        if run.scen.eap:  # the EAP identity the gateway proved
            key = "remote-eap-id" if run.scen.version == 2 else "remote-xauth-id"
            theirs_eap = charon_up[0].get(key) if run.scen.gateway == "charon" else None
            ours_eap = ours_p1[0].get("eap_id") if run.scen.gateway == "ours" else None
            checks.append(Check("the gateway names the client's EAP identity", EAP_USER in (theirs_eap, ours_eap),
                                f"charon {key} {theirs_eap}, ipseclab eap_id {ours_eap}"))
        side = "local_ts" if run.scen.gateway == "charon" else "remote_ts"
        checks.append(Check("the child is narrowed to the virtual IP", [p[side] for p in ours_ipsec] == [f"{ours_vip}/32"],
                            f"our {side}: {[p[side] for p in ours_ipsec]}"))
    return checks


def _fail_checks(scen: Scenario, result: InteropResult, differing: set[str]) -> list[Check]:
    """Nothing usable came up, and our side said why (the expected error, not a timeout)."""
    codes = [e["code"] for e in result.our_errors]
    charon_children = [c for s in result.charon_sas for c in (s.get("child-sas") or {}).values()]
    checks = [
        Check(
            "no CHILD_SA established on either side",
            not result.established and not charon_children,
            f"ipseclab established={result.established}, charon children {len(charon_children)}",
        ),
        Check("no timeout on our side", "TIMEOUT" not in codes, f"our error codes: {codes}"),
    ]
    if scen.expect_error:
        checks.append(Check(f"ipseclab reports {scen.expect_error}", scen.expect_error in codes, f"our error codes: {codes}"))
    if scen.expect_attribute:
        checks.append(
            Check(
                f"our responder names the differing attribute '{scen.expect_attribute}'",
                differing == {scen.expect_attribute},
                f"differing attributes: {sorted(differing)}",
            )
        )
    return checks


def _summary(result: InteropResult) -> str:
    if result.harness_error:
        return "HARNESS ERROR: " + result.harness_error.strip().splitlines()[-1]
    bad = result.failed_checks()
    if result.expect == "up":
        head = "established, both sides agree" if not bad else "NOT in agreement"
    else:
        errs = ", ".join(dict.fromkeys(e["code"] for e in result.our_errors)) or "no error reported"
        head = f"failed as expected ({errs})" if not bad else f"unexpected outcome ({errs})"
    if bad:
        head += ": " + "; ".join(c.name for c in bad)
    return head


def run_in_topology(name: str, topo: Any, workdir: str | os.PathLike[str]) -> InteropResult:
    """Run scenario ``name`` in an existing :func:`site_to_site` lab (fresh charon)."""
    try:
        scen = SCENARIOS[name]
    except KeyError:
        raise InteropError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}") from None
    work = Path(workdir).resolve()
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    result = InteropResult(scen.name, scen.description, scen.expect, workdir=str(work))
    run = _Run(scen, topo, work)
    t0 = time.monotonic()
    charon_log = ""
    try:
        run.start_charon()
        run.capture = topo.capture(OURS, work / "capture.pcap")
        result.capture = str(work / "capture.pcap")
        run.start_peer()
        if scen.initiator == "charon":
            run.charon_initiates()
        run.wait_peer()
        if run.thread is not None:
            run.thread.join(5.0 if scen.expect == "up" else 0.2)
        if scen.expect == "up":
            run.esp_probe()
        result.charon_sas = run.charon.list_sas()
        (work / "charon.list_sas.json").write_text(json.dumps(result.charon_sas, indent=2))
    except Exception:  # noqa: BLE001 - reported in the result, the lab is cleaned up below
        result.harness_error = traceback.format_exc()
    finally:
        run.close()
        charon_log = run.charon.log_text()
    result.seconds = round(time.monotonic() - t0, 3)
    if result.harness_error is None:
        try:
            _analyse(run, result, charon_log)
        except Exception:  # noqa: BLE001
            result.harness_error = traceback.format_exc()
    result.passed = result.harness_error is None and bool(result.checks) and not result.failed_checks()
    result.summary = _summary(result)
    (work / "result.json").write_text(json.dumps(result.to_dict(), indent=2, default=str))
    return result


def lab_name() -> str:
    """A lab name unique to this process (``io<pid>``, within the 10-character limit)."""
    return f"io{os.getpid() % 10_000_000}"


def run_scenarios(names: Sequence[str] | None, out: str | os.PathLike[str]) -> list[InteropResult]:
    """Run scenarios (all if ``names`` is empty) in one lab; results in ``out/<scenario>/``."""
    from ipseclab.runtime.netlab.topology import site_to_site

    wanted = list(names) if names else list(SCENARIOS)
    unknown = [n for n in wanted if n not in SCENARIOS]
    if unknown:
        raise InteropError(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    problem = Charon.available()
    if problem:
        raise InteropError(problem)
    out_dir = Path(out)
    with site_to_site(lab_name(), routes=False) as topo:
        return [run_in_topology(n, topo, out_dir / n) for n in wanted]


def run_scenario(name: str, workdir: str | os.PathLike[str]) -> InteropResult:
    """Run one scenario in a lab of its own (built and removed here)."""
    from ipseclab.runtime.netlab.topology import site_to_site

    problem = Charon.available()
    if problem:
        raise InteropError(problem)
    with site_to_site(lab_name(), routes=False) as topo:
        return run_in_topology(name, topo, workdir)
