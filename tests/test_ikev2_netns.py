"""IKEv2 between two ipseclab daemons in network namespaces (root): certificates (RFC 7427,
IKE_AUTH in SKF fragments), a second child with PFS, a child rekey on real time, a ping
through our ESP before and after, and a delete that takes both sides down."""

from __future__ import annotations

import os
import sys
import time

import pytest

pytestmark = pytest.mark.root

if os.geteuid() != 0:
    print("skipping the IKEv2 namespace tests: needs root (network namespaces, TUN); CI runs as root", file=sys.stderr)
    pytest.skip("needs root (network namespaces, TUN)", allow_module_level=True)

from ipseclab.demo import DemoOptions  # noqa: E402
from ipseclab.runtime.netlab.peers import NetLab  # noqa: E402
from ipseclab.runtime.netlab.pinger import ping  # noqa: E402


def _wait(predicate, timeout: float, what: str) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _ping(lab: NetLab, child: int = 0) -> int:
    topo = lab.topology
    return ping(topo, "left", topo.hosts["left"].protected[child], topo.hosts["right"].protected[child], count=3).received


def test_certificates_two_children_a_rekey_and_a_delete_between_daemons() -> None:
    opts = DemoOptions(version=2, auth="rsa", pfs=19, policies=2, esp_lifetime_left=20, seed=5)
    with NetLab(f"v2{os.getpid() % 100000}", "site-to-site", opts, dataplane=True).up() as lab:
        left, right = lab.clients["left"], lab.clients["right"]
        left.initiate("site")
        _wait(lambda: len(left.list_sas()["ipsec"]) == 2 and len(right.list_sas()["ipsec"]) == 2, 20, "both children")
        assert _ping(lab, 0) == 3 and _ping(lab, 1) == 3
        events = left.event_dicts_since(0)
        summaries = [e["summary"] for e in events if e.get("kind") == "message" and e.get("direction") == "sent"]
        assert any(s.startswith("HDR, SKF {fragment 1/") for s in summaries), summaries  # IKE_AUTH with a certificate
        assert any(s == "HDR, SK {SAi, Ni, KEi, TSi, TSr}" for s in summaries), summaries  # the second child, PFS
        before = {p["spi_in"] for p in left.list_sas()["ipsec"]}
        # left's pairs live 20 s: at 18 s it rekeys them (CREATE_CHILD_SA with REKEY_SA), then deletes the old ones
        _wait(lambda: {p["spi_in"] for p in left.list_sas()["ipsec"] if p["state"] == "ESTABLISHED"}.isdisjoint(before)
              and len(left.list_sas()["ipsec"]) == 2, 30, "the rekeyed children")
        _wait(lambda: len(right.list_sas()["ipsec"]) == 2, 10, "right to drop the old pairs")
        assert _ping(lab, 0) == 3
        assert [s["state"] for s in left.list_sas()["isakmp"]] == ["ESTABLISHED"]
        left.terminate()
        _wait(lambda: not right.list_sas()["isakmp"] and not right.list_sas()["ipsec"], 10, "right to follow the delete")
