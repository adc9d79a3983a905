"""ipseclab against strongSwan 5.9.8's charon, on real sockets in a namespace lab.

All scenarios of :mod:`ipseclab.runtime.netlab.interop` run once, in one ``site_to_site`` lab (charon
restarted per scenario), in a module fixture; the tests below then judge the results:

* set-ups in both directions (ipseclab initiator -> charon responder and the reverse): Main
  Mode PSK, Main Mode with RSA certificates, Aggressive Mode PSK, Quick Mode with and without
  PFS, two children under one IKE SA.  charon's ``list-sas`` must show our cookies,
  algorithms and mirrored child SPIs, our Ka and ESP keys must equal charon's logged keys;
* failures are reported for what they are: a proposal mismatch names the attribute (as
  responder) or charon's NO_PROPOSAL_CHOSEN (as initiator), a wrong PSK is an authentication
  failure and never a timeout, in both directions;
* every capture is dissected by tshark with the key tables exported from our own trace
  (:func:`ipseclab.export.write_keys`): MM5/MM6 identities, Quick Modes and ESP decrypt.

Needs root, charon (Debian: strongswan-charon + plugins, see the Makefile), the ``vici``
package and tshark; otherwise the root tests skip and say why.  About 30 s in all.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

import pytest

from ipseclab.runtime.netlab.interop import SCENARIOS, InteropResult

UP = [n for n, s in SCENARIOS.items() if s.expect == "up"]
FAIL = [n for n, s in SCENARIOS.items() if s.expect == "fail"]


def _why_not() -> str | None:
    from ipseclab.runtime.netlab.charon import Charon

    if os.geteuid() != 0:
        return "needs root (network namespaces, charon)"
    problem = Charon.available()
    if problem:
        return problem
    if shutil.which("tshark") is None:
        return "tshark is not installed (Debian: apt-get install tshark)"
    if shutil.which("tcpdump") is None:
        return "tcpdump is not installed"
    return None


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, InteropResult]:
    reason = _why_not()
    if reason:
        print(f"skipping the charon interop tests: {reason}", file=sys.stderr)
        pytest.skip(reason)
    from ipseclab.runtime.netlab.interop import run_scenarios

    out = tmp_path_factory.mktemp("interop")
    t0 = time.monotonic()
    done = run_scenarios(None, out)
    print(f"\ncharon interop: {len(done)} scenarios in {time.monotonic() - t0:.1f} s, evidence in {out}", file=sys.stderr)
    for r in done:
        print(f"  {r.scenario:34} {'PASS' if r.passed else 'FAIL'} {r.seconds:5.2f} s  {r.summary}", file=sys.stderr)
    return {r.scenario: r for r in done}


def _explain(r: InteropResult) -> str:
    lines = [f"{r.scenario}: {r.summary}", *[c.describe() for c in r.checks]]
    lines += [f"ipseclab error: {e['code']}: {e['message']}" for e in r.our_errors]
    lines += [f"charon: {line}" for line in r.charon_errors[-15:]]
    if r.harness_error:
        lines.append(r.harness_error)
    lines.append(f"evidence: {r.workdir}")
    return "\n".join(lines)


def _check(r: InteropResult, prefix: str) -> list:
    return [c for c in r.checks if c.name.startswith(prefix)]


@pytest.mark.root
@pytest.mark.parametrize("name", UP)
def test_both_sides_agree(results: dict[str, InteropResult], name: str) -> None:
    """charon's list-sas == our SA table (cookies, algorithms, child SPIs), and the keys agree."""
    r = results[name]
    assert r.passed, _explain(r)
    scen = SCENARIOS[name]
    (cookies,) = _check(r, "IKE SPIs")
    assert cookies.ok, _explain(r)
    for algorithm in ("IKE encryption", "IKE PRF", "IKE DH group"):
        assert _check(r, algorithm) and all(c.ok for c in _check(r, algorithm)), _explain(r)
    assert len(r.our_sa_table["ipsec"]) == scen.children
    for i in range(1, scen.children + 1):
        for what in ("SPIs", "charon state", "ESP encryption", "ESP integrity", "PFS group"):
            assert [c.ok for c in _check(r, f"c{i}: {what}")] == [True], _explain(r)
    if scen.version == 1:
        assert [c.ok for c in _check(r, "phase-1 encryption key Ka")] == [True]
    else:  # all seven IKEv2 keys equal charon's logged ones, and the integrity algorithm agrees
        assert [c.ok for c in _check(r, "IKE key SK_")] == [True] * 7, _explain(r)
        assert [c.ok for c in _check(r, "IKE integrity")] == [True], _explain(r)
    assert len(_check(r, "ESP keys SPI")) == 2 * scen.children
    assert all(c.ok for c in _check(r, "ESP keys SPI")), _explain(r)
    (charon_ike,) = [s for s in r.charon_sas if s["state"] == "ESTABLISHED"]
    assert charon_ike["version"] == str(scen.version)
    pfs = {c.get("dh-group") for c in charon_ike["child-sas"].values()}
    if scen.version == 2 and scen.esp[0].pfs_group:  # IKEv2: the IKE_AUTH child has no KE of its own
        assert pfs == {None, "MODP_2048"}
    else:
        assert pfs == ({"MODP_2048"} if scen.esp[0].pfs_group else {None})


