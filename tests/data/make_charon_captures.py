#!/usr/bin/env python3
"""Produce reference captures of strongSwan-to-strongSwan IKEv1 exchanges.

Run as root from the repository root::

    .venv/bin/python tests/data/make_charon_captures.py [--only NAME ...] [--keep-logs DIR]

For every scenario two network namespaces (left 10.99.0.1/24 <-> right 10.99.0.2/24 over
a veth pair) are built, one strongSwan ``charon`` (with ``kernel-libipsec``, since this
machine has no kernel ESP) runs in each with a private ``/run`` (``unshare -m`` + bind
mount), connections are loaded over VICI, ``tcpdump`` captures on the left veth, left
initiates, and once the IKE and CHILD SAs are up, pings go through every child and the
IKE SA is deleted (Delete Informationals), everything is torn down again (PIDs killed,
namespaces deleted, also on error). The KDF values are cross-checked against an RFC 2409
recomputation and tshark must decrypt the capture with the key tables before anything is
written. Needs tshark, tcpdump, iproute2, iputils-ping, strongSwan 5.9.8 and the vici package.

Outputs per scenario in ``tests/data/``:

* ``<name>.pcap``               -- the capture (IKE on 500 then 4500, ESP-in-UDP)
* ``<name>.keys/ikev1_decryption_table`` and ``<name>.keys/esp_sa`` -- Wireshark UATs
* ``<name>.json``               -- cookies, exchange sequence and the RFC 2409 KDF vectors
                                   exactly as charon's level-4 log printed them
* ``<name>.tshark.txt``         -- per ISAKMP message: frame, exchange type, payloads as
                                   tshark dissects them *with* the keys

The raw charon logs (large; the PSKs are in this file anyway) stay in a temporary
directory that is removed afterwards, unless ``--keep-logs DIR`` is given.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import vici

from ipseclab.runtime.netlab.charon import Charon, CharonChild, charon_conn, netns_spawner
from ipseclab.runtime.netlab.charonlog import (
    CHILD_LABELS,
    IKE_LABELS,
    LOG_LABELS,
    WIRESHARK_ESP_ENCRYPTION,
    WIRESHARK_ESP_INTEGRITY,
    log_facts,
)

DATA = Path(__file__).resolve().parent
LEFT_IP = "10.99.0.1"
RIGHT_IP = "10.99.0.2"

# charon's file log: IKE/CHD at 4 print every key; ENC/NET/KNL at 2 show message parsing
CHARON_LOG_LEVELS = {
    "default": 1,
    "ike": 4,
    "chd": 4,
    "cfg": 2,
    "enc": 2,
    "net": 2,
    "knl": 2,
    "lib": 1,
}

# Throw-away pre-shared keys: they protect nothing but these captures.
SCENARIOS = [
    {
        "name": "charon_main_psk",
        "psk": "ipseclab-throwaway-main-psk",
        "aggressive": False,
        "proposals": "aes128-sha1-modp2048",
        "esp_proposals": "aes128-sha1",
        "children": [("c1", "10.1.0.1/32", "10.2.0.1/32")],
        "ping": True,
        "terminate": True,
    },
    {
        "name": "charon_main_psk_pfs_2children",
        "psk": "ipseclab-throwaway-pfs-psk",
        "aggressive": False,
        "proposals": "aes256-sha256-modp2048",
        "esp_proposals": "aes256-sha256-modp2048",
        "children": [
            ("c1", "10.1.0.1/32", "10.2.0.1/32"),
            ("c2", "10.1.0.2/32", "10.2.0.2/32"),
        ],
        "ping": True,
        "terminate": True,
    },
    {
        "name": "charon_aggressive_psk",
        "psk": "ipseclab-throwaway-aggr-psk",
        "aggressive": True,
        "proposals": "aes128-sha256-modp2048",
        "esp_proposals": "aes128-sha256",
        "children": [("c1", "10.1.0.1/32", "10.2.0.1/32")],
        "ping": True,
        "terminate": True,
    },
    {
        # Same as charon_aggressive_psk, but kept only from a run in which charon's initiator
        # sent AM3 and QM1 back to back, its responder dropped QM1 ("ignoring QUICK_MODE request
        # while phase 1 is incomplete") and the initiator retransmitted QM1 (~1 run in 10 here).
        # The script retries up to `attempts` times; if it never happens the old files are kept.
        "name": "charon_aggressive_psk_qm_retransmit",
        "psk": "ipseclab-throwaway-aggr-rtx-psk",
        "aggressive": True,
        "proposals": "aes128-sha256-modp2048",
        "esp_proposals": "aes128-sha256",
        "children": [("c1", "10.1.0.1/32", "10.2.0.1/32")],
        "ping": True,
        "terminate": True,
        "want_retransmit": True,
        "attempts": 150,
    },
]


# --------------------------------------------------------------------------- helpers


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), check=check, capture_output=True, text=True)


def ns_exec(ns: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run("ip", "netns", "exec", ns, *args, check=check)


class Lab:
    """Two namespaces + veth, two charons, one tcpdump; everything torn down in close()."""

    def __init__(self, scen: dict, workdir: Path):
        self.scen = scen
        self.work = workdir
        tag = f"iplcap-{os.getpid()}"
        self.ns = {"left": f"{tag}-left", "right": f"{tag}-right"}
        self.veth = {
            "left": f"iplc{os.getpid() % 100000}l",
            "right": f"iplc{os.getpid() % 100000}r",
        }
        self.procs: dict[str, subprocess.Popen] = {}
        self.created_ns: list[str] = []
        self.charons: dict[str, Charon] = {}
        self.sessions: dict[str, vici.Session] = {}
        self.dirs: dict[str, Path] = {}

    # -- network
    def build_net(self) -> None:
        for side in ("left", "right"):
            run("ip", "netns", "add", self.ns[side])
            self.created_ns.append(self.ns[side])
        run(
            "ip",
            "link",
            "add",
            self.veth["left"],
            "type",
            "veth",
            "peer",
            "name",
            self.veth["right"],
        )
        try:
            for side in ("left", "right"):
                run("ip", "link", "set", self.veth[side], "netns", self.ns[side])
        except subprocess.CalledProcessError:
            run("ip", "link", "del", self.veth["left"], check=False)
            raise
        addr = {"left": LEFT_IP, "right": RIGHT_IP}
        for side in ("left", "right"):
            ns = self.ns[side]
            ns_exec(ns, "ip", "link", "set", "lo", "up")
            ns_exec(ns, "ip", "addr", "add", f"{addr[side]}/24", "dev", self.veth[side])
            ns_exec(ns, "ip", "link", "set", self.veth[side], "up")
            for _name, lts, rts in self.scen["children"]:
                ts = lts if side == "left" else rts
                ns_exec(ns, "ip", "addr", "add", ts, "dev", "lo")
        # wait until the veth carrier is up and the peer answers ARP-wise
        for _ in range(50):
            out = ns_exec(self.ns["left"], "ip", "-o", "link", "show", self.veth["left"]).stdout
            if "LOWER_UP" in out:
                break
            time.sleep(0.05)

    # -- charon
    def start_charon(self, side: str) -> None:
        charon = Charon(
            self.work / side, levels=CHARON_LOG_LEVELS, aggressive_psk=self.scen["aggressive"]
        )
        self.charons[side] = charon
        self.dirs[side] = charon.workdir
        charon.start(netns_spawner(self.ns[side]))

    def connect(self, side: str) -> vici.Session:
        self.sessions[side] = self.charons[side].vici
        return self.sessions[side]

    def load(self, side: str) -> None:
        scen = self.scen
        me, peer = (LEFT_IP, RIGHT_IP) if side == "left" else (RIGHT_IP, LEFT_IP)
        charon = self.charons[side]
        charon.load_psk(scen["psk"])
        children = [
            CharonChild(
                name, *((lts, rts) if side == "left" else (rts, lts)), scen["esp_proposals"]
            )
            for name, lts, rts in scen["children"]
        ]
        conn = charon_conn(
            local=me,
            remote=peer,
            proposals=scen["proposals"],
            children=children,
            aggressive=scen["aggressive"],
            local_id=f"{side}@lab",
            remote_id="right@lab" if side == "left" else "left@lab",
            extra={"rekey_time": "0", "reauth_time": "0"},
        )
        charon.load_conn("lab", conn)

    # -- capture
    def start_tcpdump(self, pcap: Path) -> None:
        cmd = [
            "ip",
            "netns",
            "exec",
            self.ns["left"],
            "tcpdump",
            "--immediate-mode",
            "-U",
            "-n",
            "-i",
            self.veth["left"],
            "-w",
            str(pcap),
            "udp or esp",
        ]
        with open(self.work / "tcpdump.err", "wb") as err:
            p = subprocess.Popen(
                cmd,
                stdout=subprocess.DEVNULL,
                stderr=err,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.procs["tcpdump"] = p
        deadline = time.monotonic() + 10
        while b"listening on" not in (self.work / "tcpdump.err").read_bytes():
            if p.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    "tcpdump did not start: "
                    + (self.work / "tcpdump.err").read_text(errors="replace")
                )
            time.sleep(0.05)

    def stop_tcpdump(self) -> None:
        p = self.procs.pop("tcpdump", None)
        if p is None:
            return
        time.sleep(0.3)  # let the last packets reach the capture
        p.send_signal(signal.SIGINT)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()

    # -- teardown
    def close(self) -> None:
        self.stop_tcpdump()
        for charon in self.charons.values():  # SIGTERM to each charon's own PID, then wait
            charon.stop()
        self.sessions.clear()
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for key, p in list(self.procs.items()):
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            del self.procs[key]
        for ns in self.created_ns:  # deleting a namespace also removes its veth end
            run("ip", "netns", "del", ns, check=False)
        self.created_ns.clear()


def sa_state(sess: vici.Session) -> dict:
    sas = {}
    for entry in sess.list_sas():
        for name, ike in entry.items():
            sas[name] = ike
    return sas


def wait_established(sess: vici.Session, children: list[str], timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        ikes = sa_state(sess)
        ike = ikes.get("lab")
        if ike and ike.get("state") == b"ESTABLISHED":
            states = {}
            for c in ike.get("child-sas", {}).values():
                states[c["name"].decode()] = c["state"].decode()
            if all(states.get(c) == "INSTALLED" for c in children):
                return ike
        if time.monotonic() > deadline:
            raise TimeoutError(f"SAs not established: {ikes}")
        time.sleep(0.1)


def run_scenario(scen: dict, keep_logs: Path | None) -> dict:
    work = Path(tempfile.mkdtemp(prefix=f"iplcap-{os.getpid()}-"))
    try:
        return _run_scenario(scen, work)
    finally:
        if keep_logs:
            keep_logs.mkdir(parents=True, exist_ok=True)
            for side in ("left", "right"):
                log = work / side / "charon.log"
                if log.exists():
                    shutil.copyfile(log, keep_logs / f"{scen['name']}.{side}.log")
        shutil.rmtree(work, ignore_errors=True)


def _run_scenario(scen: dict, work: Path) -> dict:
    name = scen["name"]
    lab = Lab(scen, work)
    print(f"== {name} (workdir {work})", flush=True)
    timeline: list[str] = []
    try:
        lab.build_net()
        for side in ("right", "left"):
            lab.start_charon(side)
        for side in ("right", "left"):
            lab.connect(side)
            lab.load(side)
        tmp_pcap = work / "capture.pcap"
        lab.start_tcpdump(tmp_pcap)
        left = lab.sessions["left"]
        child_names = [c[0] for c in scen["children"]]
        for i, child in enumerate(child_names):
            t0 = time.monotonic()
            for _log in left.initiate(
                {"child": child, "ike": "lab", "timeout": "20000", "init-limits": "no"}
            ):
                pass
            print(f"   initiated {child} in {time.monotonic() - t0:.3f} s", flush=True)
            timeline.append(f"initiate {child}")
            wait_established(left, child_names[: i + 1], 20)
        ike_left = wait_established(left, child_names, 20)
        ike_right = wait_established(lab.sessions["right"], child_names, 20)
        if scen["ping"]:
            for child, lts, rts in scen["children"]:
                src, dst = lts.split("/")[0], rts.split("/")[0]
                r = ns_exec(
                    lab.ns["left"],
                    "ping",
                    "-c",
                    "3",
                    "-i",
                    "0.2",
                    "-W",
                    "2",
                    "-I",
                    src,
                    dst,
                    check=False,
                )
                if r.returncode != 0:
                    raise RuntimeError(f"ping through {child} failed: {r.stdout}{r.stderr}")
                print(f"   ping {src} -> {dst}: {r.stdout.strip().splitlines()[-2]}", flush=True)
                timeline.append(f"ping -c 3 -I {src} {dst} (through {child})")
        if scen["terminate"]:
            for _log in left.terminate({"ike": "lab", "timeout": "10000"}):
                pass
            timeline.append("terminate ike")
            deadline = time.monotonic() + 10
            while sa_state(lab.sessions["right"]).get("lab") and time.monotonic() < deadline:
                time.sleep(0.1)
        lab.stop_tcpdump()
    finally:
        lab.close()
    logs = {
        side: (work / side / "charon.log").read_text(errors="replace") for side in ("left", "right")
    }
    facts = extract(scen, tmp_pcap, logs, ike_left, ike_right)
    facts["timeline"] = timeline
    if scen.get("want_retransmit") and not any(
        e["label"].startswith("retransmission") for e in facts["exchanges"]
    ):
        return facts  # caller retries; nothing written
    write_outputs(scen, facts, tmp_pcap)
    return facts


# --------------------------------------------------------------------------- log parsing


PAYLOAD_NAMES = {
    1: "SA",
    2: "P",
    3: "T",
    4: "KE",
    5: "ID",
    6: "CERT",
    7: "CR",
    8: "HASH",
    9: "SIG",
    10: "NONCE",
    11: "N",
    12: "D",
    13: "VID",
    14: "ATTR",
    15: "SAK",
    20: "NAT-D",
    21: "NAT-OA",
    130: "NAT-D(draft)",
    131: "NAT-OA(draft)",
    132: "FRAG",
}
EXCHANGE_NAMES = {
    2: "Identity Protection (Main Mode)",
    4: "Aggressive",
    5: "Informational",
    6: "Transaction (Config Mode)",
    32: "Quick Mode",
}


def tshark_json(
    pcap: Path, fields: list[str], xdg: Path | None = None, extra: list[str] = ()
) -> list[dict]:
    env = dict(os.environ)
    if xdg is not None:
        env["XDG_CONFIG_HOME"] = str(xdg)
    cmd = ["tshark", "-r", str(pcap), "-T", "json", *extra]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return [pkt["_source"]["layers"] for pkt in json.loads(out or "[]")]


def first(layers: dict, field: str):
    v = layers.get(field)
    return v[0] if v else None


def hexs(v: str | None) -> str | None:
    return v.replace(":", "").lower() if v is not None else None


def prf_factory(prf_name: str):
    algo = {
        "PRF_HMAC_SHA1": "sha1",
        "PRF_HMAC_SHA2_256": "sha256",
        "PRF_HMAC_SHA2_384": "sha384",
        "PRF_HMAC_SHA2_512": "sha512",
        "PRF_HMAC_MD5": "md5",
    }[prf_name]

    def prf(key: bytes, data: bytes) -> bytes:
        return hmac.new(key, data, algo).digest()

    return prf, algo


def expand(prf, key: bytes, seed: bytes, n: int, feedback_seed: bool) -> bytes:
    """RFC 2409 expansion: Appendix B (Ka, feedback only) or 5.5 (KEYMAT, K_n = prf(K, K_n-1 | seed))."""
    out, k = b"", b""
    if not feedback_seed:
        k = prf(key, seed)
        out = k
        while len(out) < n:
            k = prf(key, k)
            out += k
        return out[:n]
    while len(out) < n:
        k = prf(key, k + seed)
        out += k
    return out[:n]


def self_check(facts: dict) -> list[str]:
    """Recompute RFC 2409 derivations from the inputs and compare with charon's outputs."""
    ike = facts["ike_sa"]
    prf, hash_name = prf_factory(facts["ike_algorithms"]["prf"])
    b = bytes.fromhex
    psk = facts["psk"].encode()
    cky = b(ike["cky_i"]) + b(ike["cky_r"])
    gxy = b(ike["g_xy"])
    checks = []

    def eq(what, got, want):
        if got != want:
            raise RuntimeError(f"self-check failed for {facts['scenario']}: {what}")
        checks.append(what)

    skeyid = prf(psk, b(ike["ni_b"]) + b(ike["nr_b"]))
    eq("SKEYID = prf(PSK, Ni_b | Nr_b)", skeyid, b(ike["skeyid"]))
    d = prf(skeyid, gxy + cky + b"\x00")
    eq("SKEYID_d = prf(SKEYID, g^xy | CKY-I | CKY-R | 0)", d, b(ike["skeyid_d"]))
    a = prf(skeyid, d + gxy + cky + b"\x01")
    eq("SKEYID_a = prf(SKEYID, SKEYID_d | g^xy | CKY-I | CKY-R | 1)", a, b(ike["skeyid_a"]))
    e = prf(skeyid, a + gxy + cky + b"\x02")
    eq("SKEYID_e = prf(SKEYID, SKEYID_a | g^xy | CKY-I | CKY-R | 2)", e, b(ike["skeyid_e"]))
    klen = len(b(ike["enc_key"]))
    ka = e[:klen] if len(e) >= klen else expand(prf, e, b"\x00", klen, feedback_seed=False)
    eq("Ka = SKEYID_e truncated (or RFC 2409 App. B expansion)", ka, b(ike["enc_key"]))
    iv = hashlib.new(hash_name, b(ike["g_xi"]) + b(ike["g_xr"])).digest()[
        : len(b(ike["initial_iv"]))
    ]
    eq("initial IV = H(g^xi | g^xr) truncated to the block size", iv, b(ike["initial_iv"]))
    eq("HASH_I = prf(SKEYID, HASH_I data)", prf(skeyid, b(ike["hash_i_data"])), b(ike["hash_i"]))
    eq("HASH_R = prf(SKEYID, HASH_R data)", prf(skeyid, b(ike["hash_r_data"])), b(ike["hash_r"]))
    eq(
        "HASH_I data starts with g^xi | g^xr | CKY-I | CKY-R",
        b(ike["hash_i_data"])[: len(b(ike["g_xi"])) * 2 + 16],
        b(ike["g_xi"]) + b(ike["g_xr"]) + cky,
    )
    for ch in facts["children"]:
        for sa in ch["sas"]:
            seed = (
                (b(ch["g_xy"]) if ch["g_xy"] else b"")
                + bytes([ch["protocol_id"]])
                + b(sa["spi"])
                + b(ch["ni_b"])
                + b(ch["nr_b"])
            )
            eq(
                f"{ch['name']} {sa['direction']} seed = [g^xy(qm)] | protocol | SPI | Ni_b | Nr_b",
                seed,
                b(sa["keymat_seed"]),
            )
            ek, ik = b(sa["encryption_key"]), b(sa["integrity_key"])
            km = expand(prf, d, seed, len(ek) + len(ik), feedback_seed=True)
            eq(
                f"{ch['name']} {sa['direction']} KEYMAT = encryption key | integrity key",
                km,
                ek + ik,
            )
    return checks


