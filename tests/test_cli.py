"""The ``ipseclab`` command line, run as a user runs it (``python -m ipseclab.cli`` subprocesses).

* ``demo`` exit codes and the per-message lines with their textbook notation;
* ``demo --json``: JSON lines, no secret values, the result last;
* ``demo --pcap F --keys D``: tshark, given only the exported key tables, decrypts every
  encrypted message and shows the payloads the notation promises (identities, hashes, Quick
  Mode SA/Nonce/KE/ID); our own ``decode --keys D`` lists the same payload chains; the ESP rows
  are accepted by tshark and decrypt ESP packets made with the peers' own SA keys;
* the key files are private (0600) and nothing secret is printed without ``--keys``.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from conftest import ipseclab

from ipseclab.demo import LEFT_ADDRESS, RIGHT_ADDRESS

# "  7   left -> right  Quick Mode      #1  HDR*, HASH(1), SA, Ni, IDci, IDcr   192.0.2.1:500 -> ..."
LINE = re.compile(
    r"^\s*(?P<n>\d+)\s+(?P<src>left|right) -> (?P<dst>left|right)\s+"
    r"(?P<exchange>Main Mode|Aggressive Mode|Quick Mode|Informational)\s+#(?P<index>\d+)\s+"
    r"(?P<summary>HDR\*?(?:, \S+)*)\s{2,}(?P<from>\S+):(?P<sport>\d+) -> (?P<to>\S+):(?P<dport>\d+)"
    r"(?P<again>  \(retransmission\))?$"
)
ADDRESS = {"left": LEFT_ADDRESS, "right": RIGHT_ADDRESS}

I2R, R2I = ("left", "right"), ("right", "left")
MAIN_PSK = [
    (*I2R, "Main Mode", 1, "HDR, SA, VID, VID, VID, VID, VID"),
    (*R2I, "Main Mode", 2, "HDR, SA, VID, VID"),
    (*I2R, "Main Mode", 3, "HDR, KE, Ni, NAT-D, NAT-D"),
    (*R2I, "Main Mode", 4, "HDR, KE, Nr, NAT-D, NAT-D"),
    (*I2R, "Main Mode", 5, "HDR*, IDii, HASH_I"),
    (*R2I, "Main Mode", 6, "HDR*, IDir, HASH_R"),
]
MAIN_RSA = [
    *MAIN_PSK[:2],
    (*I2R, "Main Mode", 3, "HDR, KE, Ni, CR, NAT-D, NAT-D"),
    (*R2I, "Main Mode", 4, "HDR, KE, Nr, CR, NAT-D, NAT-D"),
    (*I2R, "Main Mode", 5, "HDR*, IDii, CERT, SIG_I"),
    (*R2I, "Main Mode", 6, "HDR*, IDir, CERT, SIG_R"),
]
AGGRESSIVE = [
    (*I2R, "Aggressive Mode", 1, "HDR, SA, KE, Ni, IDii, VID, VID, VID, VID, VID"),
    (*R2I, "Aggressive Mode", 2, "HDR, SA, KE, Nr, IDir, HASH_R, VID, VID, NAT-D, NAT-D"),
    (*I2R, "Aggressive Mode", 3, "HDR*, HASH_I, NAT-D, NAT-D"),
]


def quick_mode(pfs: bool) -> list[tuple]:
    ke = ", KE" if pfs else ""
    return [
        (*I2R, "Quick Mode", 1, f"HDR*, HASH(1), SA, Ni{ke}, IDci, IDcr"),
        (*R2I, "Quick Mode", 2, f"HDR*, HASH(2), SA, Nr{ke}, IDci, IDcr"),
        (*I2R, "Quick Mode", 3, "HDR*, HASH(3)"),
    ]


def message_lines(stdout: str) -> list[tuple]:
    """(from, to, exchange, index, notation) per printed message, checking numbering and addresses."""
    out = []
    for line in stdout.splitlines():
        m = LINE.match(line)
        if not m:
            continue
        assert int(m["n"]) == len(out) + 1, line
        assert (m["from"], m["to"]) == (ADDRESS[m["src"]], ADDRESS[m["dst"]]), line
        assert m["sport"] == m["dport"] == "500" and not m["again"], line
        out.append((m["src"], m["dst"], m["exchange"], int(m["index"]), m["summary"]))
    return out


SUCCESS = {
    "main": (["--mode", "main"], MAIN_PSK, 1, False),
    "aggressive": (["--mode", "aggressive"], AGGRESSIVE, 1, False),
    "rsa": (["--auth", "rsa"], MAIN_RSA, 1, False),
    "pfs14": (["--pfs", "14"], MAIN_PSK, 1, True),
    "policies2": (["--policies", "2"], MAIN_PSK, 2, False),
    "policies2_pfs14": (["--policies", "2", "--pfs", "14"], MAIN_PSK, 2, True),
}


@pytest.mark.parametrize("case", SUCCESS)
def test_demo_succeeds_with_one_line_per_message(case: str) -> None:
    args, phase1, policies, pfs = SUCCESS[case]
    result = ipseclab("demo", "--ike", "v1", *args, "--seed", "7")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.rstrip().endswith("result: phase 1 and all Quick Modes established")
    lines = message_lines(result.stdout)
    assert len(lines) == len(phase1) + 3 * policies
    assert lines[: len(phase1)] == phase1
    # several Quick Modes may interleave; each one contributes the three messages
    assert Counter(lines[len(phase1) :]) == Counter(quick_mode(pfs) * policies)
    phase2 = re.findall(
        r"^phase 2: net(\d+): 10\.1\.\1\.0/24 <-> 10\.2\.\1\.0/24 ", result.stdout, re.M
    )
    assert phase2 == [str(i) for i in range(1, policies + 1)]
    assert re.search(r"^phase 1: ISAKMP SA established: ", result.stdout, re.M)


def test_demo_proposal_mismatch_fails_with_explanation() -> None:
    result = ipseclab("demo", "--ike", "v1", "--mode", "main", "--mismatch")
    assert result.returncode == 1
    assert "Hash algorithm offered does not match policy" in result.stdout
    assert "NO_PROPOSAL_CHOSEN" in result.stdout
    assert "result: FAILED" in result.stdout
    lines = message_lines(result.stdout)
    assert lines[0] == MAIN_PSK[0]
    assert lines[1:] == [(*R2I, "Informational", 1, "HDR, N(NO_PROPOSAL_CHOSEN)")]


def test_demo_ikev2_four_messages_and_the_pcap_tshark_reads(tmp_path) -> None:  # noqa: ANN001
    result = ipseclab("demo", "--ike", "v2", "--seed", "3", "--pcap", str(tmp_path / "v2.pcap"), "--keys", str(tmp_path / "keys"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("IKEv2, pre-shared key")
    lines = [line for line in result.stdout.splitlines() if "->" in line and ("IKE_SA_INIT" in line or "IKE_AUTH" in line)]
    assert [line.split()[4] for line in lines] == ["IKE_SA_INIT", "IKE_SA_INIT", "IKE_AUTH", "IKE_AUTH"]
    assert "result: the IKE SA and all child SAs established" in result.stdout
    assert (tmp_path / "keys" / "ikev2_decryption_table").read_text().count(",") == 7
    decoded = ipseclab("decode", str(tmp_path / "v2.pcap"), "--keys", str(tmp_path / "keys"), "--brief")
    assert "IKE_AUTH #1 (M-ID 00000001): HDR, SK {IDi, AUTH, N(INITIAL_CONTACT), SAi2, TSi, TSr} [decrypted]" in decoded.stdout


def test_demo_wrong_psk_fails_and_blames_the_psk() -> None:
    result = ipseclab("demo", "--ike", "v1", "--wrong-psk")
    assert result.returncode == 1
    assert "result: FAILED" in result.stdout
    explanation = result.stdout.split("result: FAILED", 1)[1]
    assert "pre-shared key" in explanation
    lines = message_lines(result.stdout)
    assert lines[:5] == MAIN_PSK[:5]  # the responder cannot read MM5
    assert not [x for x in lines if x[2] == "Quick Mode"]


@pytest.mark.parametrize("args", [["--policies", "0"], ["--ike", "v2", "--mode", "aggressive"]])
def test_demo_usage_errors(args: list[str]) -> None:
    result = ipseclab("demo", *args)
    assert result.returncode == 2
    assert result.stderr.strip()


# ------------------------------------------------------------------------------------- --json


@pytest.mark.parametrize(
    ("args", "established"),
    [(["--pfs", "14"], True), (["--mode", "aggressive"], True), (["--mismatch"], False)],
)
def test_demo_json(args: list[str], established: bool) -> None:
    result = ipseclab("demo", "--json", "--seed", "5", *args)
    assert result.returncode == (0 if established else 1)
    events = [json.loads(line) for line in result.stdout.splitlines()]
    *trace, last = events
    assert last["kind"] == "result" and last["established"] is established
    assert all(e["kind"] != "result" for e in trace)
    if established:
        assert last["explanation"] == []
        keys = [e for e in trace if e["kind"] == "key"]
        assert keys, "keying is traced"
        assert {"SKEYID", "SKEYID_d", "SKEYID_a", "SKEYID_e"} <= {k["name"] for k in keys}
        assert all(k["value"] == "<secret>" for k in keys), [
            k for k in keys if k["value"] != "<secret>"
        ]
    else:
        assert any("NO_PROPOSAL_CHOSEN" in line for line in last["explanation"])
    # the JSON trace and the plain listing show the same messages
    plain = ipseclab("demo", "--seed", "5", *args)
    sent = [e for e in trace if e["kind"] == "message" and e["direction"] == "sent"]
    assert [(e["peer"], e["exchange"], e["index"], e["summary"]) for e in sent] == [
        (x[0], x[2], x[3], x[4]) for x in message_lines(plain.stdout)
    ]


# --------------------------------------------------------------------- --pcap/--keys and tshark

EXPORT = {
    "main": (["--seed", "11"], "main", 1, False),
    "rsa": (["--auth", "rsa", "--seed", "12"], "main", 1, False),
    "aggressive": (["--mode", "aggressive", "--seed", "13"], "aggressive", 1, False),
    "policies2_pfs14": (["--policies", "2", "--pfs", "14", "--seed", "14"], "main", 2, True),
}


@pytest.fixture(scope="module", params=EXPORT)
def exported(request, tmp_path_factory, tshark):
    from ipseclab.export import tshark_options

    args, mode, policies, pfs = EXPORT[request.param]
    d = tmp_path_factory.mktemp(request.param)
    pcap, keys = d / "demo.pcap", d / "keys"
    result = ipseclab("demo", "--ike", "v1", *args, "--pcap", str(pcap), "--keys", str(keys))
    assert result.returncode == 0, result.stdout
    n = (6 if mode == "main" else 3) + 3 * policies
    assert f"wrote {n} packets to {pcap}" in result.stdout
    frames, stderr = tshark(pcap, tshark_options(keys))
    return request.param, mode, policies, pfs, pcap, keys, frames, stderr, result.stdout


def test_key_files_are_private_and_well_formed(exported) -> None:
    _, _, policies, _, _, keys, _, _, _ = exported
    for name in ("ikev1_decryption_table", "esp_sa"):
        assert stat.S_IMODE((keys / name).stat().st_mode) == 0o600, name
    (row,) = (keys / "ikev1_decryption_table").read_text().splitlines()
    assert re.fullmatch(r"[0-9a-f]{16},[0-9a-f]{32}", row), row  # AES-128 Ka, unquoted
    esp = (keys / "esp_sa").read_text().splitlines()
    assert len(esp) == 2 * policies  # one row per direction
    assert len({r.split(",")[3] for r in esp}) == len(esp)


def test_tshark_accepts_the_exported_tables(exported) -> None:
    *_, stderr, _ = exported
    # a rejected UAT row makes tshark exit 1 with 'Invalid -o flag ... invalid value'
    assert "invalid" not in stderr.lower(), stderr


def test_tshark_decrypts_phase1_with_exported_keys(exported) -> None:
    case, mode, *_, frames, _, _ = exported
    if mode == "main":
        mm5, mm6 = frames[5], frames[6]
        assert mm5.encrypted and mm6.encrypted
        expected = [5, 6, 9] if case == "rsa" else [5, 8]  # ID, CERT, SIG / ID, HASH
        assert mm5.payload_types == mm6.payload_types == expected
        if case == "rsa":
            # ID_DER_ASN1_DN: the subject of the peer's certificate (CN=left / CN=right)
            for f, cn in ((mm5, b"left"), (mm6, b"right")):
                (dn,) = f.payload(5)[0].values["isakmp.id.data.der_asn1_dn"]
                assert bytes.fromhex(dn).endswith(b"\x03\x0c" + bytes([len(cn)]) + cn)
                assert len(f.payload(9)[0].values["isakmp.sig"][0]) == 2 * 256  # RSA-2048
        else:
            assert mm5.payload(5)[0].fields["isakmp.id.data.ipv4_addr"] == [LEFT_ADDRESS]
            assert mm6.payload(5)[0].fields["isakmp.id.data.ipv4_addr"] == [RIGHT_ADDRESS]
            for f in (mm5, mm6):
                (value,) = f.payload(8)[0].values["isakmp.hash"]
                assert len(value) == 40  # HMAC-SHA1
        assert all(not frames[n].encrypted for n in (1, 2, 3, 4))
    else:
        am1, am2, am3 = frames[1], frames[2], frames[3]
        assert am1.payload(5)[0].fields["isakmp.id.data.user_fqdn"] == ["left@lab"]
        assert am2.payload(5)[0].fields["isakmp.id.data.user_fqdn"] == ["right@lab"]
        assert am3.payload_types == [8, 20, 20]
        assert len(am2.payload(8)[0].values["isakmp.hash"][0]) == 40


def test_tshark_decrypts_every_quick_mode_message(exported) -> None:
    _, _, policies, pfs, _, _, frames, _, _ = exported
    quick: dict[int, list] = {}
    for n in sorted(frames):
        if frames[n].exchange_type == 32:
            quick.setdefault(frames[n].message_id, []).append(frames[n])
    assert len(quick) == policies
    ke = [4] if pfs else []
    children = set()
    for qm1, qm2, qm3 in quick.values():
        assert qm1.encrypted and qm2.encrypted and qm3.encrypted
        assert qm1.payload_types == qm2.payload_types == [8, 1, 10, *ke, 5, 5]
        assert qm3.payload_types == [8]
        for msg in (qm1, qm2):
            idci, idcr = (p.fields["isakmp.id.data.ipv4_addr"] for p in msg.payload(5))
            i = idci[0].split(".")[2]
            assert (idci, idcr) == ([f"10.1.{i}.0"], [f"10.2.{i}.0"])
            children.add(int(i))
            for p in msg.payload(5):
                assert p.fields["isakmp.id.data.ipv4_subnet"] == ["255.255.255.0"]
            assert len(msg.payload(10)[0].values["isakmp.nonce"][0]) >= 2 * 8
            if pfs:  # MODP-2048 public value
                assert len(msg.payload(4)[0].values["isakmp.key_exchange.data"][0]) == 2 * 256
    assert children == set(range(1, policies + 1))


def test_our_decoder_agrees_with_tshark_on_the_demo_capture(exported) -> None:
    _, _, _, _, pcap, keys, frames, _, _ = exported
    result = ipseclab("decode", "--json", "--keys", str(keys), str(pcap))
    assert result.returncode == 0
    ours = [json.loads(line) for line in result.stdout.splitlines()]
    assert [p["number"] for p in ours] == sorted(frames)
    for p in ours:
        f = frames[p["number"]]
        assert p["kind"] == "isakmp"
        assert (p["exchange_type"], p["message_id"], p["encrypted"]) == (
            f.exchange_type,
            f.message_id,
            f.encrypted,
        )
        assert p["decrypted"] is (True if p["encrypted"] else None)
        assert p["payload_types"] == f.payload_types, p["number"]


def test_exported_esp_rows_decrypt_the_peers_esp(tmp_path: Path, tshark) -> None:
    """ESP made by scapy with each SA's own keys (from the peer objects of an identical seeded
    run) is decrypted and authenticated by tshark using only the CLI's esp_sa rows."""
    from scapy.layers.inet import ICMP, IP
    from scapy.layers.ipsec import ESP, SecurityAssociation
    from scapy.utils import wrpcap

    from ipseclab.demo import DemoOptions, run_demo
    from ipseclab.export import tshark_options

    keys = tmp_path / "keys"
    assert ipseclab("demo", "--seed", "31", "--policies", "2", "--keys", str(keys)).returncode == 0
    run = run_demo(DemoOptions(seed=31, policies=2))
    (row,) = (keys / "ikev1_decryption_table").read_text().splitlines()
    # the in-process run is the CLI's run (same seed, same initiator cookie)
    assert [sa.icookie.hex() for sa in run.left.ike_sas.values()] == [row.split(",")[0]]
    packets, expected = [], []
    for i, pair in enumerate(run.left.child_sas, 1):
        assert (pair.inbound.encryption, pair.inbound.integrity) == ("AES-CBC-128", "HMAC-SHA1")
        for sa, inner in (
            (pair.outbound, IP(src=f"10.1.{i}.1", dst=f"10.2.{i}.1") / ICMP(type=8, id=i)),
            (pair.inbound, IP(src=f"10.2.{i}.1", dst=f"10.1.{i}.1") / ICMP(type=0, id=i)),
        ):
            esa = SecurityAssociation(
                ESP,
                spi=sa.spi,
                crypt_algo="AES-CBC",
                crypt_key=sa.enc_key,
                auth_algo="HMAC-SHA1-96",
                auth_key=sa.integ_key,
                tunnel_header=IP(src=sa.src, dst=sa.dst),
            )
            packets.append(esa.encrypt(inner))
            expected.append((sa.spi, inner[IP].src, inner[ICMP].type))
    assert len(packets) == 4
    pcap = tmp_path / "esp.pcap"
    wrpcap(str(pcap), packets)
    fields = [
        "-T",
        "fields",
        "-e",
        "esp.spi",
        "-e",
        "esp.icv_good",
        "-e",
        "ip.src",
        "-e",
        "icmp.type",
    ]

    def run_tshark(options: list[str]) -> list[list[str]]:
        out = subprocess.run(
            [
                "tshark",
                "-r",
                str(pcap),
                *options,
                "-o",
                "esp.enable_authentication_check:TRUE",
                *fields,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        assert "invalid" not in out.stderr.lower(), out.stderr
        return [line.split("\t") for line in out.stdout.splitlines()]

    rows = run_tshark(tshark_options(keys))
    assert [(int(r[0], 16), r[2].split(",")[-1], int(r[3])) for r in rows] == expected
    assert all(r[1] in ("1", "True") for r in rows), rows
    # without the esp_sa rows tshark sees nothing inside: the rows did the decrypting
    bare = run_tshark(["-o", "esp.enable_encryption_decode:TRUE"])
    assert all(r[3] == "" for r in bare), bare


# ------------------------------------------------------------------------------------ secrets


def test_no_secret_is_printed_without_keys(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    with_keys = ipseclab("demo", "--seed", "21", "--pfs", "14", "--keys", str(keys))
    assert with_keys.returncode == 0
    (row,) = (keys / "ikev1_decryption_table").read_text().splitlines()
    icookie, ka = row.split(",")
    secrets = [ka]
    spis = []
    for esp in (keys / "esp_sa").read_text().splitlines():
        cols = [c.strip('"') for c in esp.split(",")]
        spis.append(cols[3].removeprefix("0x"))
        secrets += [cols[5].removeprefix("0x"), cols[7].removeprefix("0x")]
    assert len(secrets) == 5 and all(len(s) >= 32 for s in secrets)
    secrets += ["ipseclab-demo-psk", b"ipseclab-demo-psk".hex()]

    plain = ipseclab("demo", "--seed", "21", "--pfs", "14")
    as_json = ipseclab("demo", "--seed", "21", "--pfs", "14", "--json")
    # the same seeded run: its SPIs and cookie are printed, so absent keys mean hidden keys
    assert all(spi in plain.stdout for spi in spis)
    assert f'"icookie": "{icookie}"' in as_json.stdout
    for out in (with_keys, plain, as_json):
        text = (out.stdout + out.stderr).lower()
        leaked = [s for s in secrets if s.lower() in text]
        assert not leaked


def test_key_files_stay_private_under_a_permissive_umask(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.mkdir()
    stale = keys / "esp_sa"  # a world-readable leftover is replaced and made private
    stale.write_text("stale\n")
    stale.chmod(0o644)
    old = os.umask(0)
    try:
        result = ipseclab("demo", "--seed", "3", "--keys", str(keys))
    finally:
        os.umask(old)
    assert result.returncode == 0
    for name in ("ikev1_decryption_table", "esp_sa"):
        mode = stat.S_IMODE((keys / name).stat().st_mode)
        assert mode == 0o600, oct(mode)
    assert "stale" not in stale.read_text() and stale.read_text().count("\n") == 2


def test_demo_remote_access_gets_a_virtual_ip_and_pings_from_it() -> None:
    result = ipseclab("demo", "--ike", "v2", "--remote-access", "--seed", "2", "--ping", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "CP(CFG_REQUEST)" in result.stdout and "CP(CFG_REPLY)" in result.stdout
    assert "virtual IP 10.3.0.1 from the gateway's pool" in result.stdout
    assert "ping 10.3.0.1 -> 10.2.1.1 through ESP: 2 sent, 2 received, 0 lost" in result.stdout
    refused = ipseclab("demo", "--remote-access", "--mode", "aggressive")
    assert refused.returncode == 2 and "uses Main Mode" in refused.stderr


def test_demo_remote_access_with_an_eap_password_and_a_wrong_one(tmp_path: Path) -> None:
    result = ipseclab("demo", "--ike", "v2", "--remote-access", "--eap", "--auth", "rsa", "--seed", "2", "--ping", "1",
                      "--pcap", str(tmp_path / "eap.pcap"), "--keys", str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    for step in ("EAP(Request/Identity)", "EAP(Response/Identity)", "EAP(Request/MD5-Challenge)",
                 "EAP(Response/MD5-Challenge)", "EAP(Success)", "HDR, SK {AUTH}"):
        assert step in result.stdout, step
    assert "the gateway by RSA signature, left by EAP-MD5 as 'alice'" in result.stdout
    assert "2 received" not in result.stdout and "1 sent, 1 received, 0 lost" in result.stdout
    decoded = ipseclab("decode", str(tmp_path / "eap.pcap"), "--keys", str(tmp_path))
    assert decoded.returncode == 0, decoded.stderr
    assert decoded.stdout.count("EAP") >= 6, decoded.stdout
    # decode numbers IKE_AUTH's rounds as the demo does: AUTH1 … AUTH8, whatever the Message IDs
    numbers = [int(n) for n in re.findall(r"IKE_AUTH #(\d) \(M-ID", decoded.stdout)]  # AUTH2 comes in two fragments
    assert numbers == sorted(numbers) and sorted(set(numbers)) == list(range(1, 9)), numbers
    wrong = ipseclab("demo", "--ike", "v2", "--remote-access", "--wrong-password", "--seed", "2")
    assert wrong.returncode != 0 and "EAP(Failure)" in wrong.stdout
    assert "the client typed a wrong password" in wrong.stdout
    refused = ipseclab("demo", "--ike", "v2", "--eap")
    assert refused.returncode == 2 and "add --remote-access" in refused.stderr


def test_demo_ikev1_remote_access_with_xauth_and_a_wrong_password() -> None:
    result = ipseclab("demo", "--remote-access", "--xauth", "--seed", "2", "--ping", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("Transaction") == 6 and "ATTR(SET)" in result.stdout
    assert "XAUTHInitPreShared (pre-shared key + XAUTH)" in result.stdout
    assert "net1: 10.3.0.1/32 <-> 10.2.1.0/24" in result.stdout and "1 sent, 1 received, 0 lost" in result.stdout
    wrong = ipseclab("demo", "--remote-access", "--xauth", "--wrong-password", "--seed", "2")
    assert wrong.returncode != 0 and "a wrong password (XAUTH_STATUS = FAIL)" in wrong.stdout
    refused = ipseclab("demo", "--remote-access", "--eap")
    assert refused.returncode == 2 and "--eap is IKEv2's" in refused.stderr