@pytest.mark.root
@pytest.mark.parametrize("name", UP)
def test_tshark_decrypts_the_capture_with_our_keys(results: dict[str, InteropResult], name: str) -> None:
    """Only the tables ipseclab.export.write_keys made from our events: tshark reads it all."""
    r = results[name]
    assert r.capture and Path(r.capture).stat().st_size > 0
    if SCENARIOS[name].version == 2:
        assert (Path(r.keys_ipseclab) / "ikev2_decryption_table").read_text().strip()
        opened = _check(r, "tshark opens")
        assert len(opened) == 2 + (SCENARIOS[name].children > 1) and all(c.ok for c in opened), _explain(r)
        assert any("inner ICMP" in line for line in r.tshark), r.tshark
        # ipseclab decode, given the same table, reads charon's messages and ours as tshark does
        assert [c.ok for c in _check(r, "our decode reads every IKE frame")] == [True], _explain(r)
        return
    assert (Path(r.keys_ipseclab) / "ikev1_decryption_table").read_text().strip()
    decrypted = _check(r, "tshark decrypts")
    assert decrypted and all(c.ok for c in decrypted), _explain(r)
    if SCENARIOS[name].mode == "main":
        id_frames = [line for line in r.tshark if " exch 2 " in line and "decrypted [ID" in line]
        assert len(id_frames) >= 2, r.tshark  # MM5 and MM6
    quick = [line for line in r.tshark if " exch 32 " in line and "encrypted, decrypted [HASH,SA,NONCE" in line]
    assert len(quick) >= 2 * SCENARIOS[name].children, r.tshark  # QM1 and QM2 per child
    assert any("inner ICMP" in line for line in r.tshark), r.tshark  # one ESP-in-UDP ping


@pytest.mark.root
def test_rsa_identities_are_the_certificate_dns(results: dict[str, InteropResult]) -> None:
    for name in ("main-rsa-to-charon", "main-rsa-from-charon"):
        r = results[name]
        assert r.passed, _explain(r)
        (sa,) = [s for s in r.charon_sas if s["state"] == "ESTABLISHED"]
        assert sa["local-id"] == "C=CH, O=ipseclab, CN=charon-right"
        assert sa["remote-id"] == "C=CH, O=ipseclab, CN=ipseclab-left"
        assert any("with RSA_EMSA_PKCS1_NULL successful" in line for line in r.charon_errors), r.charon_errors
        assert any("[ID,CERT,SIG" in line for line in r.tshark), r.tshark


@pytest.mark.root
def test_ikev2_certificates_with_rfc_7427(results: dict[str, InteropResult]) -> None:
    for name in ("v2-rsa-to-charon", "v2-rsa-from-charon"):
        r = results[name]
        assert r.passed, _explain(r)
        (sa,) = [s for s in r.charon_sas if s["state"] == "ESTABLISHED"]
        assert (sa["local-id"], sa["remote-id"]) == ("C=CH, O=ipseclab, CN=charon-right", "C=CH, O=ipseclab, CN=ipseclab-left")
        # charon verified our RFC 7427 signature (and signed its own the same way)
        assert any("CN=ipseclab-left' with RSA_EMSA_PKCS1_SHA2_256 successful" in line for line in r.charon_errors), r.charon_errors