def extract(scen: dict, pcap: Path, logs: dict[str, str], ike_left: dict, ike_right: dict) -> dict:
    name = scen["name"]
    lf, rf = log_facts(logs["left"]), log_facts(logs["right"])
    # both ends must have derived the same bytes
    for k in IKE_LABELS.values():
        if k not in lf["ike"]:
            raise RuntimeError(f"{name}: charon log lacks {k}")
        if lf["ike"][k] != rf["ike"].get(k):
            raise RuntimeError(f"{name}: left and right disagree on {k}")
    if len(lf["children"]) != len(scen["children"]):
        raise RuntimeError(
            f"{name}: expected {len(scen['children'])} child SAs in the log, "
            f"found {len(lf['children'])}"
        )
    for cl, cr in zip(lf["children"], rf["children"], strict=True):
        for k in CHILD_LABELS.values():
            if cl.get(k) != cr.get(k):
                raise RuntimeError(f"{name}: left and right disagree on child {k}")

    cky_i = ike_left["initiator-spi"].decode()
    cky_r = ike_left["responder-spi"].decode()

    # -- phase-1 plaintext from the capture (nonces and KE are never printed by charon)
    plain = tshark_json(
        pcap,
        [
            "frame.number",
            "ip.src",
            "isakmp.ispi",
            "isakmp.exchangetype",
            "isakmp.nonce",
            "isakmp.key_exchange.data",
        ],
        extra=["-Y", "isakmp"],
    )
    p1 = [p for p in plain if first(p, "isakmp.exchangetype") in ("2", "4")]
    def sent_by(src: str, field: str) -> list[str]:
        return [hexs(first(p, field)) for p in p1 if first(p, "ip.src") == src and first(p, field)]

    ni, nr = sent_by(LEFT_IP, "isakmp.nonce"), sent_by(RIGHT_IP, "isakmp.nonce")
    gi, gr = sent_by(LEFT_IP, "isakmp.key_exchange.data"), sent_by(RIGHT_IP, "isakmp.key_exchange.data")
    if not (ni and nr and gi and gr):
        raise RuntimeError(f"{name}: phase-1 nonce/KE not found in capture")
    if hexs(first(p1[0], "isakmp.ispi")) != cky_i:
        raise RuntimeError(f"{name}: cookie mismatch between vici and capture")

    ike_alg = dict(
        zip(
            ("encryption", "integrity", "prf", "dh_group"),
            lf["proposals"]["IKE"].split("/"),
            strict=True,
        )
    )
    esp_parts = lf["proposals"]["ESP"].split("/")
    esp_alg = {
        "encryption": esp_parts[0],
        "integrity": esp_parts[1],
        "pfs_group": esp_parts[2] if len(esp_parts) > 3 else None,
        "esn": esp_parts[-1],
    }

    # -- key tables (also used right away to decrypt the capture)
    keys = {"ikev1_decryption_table": f"{cky_i},{lf['ike']['enc_key']}\n"}
    esp_rows = []
    children = []
    for ch in lf["children"]:
        spi_out, src_o, dst_o = ch["spis"]["outbound"]
        spi_in, src_i, dst_i = ch["spis"]["inbound"]
        # initiator SA seed/keys use the SPI chosen by the responder (initiator->responder SA)
        sas = [
            {
                "direction": "initiator->responder",
                "spi": spi_out,
                "src": src_o,
                "dst": dst_o,
                "keymat_seed": ch["seed_i"],
                "encryption_key": ch["encr_i"],
                "integrity_key": ch["integ_i"],
            },
            {
                "direction": "responder->initiator",
                "spi": spi_in,
                "src": src_i,
                "dst": dst_i,
                "keymat_seed": ch["seed_r"],
                "encryption_key": ch["encr_r"],
                "integrity_key": ch["integ_r"],
            },
        ]
        for sa in sas:
            off = len(ch["g_xy"]) // 2 if ch.get("g_xy") else 0
            if sa["keymat_seed"][2 * off + 2 : 2 * off + 10] != sa["spi"]:
                raise RuntimeError(f"{name}: seed/SPI mapping unexpected for {sa}")
            enc = esp_alg["encryption"].rsplit("_", 1)[0]
            esp_rows.append(
                f'"IPv4","{sa["src"]}","{sa["dst"]}","0x{sa["spi"]}","{WIRESHARK_ESP_ENCRYPTION[enc]}",'
                f'"0x{sa["encryption_key"]}","{WIRESHARK_ESP_INTEGRITY[esp_alg["integrity"]]}",'
                f'"0x{sa["integrity_key"]}"'
            )
        children.append(
            {
                "name": ch["name"],
                "local_ts": ch["local_ts"],
                "remote_ts": ch["remote_ts"],
                "protocol": "ESP",
                "protocol_id": 3,
                "g_xy": ch.get("g_xy"),
                "sas": sas,
            }
        )
    keys["esp_sa"] = "\n".join(esp_rows) + "\n"

    # -- decrypted dissection with the key tables
    xdg = Path(tempfile.mkdtemp(prefix="iplcap-xdg-"))
    try:
        (xdg / "wireshark").mkdir()
        for f, text in keys.items():
            (xdg / "wireshark" / f).write_text(text)
        dec = tshark_json(
            pcap,
            [
                "frame.number",
                "frame.time_relative",
                "ip.src",
                "ip.dst",
                "udp.srcport",
                "udp.dstport",
                "isakmp.ispi",
                "isakmp.rspi",
                "isakmp.exchangetype",
                "isakmp.messageid",
                "isakmp.flags",
                "isakmp.typepayload",
                "isakmp.nonce",
                "isakmp.key_exchange.data",
                "isakmp.id.type",
                "isakmp.id.data.user_fqdn",
                "isakmp.spi",
                "isakmp.delete.protoid",
                "isakmp.delete.spi",
                "esp.spi",
                "esp.sequence",
                "esp.icv_good",
                "icmp.type",
                "udp.payload",
            ],
            xdg=xdg,
            extra=[
                "-o",
                "esp.enable_encryption_decode:TRUE",
                "-o",
                "esp.enable_authentication_check:TRUE",
            ],
        )
    finally:
        shutil.rmtree(xdg, ignore_errors=True)

    exchanges, esp_frames, listing = [], [], []
    seen_payloads: dict[str, int] = {}
    counters: dict[str, int] = {}
    qm_msgs: dict[str, list[dict]] = {}
    for p in dec:
        frame = int(first(p, "frame.number"))
        direction = "I->R" if first(p, "ip.src") == LEFT_IP else "R->I"
        if "esp.spi" in p:
            esp_frames.append(
                {
                    "frame": frame,
                    "dir": direction,
                    "spi": first(p, "esp.spi"),
                    "seq": int(first(p, "esp.sequence")),
                    "icv_good": first(p, "esp.icv_good") in ("1", "True", "true"),
                    "inner_icmp_type": int(first(p, "icmp.type")) if "icmp.type" in p else None,
                }
            )
            continue
        if "isakmp.exchangetype" not in p:
            continue
        ex = int(first(p, "isakmp.exchangetype"))
        types = [int(t) for t in p.get("isakmp.typepayload", [])]
        payload = first(p, "udp.payload")
        retrans = payload in seen_payloads
        if not retrans:
            seen_payloads[payload] = frame
        mid = int(first(p, "isakmp.messageid"), 16)
        if retrans:
            label = f"retransmission of frame {seen_payloads[payload]}"
        elif ex in (2, 4, 32):
            pref = {2: "MM", 4: "AM", 32: "QM"}[ex]
            key = f"{pref}{mid}"
            counters[key] = counters.get(key, 0) + 1
            label = f"{pref}{counters[key]}"
        elif ex == 5 and 12 in types:
            proto = first(p, "isakmp.delete.protoid")
            label = "INFO Delete " + {"1": "ISAKMP", "3": "ESP", "2": "AH"}.get(proto, str(proto))
        else:
            label = EXCHANGE_NAMES.get(ex, str(ex))
        entry = {
            "frame": frame,
            "dir": direction,
            "sport": int(first(p, "udp.srcport")),
            "dport": int(first(p, "udp.dstport")),
            "exchange_type": ex,
            "exchange": EXCHANGE_NAMES.get(ex, str(ex)),
            "message_id": f"0x{mid:08x}",
            "encrypted": bool(int(first(p, "isakmp.flags"), 16) & 1),
            "label": label,
            "payloads": [PAYLOAD_NAMES.get(t, str(t)) for t in types],
        }
        if retrans and entry["encrypted"]:
            entry["note"] = (
                f"same bytes as frame {seen_payloads[payload]}; tshark decrypts this copy with the "
                "CBC IV already advanced by that frame, so the payload list above is tshark's "
                "garbled view (the real content equals frame "
                f"{seen_payloads[payload]})"
            )
        exchanges.append(entry)
        listing.append(
            f"{frame}\t{entry['dir']}\t{entry['sport']}->{entry['dport']}\t{ex} "
            f"{entry['exchange']}\t{entry['message_id']}\t{label}\t" + ",".join(entry["payloads"])
        )
        if ex == 32 and not retrans:
            qm_msgs.setdefault(f"0x{mid:08x}", []).append(p)

    # checks that the keys decrypt what we expect
    p1_enc = [e for e in exchanges if e["exchange_type"] in (2, 4) and e["encrypted"]]
    if not p1_enc or not all(
        "ID" in e["payloads"] and "HASH" in e["payloads"] for e in p1_enc if e["exchange_type"] == 2
    ):
        raise RuntimeError(f"{name}: tshark did not decrypt the MM5/MM6 ID+HASH payloads: {p1_enc}")
    if scen["aggressive"] and not any(
        e["label"] == "AM3" and "HASH" in e["payloads"] for e in exchanges
    ):
        raise RuntimeError(f"{name}: tshark did not decrypt AM3")
    if len(qm_msgs) != len(children):
        raise RuntimeError(
            f"{name}: expected {len(children)} Quick Modes, tshark saw {list(qm_msgs)}"
        )
    if esp_frames and not all(
        f["icv_good"] and f["inner_icmp_type"] is not None for f in esp_frames
    ):
        raise RuntimeError(f"{name}: ESP frames did not decrypt/authenticate: {esp_frames}")

    # QM nonces/KE/SPIs from the decrypted capture, matched to children by the proposed SPIs
    for mid, msgs in qm_msgs.items():
        qm1 = next(m for m in msgs if first(m, "ip.src") == LEFT_IP and "isakmp.nonce" in m)
        qm2 = next(m for m in msgs if first(m, "ip.src") == RIGHT_IP and "isakmp.nonce" in m)
        spi_i, spi_r = hexs(first(qm1, "isakmp.spi")), hexs(first(qm2, "isakmp.spi"))
        ch = next(
            c for c in children if c["sas"][1]["spi"] == spi_i and c["sas"][0]["spi"] == spi_r
        )
        ch.update(
            message_id=mid,
            ni_b=hexs(first(qm1, "isakmp.nonce")),
            nr_b=hexs(first(qm2, "isakmp.nonce")),
            g_x_i=hexs(first(qm1, "isakmp.key_exchange.data")),
            g_x_r=hexs(first(qm2, "isakmp.key_exchange.data")),
            spi_i=spi_i,
            spi_r=spi_r,
        )

    facts = {
        "scenario": name,
        "generator": "tests/data/make_charon_captures.py",
        "strongswan": charon_version(),
        "tshark": subprocess.run(
            ["tshark", "--version"], capture_output=True, text=True
        ).stdout.splitlines()[0],
        "ike_version": 1,
        "mode": "aggressive" if scen["aggressive"] else "main",
        "auth": "psk",
        "psk": scen["psk"],
        "initiator": {"ip": LEFT_IP, "id": "left@lab", "id_type": "ID_USER_FQDN"},
        "responder": {"ip": RIGHT_IP, "id": "right@lab", "id_type": "ID_USER_FQDN"},
        "ike_proposal": scen["proposals"],
        "ike_algorithms": ike_alg,
        "esp_proposal": scen["esp_proposals"],
        "esp_algorithms": esp_alg,
        "nat_t": "charon's kernel-libipsec fakes NAT detection: IKE floats to UDP 4500 after "
        "MM4/AM2 (non-ESP marker), ESP is UDP-encapsulated on 4500",
        "sources": {
            "psk": "strongSwan configuration of this script (charon 5.9.8 does not log the PSK)",
            "cky_i/cky_r": "vici list-sas (checked against the capture)",
            "ni_b/nr_b/g_xi/g_xr": "capture, plaintext phase-1 NONCE/KE payload bodies (not logged by charon)",
            "child ni_b/nr_b/g_x_i/g_x_r/spi_i/spi_r": "capture, Quick Mode payload bodies decrypted by tshark "
            "with the keys below (not logged by charon)",
            "everything else": "charon level-4 log, labels in log_labels; left (initiator) and right "
            "(responder) logs were checked to print identical bytes",
        },
        "log_labels": LOG_LABELS,
        "ike_sa": {
            "cky_i": cky_i,
            "cky_r": cky_r,
            "ni_b": ni[0],
            "nr_b": nr[0],
            "g_xi": gi[0],
            "g_xr": gr[0],
            **lf["ike"],
        },
        "children": children,
        "initiator_hashes": lf["hashes"],
        "initiator_iv_trace": lf["ivs"],
        "iv_trace_note": "charon's 'next IV for MID <mid>' lines of the initiator's log in order: the "
        "IV it will use for the next message of that exchange (MID 0 = phase 1). "
        "Printed after each message it encrypts or decrypts.",
        "exchanges": exchanges,
        "esp_frames": esp_frames,
    }
    facts["self_check"] = self_check(facts)
    facts["_listing"] = listing
    facts["_keys"] = keys
    return facts