@pytest.mark.root
@pytest.mark.parametrize("name", ["v2-ra-charon-gateway", "v2-ra-ours-gateway"])
def test_remote_access_virtual_ips_with_charon(results: dict[str, InteropResult], name: str) -> None:
    """charon leases us a virtual IP from its pool, and we lease charon one from ours."""
    r = results[name]
    assert r.passed, _explain(r)
    assert [c.ok for c in _check(r, "virtual IP")] == [True], _explain(r)
    assert [c.ok for c in _check(r, "the child is narrowed")] == [True], _explain(r)
    assert [c.ok for c in _check(r, "tshark decrypts the Configuration payloads")] == [True], _explain(r)
    (ike,) = [s for s in r.charon_sas if s["state"] == "ESTABLISHED"]
    assert (ike.get("local-vips") or ike.get("remote-vips")) == ["10.3.0.1"]


#: a user's password with charon both ways: (method, charon as gateway, charon as client, our wrong
#: password, charon's wrong password, what charon logs for each of those four, the ID key in list-sas,
#: what we say when charon refuses us, what we say when we refuse charon)
LOGINS = [
    ("EAP-MD5", "v2-ra-eap-charon-gateway", "v2-ra-eap-ours-gateway", "v2-ra-eap-wrong-password", "v2-ra-eap-charon-wrong-password",
     ("authentication of 'left@lab' with EAP successful", "CN=ipseclab-left' with EAP successful", "EAP-MD5 verification failed",
      "received EAP_FAILURE"), "remote-eap-id", "the gateway refused us (EAP Failure)", "the client typed a wrong password"),
    ("XAUTH", "v1-ra-xauth-charon-gateway", "v1-ra-xauth-ours-gateway", "v1-ra-xauth-wrong-password", "v1-ra-xauth-charon-wrong-password",
     ("XAuth authentication of 'alice' successful", "XAuth authentication of 'alice' (myself) successful",
      "XAuth authentication of 'alice' failed", "XAuth authentication of 'alice' (myself) failed"), "remote-xauth-id",
     "the gateway refused our login (XAUTH_STATUS = FAIL)", "a wrong password (XAUTH_STATUS = FAIL)"),
]


@pytest.mark.root
@pytest.mark.parametrize("login", LOGINS, ids=lambda row: row[0])
def test_user_passwords_with_charon_both_ways(results: dict[str, InteropResult], login: tuple) -> None:
    """The road warrior logs in with a password — EAP-MD5 in IKE_AUTH, or XAUTH after Main Mode —
    to charon and charon to us; a wrong password on either side is refused and said in words."""
    _, theirs, ours, wrong_ours, wrong_theirs, logged, id_key, refused_us, we_refused = login
    for name, words in zip((theirs, ours, wrong_ours, wrong_theirs), logged, strict=True):
        assert any(words in line for line in results[name].charon_errors), _explain(results[name])
    r = results[theirs]  # charon checks our password; its pool gives us 10.3.0.1
    assert r.passed, _explain(r)
    (ike,) = [s for s in r.charon_sas if s["state"] == "ESTABLISHED"]
    assert (ike[id_key], ike["remote-vips"]) == ("alice", ["10.3.0.1"])
    r = results[ours]  # we check charon's, and lease it 10.3.0.1
    assert r.passed, _explain(r)
    assert [c.ok for c in _check(r, "the gateway names the client's EAP identity")] == [True], _explain(r)
    assert any(refused_us in e["message"] for e in results[wrong_ours].our_errors), results[wrong_ours].our_errors
    assert any(we_refused in e["message"] for e in results[wrong_theirs].our_errors), results[wrong_theirs].our_errors


@pytest.mark.root
@pytest.mark.parametrize("name", ["v1-ra-xauth-charon-gateway", "v1-ra-xauth-ours-gateway", "v1-ra-push-charon-gateway",
                                  "v1-ra-push-ours-gateway"])
def test_xauth_and_mode_config_transactions_with_charon(results: dict[str, InteropResult], name: str) -> None:
    """IKEv1: every Transaction (XAUTH, Mode Config pull or push) opened by tshark with our keys."""
    r = results[name]
    assert r.passed, _explain(r)
    assert [c.ok for c in _check(r, "tshark decrypts every Transaction")] == [True], _explain(r)
    assert [c.ok for c in _check(r, "virtual IP")] == [True], _explain(r)


@pytest.mark.root
@pytest.mark.parametrize("name", FAIL)
def test_failures_are_reported_for_what_they_are(results: dict[str, InteropResult], name: str) -> None:
    r = results[name]
    assert r.passed, _explain(r)
    codes = [e["code"] for e in r.our_errors]
    assert "TIMEOUT" not in codes
    assert SCENARIOS[name].expect_error in codes
    assert r.seconds < 8, f"{name} took {r.seconds} s: a failure must not wait for a timeout"


@pytest.mark.root
def test_phase1_mismatch_explanations(results: dict[str, InteropResult]) -> None:
    # as responder: the policy decision names the one attribute that differs
    r = results["ike-mismatch-from-charon"]
    assert any("Hash algorithm offered does not match policy! (offered SHA2-256, policy 10 has SHA1)" in line for line in r.our_policy), r.our_policy
    assert any("received NO_PROPOSAL_CHOSEN error notify" in line for line in r.charon_errors), _explain(r)
    # as initiator: charon's NO_PROPOSAL_CHOSEN, in words
    r = results["ike-mismatch-to-charon"]
    (err,) = [e for e in r.our_errors if e["code"] == "PEER_NO_PROPOSAL_CHOSEN"]
    assert "rejected every transform we offered (NO_PROPOSAL_CHOSEN)" in err["message"]
    assert any("no proposal found" in line for line in r.charon_errors), _explain(r)


@pytest.mark.root
def test_phase2_mismatch_explanations(results: dict[str, InteropResult]) -> None:
    r = results["esp-mismatch-from-charon"]
    assert any("integrity" in line.lower() for line in r.our_policy), r.our_policy
    r = results["esp-mismatch-to-charon"]
    assert [e["notify"] for e in r.our_errors if e["code"] == "PEER_NO_PROPOSAL_CHOSEN"] == [14]


@pytest.mark.root
def test_ikev2_refusals_in_words(results: dict[str, InteropResult]) -> None:
    r = results["v2-ike-mismatch-from-charon"]  # we respond: the transform type that differs is named
    (err,) = [e for e in r.our_errors if e["code"] == "NO_PROPOSAL_CHOSEN"]
    assert "PRF offered (PRF_HMAC_SHA2_256) does not include PRF_HMAC_SHA1 of policy 10" in err["message"], err
    assert any("received NO_PROPOSAL_CHOSEN notify error" in line for line in r.charon_errors), _explain(r)
    r = results["v2-ike-mismatch-to-charon"]  # charon responds: its notify, in words
    (err,) = [e for e in r.our_errors if e["code"] == "NO_PROPOSAL_CHOSEN"]
    assert "accepts none of our IKE proposals" in err["message"], err


@pytest.mark.root
def test_ikev2_pfs_child_by_create_child_sa(results: dict[str, InteropResult]) -> None:
    for name in ("v2-sha256-pfs-to-charon", "v2-sha256-pfs-from-charon"):
        r = results[name]
        assert r.passed, _explain(r)
        (charon_ike,) = [s for s in r.charon_sas if s["state"] == "ESTABLISHED"]
        groups = sorted(str(c.get("dh-group")) for c in charon_ike["child-sas"].values())
        assert groups == ["MODP_2048", "None"], groups  # the IKE_AUTH child has no KE of its own


@pytest.mark.root
@pytest.mark.parametrize("name", ["wrong-psk-to-charon", "wrong-psk-from-charon", "wrong-psk-aggressive-to-charon",
                                  "wrong-psk-aggressive-from-charon", "v2-wrong-psk-from-charon"])
def test_wrong_psk_is_an_authentication_failure(results: dict[str, InteropResult], name: str) -> None:
    r = results[name]
    (err,) = [e for e in r.our_errors if e["code"] == "AUTHENTICATION_FAILED"]
    assert "pre-shared keys differ" in err["message"], err
    assert not r.established and not any(s.get("state") == "ESTABLISHED" for s in r.charon_sas)