def charon_version() -> str:
    out = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Version}", "strongswan-charon"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    return f"strongSwan 5.9.8 (Debian package {out})" if out else "strongSwan 5.9.8"


def write_outputs(scen: dict, facts: dict, pcap: Path) -> None:
    name = scen["name"]
    listing = facts.pop("_listing")
    keys_dir = DATA / f"{name}.keys"
    keys_dir.mkdir(exist_ok=True)
    for f, text in facts.pop("_keys").items():
        (keys_dir / f).write_text(text)
    shutil.copyfile(pcap, DATA / f"{name}.pcap")
    header = (
        f"# {name}.pcap dissected by {facts['tshark']} with {name}.keys/\n"
        "# frame\tdir\tudp ports\texchange type\tmessage id\tlabel\tpayloads (decrypted, in "
        "tshark's order; P/T are the proposal/transform substructures inside SA)\n"
    )
    esp = "".join(
        f"# ESP-in-UDP frame {f['frame']} {f['dir']} spi {f['spi']} seq {f['seq']} "
        f"icv_good={f['icv_good']}\n"
        for f in facts["esp_frames"]
    )
    (DATA / f"{name}.tshark.txt").write_text(header + "\n".join(listing) + "\n" + esp)
    (DATA / f"{name}.json").write_text(json.dumps(facts, indent=2) + "\n")
    print(
        f"   wrote {name}.pcap/.json/.tshark.txt/.keys ({len(facts['self_check'])} self-checks passed)"
    )