@pytest.mark.root
def test_cli_interop_prints_a_table(tmp_path: Path, run_ipseclab) -> None:  # noqa: ANN001
    reason = _why_not()
    if reason:
        pytest.skip(reason)
    result = run_ipseclab("interop", "--scenario", "main-psk-to-charon", "wrong-psk-from-charon", "--out", str(tmp_path), timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["scenario", "result", "seconds", "verdict"]
    assert lines[1].startswith("main-psk-to-charon") and " PASS " in lines[1]
    assert lines[2].startswith("wrong-psk-from-charon") and "AUTHENTICATION_FAILED" in lines[2]
    assert (tmp_path / "main-psk-to-charon" / "result.json").exists()
    assert (tmp_path / "main-psk-to-charon" / "capture.pcap").exists()


# -- pieces that need no root --------------------------------------------------------------------

LOG = """\
10[MGR] checkout IKEv1 SA by message with SPIs 1111111111111111_i 0000000000000000_r
10[IKE] encryption key Ka => 4 bytes @ 0x1
10[IKE]    0: 01 02 03 04                                      ....
10[MGR] checkin IKEv1 SA (unnamed)[1] with SPIs 1111111111111111_i 2222222222222222_r
12[CHD]   using AES_CBC for encryption
12[CHD]   using HMAC_SHA1_96 for integrity
12[CHD] initiator SA seed => 9 bytes @ 0x2
12[CHD]    0: 03 AA AA AA AA 00 00 00 00                       .........
12[CHD] responder SA seed => 9 bytes @ 0x3
12[CHD]    0: 03 BB BB BB BB 00 00 00 00                       .........
12[CHD] encryption initiator key => 2 bytes @ 0x4
12[CHD]    0: 0A 0A                                            ..
12[CHD] encryption responder key => 2 bytes @ 0x5
12[CHD]    0: 0B 0B                                            ..
12[CHD] integrity initiator key => 2 bytes @ 0x6
12[CHD]    0: 1A 1A                                            ..
12[CHD] integrity responder key => 2 bytes @ 0x7
12[CHD]    0: 1B 1B                                            ..
12[CHD] adding inbound ESP SA
12[CHD]   SPI 0xbbbbbbbb, src 10.99.0.1 dst 10.99.0.2
12[CHD] adding outbound ESP SA
12[CHD]   SPI 0xaaaaaaaa, src 10.99.0.2 dst 10.99.0.1
12[IKE] CHILD_SA c1{1} established with SPIs bbbbbbbb_i aaaaaaaa_o and TS 10.2.0.1/32 === 10.1.0.1/32
"""


def test_keys_from_log_ties_keys_to_cookies_and_spis() -> None:
    from ipseclab.runtime.netlab.charonlog import keys_from_log

    keys = keys_from_log(LOG)
    assert keys.ka("1111111111111111/2222222222222222") == "01020304"
    assert keys.ikev1_decryption_rows() == ["1111111111111111,01020304"]
    # the SPI inside each KEYMAT seed says which keys protect which SA
    assert (keys.esp["aaaaaaaa"].encryption_key, keys.esp["aaaaaaaa"].integrity_key) == ("0a0a", "1a1a")
    assert (keys.esp["bbbbbbbb"].encryption_key, keys.esp["bbbbbbbb"].integrity_key) == ("0b0b", "1b1b")
    assert keys.esp["aaaaaaaa"].child == "c1" and keys.esp["aaaaaaaa"].direction == "outbound"
    assert keys.esp_sa_rows()[0].startswith('"IPv4","10.99.0.1","10.99.0.2","0xbbbbbbbb","AES-CBC [RFC3602]","0x0b0b"')


def test_peer_spec_round_trips_and_builds_a_config(tmp_path: Path) -> None:
    from ipseclab.runtime.netlab.runpeer import ChildSpec, EspProposal, PeerSpec, build_config

    spec = PeerSpec(
        name="x",
        address="10.99.0.1",
        remote="10.99.0.2",
        mode="aggressive",
        psk="p",
        identity="left@lab",
        esp=[EspProposal(pfs_group=14)],
        children=[ChildSpec("c1", "10.1.0.1/32", "10.2.0.1/32")],
    )
    again = PeerSpec.from_json(spec.to_json())
    assert again == spec
    cfg = build_config(again)
    (conn,) = cfg.connections
    assert conn.mode == "aggressive" and conn.children[0].pfs_group == 14 and cfg.psk == b"p"
    assert not cfg.include_default_policy