def main() -> int:
    global DATA
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--only", nargs="*", help="scenario names to (re)generate")
    ap.add_argument("--keep-logs", type=Path, help="copy the raw charon logs here")
    ap.add_argument("--out", type=Path, default=DATA, help="output directory (default: tests/data)")
    args = ap.parse_args()
    DATA = args.out.resolve()
    DATA.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        print("must run as root (network namespaces)", file=sys.stderr)
        return 2
    for scen in SCENARIOS:
        if args.only and scen["name"] not in args.only:
            continue
        if not scen.get("want_retransmit"):
            run_scenario(scen, args.keep_logs)
            continue
        out = DATA
        DATA = Path(tempfile.mkdtemp(prefix="iplcap-out-"))
        try:
            for attempt in range(1, scen["attempts"] + 1):
                run_scenario(scen, args.keep_logs)
                produced = sorted(DATA.iterdir())
                if (DATA / f"{scen['name']}.json").exists():
                    print(f"   retransmission captured in attempt {attempt}")
                    for f in produced:
                        dst = out / f.name
                        if dst.is_dir():
                            shutil.rmtree(dst)
                        shutil.move(str(f), str(dst))
                    break
                for f in produced:  # only the key tables of a run without retransmission
                    shutil.rmtree(f) if f.is_dir() else f.unlink()
            else:
                print(
                    f"   WARNING: no QM1 retransmission in {scen['attempts']} attempts; "
                    f"kept the previous {scen['name']} files",
                    file=sys.stderr,
                )
        finally:
            shutil.rmtree(DATA, ignore_errors=True)
            DATA = out
    return 0


if __name__ == "__main__":
    sys.exit(main())
