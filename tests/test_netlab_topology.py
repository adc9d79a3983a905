"""Network-lab topologies in real namespaces: reachability, NAT, isolation and clean teardown.

Needs root (network namespaces, veth, nftables); skipped with a reason otherwise.  Every test
uses its own lab names and a finalizer that destroys the lab even if the test fails half way.
Reachability is proven with the UDP echo service (``ipseclab.runtime.netlab.udpecho``), not ``ping``.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ipseclab.errors import NetlabError

pytestmark = pytest.mark.root

PORT = 7777
_counter = itertools.count()


@pytest.fixture(autouse=True)
def _needs_root() -> None:
    if os.geteuid() != 0:
        reason = f"needs root for network namespaces: running as uid {os.geteuid()}"
        print(reason)
        pytest.skip(reason)


@pytest.fixture
def lab_name() -> Iterator[Callable[[], str]]:
    """Fresh lab names (unique per test run); every lab named so is destroyed afterwards."""
    from ipseclab.runtime.netlab import destroy

    names: list[str] = []

    def make() -> str:
        name = f"t{os.getpid() % 100000}-{next(_counter)}"
        names.append(name)
        return name

    yield make
    for name in names:
        destroy(name)


def root_links() -> list[str]:
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        return [link.get("ifname") for link in ipr.get_links()]


def root_nft_tables() -> list[str]:
    out = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True, check=True)
    return out.stdout.split("\n")


def assert_nothing_left(name: str, pids: list[int] = ()) -> None:  # type: ignore[assignment]
    """No namespace, no root veth, no nft table, no state, no process of lab ``name``."""
    from pyroute2 import netns

    from ipseclab.runtime.netlab import lab_names
    from ipseclab.runtime.netlab.nsproc import is_running
    from ipseclab.runtime.netlab.state import lab_dir

    assert [ns for ns in netns.listnetns() if ns.startswith(f"ipl-{name}-")] == []
    assert [ifname for ifname in root_links() if ifname.startswith(f"ipl{name}")] == []
    assert not any("ipseclab" in t for t in root_nft_tables())
    assert not lab_dir(name).exists()
    assert name not in lab_names()
    assert [pid for pid in pids if is_running(pid)] == []


def lo_addresses(lab, role: str) -> set[str]:  # noqa: ANN001
    def get(ipr):  # noqa: ANN001, ANN202
        (lo,) = ipr.link_lookup(ifname="lo")
        return {a.get("IFA_ADDRESS") for a in ipr.get_addr(index=lo, family=2)}

    return lab.netlink(role, get)


def test_site_to_site_reachability_and_protected_addresses(lab_name: Callable[[], str]) -> None:
    from ipseclab.runtime.netlab import site_to_site
    from ipseclab.runtime.netlab.udpecho import probe, serve_echo

    with site_to_site(lab_name()) as lab:
        left, right = lab.hosts["left"], lab.hosts["right"]
        assert (left.address, right.address) == ("10.99.0.1", "10.99.0.2")
        assert left.netns == f"ipl-{lab.name}-left" and left.interface == "eth0"
        serve_echo(lab, "right", PORT)
        serve_echo(lab, "left", PORT)
        assert probe(lab, "left", right.address, PORT).seen_from[0] == left.address
        assert probe(lab, "right", left.address, PORT).seen_from[0] == right.address
        # protected hosts: /32 on lo, reachable from the other side's protected hosts
        assert lo_addresses(lab, "left") >= {"127.0.0.1", "10.1.0.1", "10.1.1.1", "10.1.2.1"}
        assert lo_addresses(lab, "right") >= {"127.0.0.1", "10.2.0.1", "10.2.1.1", "10.2.2.1"}
        reply = probe(lab, "left", "10.2.2.1", PORT, source="10.1.2.1")
        assert reply.seen_from[0] == "10.1.2.1"
        # the child really runs in the namespace: it sees eth0 and lo only
        out = lab.run("left", [sys.executable, "-c", "print(open('/proc/net/dev').read())"],
                      capture_output=True, text=True, check=True).stdout
        names = {line.split(":")[0].strip() for line in out.splitlines()[2:] if ":" in line}
        assert names == {"lo", "eth0"}


def test_nat_masquerades_and_right_cannot_reach_inside(lab_name: Callable[[], str]) -> None:
    from ipseclab.runtime.netlab import nat
    from ipseclab.runtime.netlab.nft import list_tables
    from ipseclab.runtime.netlab.udpecho import probe, serve_echo

    with nat(lab_name()) as lab:
        router, right = lab.hosts["router"], lab.hosts["right"]
        assert lab.kind == "nat" and set(lab.hosts) == {"left", "router", "right"}
        assert lab.hosts["left"].gateway == "192.168.77.1" and right.gateway is None
        assert list_tables(router.netns) == ["ip ipseclab"]
        serve_echo(lab, "right", PORT)
        serve_echo(lab, "left", PORT)
        reply = probe(lab, "left", right.address, PORT, source_port=500)
        # the datagram arrived with the router's outside address as source, port kept
        assert reply.seen_from == ("203.0.113.1", 500)
        assert reply.local == ("0.0.0.0", 500)
        # true NAT: right has no route into 192.168.77.0/24 ...
        with pytest.raises(NetlabError, match="unreachable"):
            probe(lab, "right", "192.168.77.2", PORT)
        # ... and the router does not forward to left's protected hosts either
        with pytest.raises(NetlabError):
            probe(lab, "right", "10.1.0.1", PORT, tries=1, timeout=0.3)


def test_nat_port_remap(lab_name: Callable[[], str]) -> None:
    from ipseclab.runtime.netlab import nat
    from ipseclab.runtime.netlab.udpecho import probe, serve_echo

    with nat(lab_name(), port_remap=True) as lab:
        serve_echo(lab, "right", PORT)
        reply = probe(lab, "left", lab.hosts["right"].address, PORT, source_port=500)
        assert reply.seen_from[0] == "203.0.113.1"
        assert 20000 <= reply.seen_from[1] <= 20099


def test_two_labs_coexist(lab_name: Callable[[], str]) -> None:
    from ipseclab.runtime.netlab import lab_names, nat, site_to_site
    from ipseclab.runtime.netlab.udpecho import probe, serve_echo

    a, b, c = site_to_site(lab_name()), site_to_site(lab_name()), nat(lab_name())
    with a, b, c:
        assert {a.name, b.name, c.name} <= set(lab_names())
        for lab in (a, b):
            serve_echo(lab, "right", PORT)
            assert probe(lab, "left", "10.99.0.2", PORT).seen_from[0] == "10.99.0.1"
        serve_echo(c, "right", PORT)
        assert probe(c, "left", "203.0.113.2", PORT).seen_from[0] == "203.0.113.1"
        a.down()
        assert_nothing_left(a.name)
        assert probe(b, "left", "10.99.0.2", PORT).seen_from[0] == "10.99.0.1"
    assert_nothing_left(b.name)
    assert_nothing_left(c.name)


def test_same_name_twice_is_refused_and_first_lab_survives(lab_name: Callable[[], str]) -> None:
    from ipseclab.runtime.netlab import site_to_site
    from ipseclab.runtime.netlab.udpecho import probe, serve_echo

    name = lab_name()
    with site_to_site(name) as lab:
        with pytest.raises(NetlabError, match="already exists"):
            site_to_site(name).up()
        serve_echo(lab, "right", PORT)
        assert probe(lab, "left", "10.99.0.2", PORT).seen_from[0] == "10.99.0.1"


def test_invalid_names_are_rejected() -> None:
    from ipseclab.runtime.netlab import destroy, site_to_site

    for bad in ("", "UPPER", "a_b", "-a", "a-", "elevenchars", "a/b", "a b", "ab\n"):
        with pytest.raises(NetlabError, match="invalid lab name"):
            site_to_site(bad)
        with pytest.raises(NetlabError):
            destroy(bad)


def test_down_removes_everything(lab_name: Callable[[], str], tmp_path: Path) -> None:
    from ipseclab.runtime.netlab import nat
    from ipseclab.runtime.netlab.state import read

    lab = nat(lab_name()).up()
    pids = [lab.spawn(role, ["sleep", "60"]).pid for role in ("left", "router", "right")]
    capture = lab.capture("router", tmp_path / "router.pcap")
    pids.append(capture.process.pid)
    # a grandchild that was not started through spawn() is found by its namespace
    shell = lab.spawn("right", ["sh", "-c", "sleep 60 & echo $!; wait"], stdout=subprocess.PIPE)
    assert shell.stdout is not None
    pids += [shell.pid, int(shell.stdout.readline())]
    recorded = read(lab.name)
    assert recorded is not None and recorded["status"] == "up" and recorded["kind"] == "nat"
    assert set(recorded["pids"]) == set(pids[:4] + [shell.pid])
    assert recorded["hosts"]["router"]["address"] == "203.0.113.1"
    lab.down()
    assert_nothing_left(lab.name, pids)
    assert not lab.is_up
    lab.down()  # idempotent


def test_keyboard_interrupt_in_with_block_tears_down(lab_name: Callable[[], str]) -> None:
    from ipseclab.runtime.netlab import site_to_site

    name = lab_name()
    pids = []
    with pytest.raises(KeyboardInterrupt), site_to_site(name) as lab:
        pids.append(lab.spawn("left", ["sleep", "60"]).pid)
        raise KeyboardInterrupt
    assert_nothing_left(name, pids)


def _fail_after_root_veth(self, link) -> None:  # noqa: ANN001
    """Stand-in for Topology._create_link: leaves a veth in the root namespace, then fails."""
    from pyroute2 import IPRoute

    temp_a, temp_b = link.temp_names(self.name)
    with IPRoute() as ipr:
        ipr.link("add", ifname=temp_a, kind="veth", peer={"ifname": temp_b})
    self._temp_links += [temp_a, temp_b]
    raise OSError("injected failure after creating the veth pair")


@pytest.mark.parametrize(
    ("kind", "target", "replacement", "step"),
    [
        ("nat", "ipseclab.runtime.netlab.nft.apply_ruleset", None, "nftables masquerade"),
        ("site", "ipseclab.runtime.netlab.topology.Topology._routes", None, "routes in"),
        ("nat", "ipseclab.runtime.netlab.topology.Topology._create_link", _fail_after_root_veth,
         "create veth pair"),
    ],
    ids=["nft", "routes", "veth"],
)
def test_error_mid_build_leaves_nothing(
    lab_name: Callable[[], str],
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    target: str,
    replacement: Callable[..., None] | None,
    step: str,
) -> None:
    from ipseclab.runtime.netlab import nat, site_to_site

    def boom(*args: object, **kwargs: object) -> None:
        raise OSError("injected failure")

    monkeypatch.setattr(target, replacement or boom)
    lab = (nat if kind == "nat" else site_to_site)(lab_name())
    with pytest.raises(NetlabError, match=step) as info:
        lab.up()
    assert "injected failure" in str(info.value)
    assert "removed" in str(info.value)
    assert not lab.is_up
    assert_nothing_left(lab.name)


def test_keyboard_interrupt_during_up_tears_down(
    lab_name: Callable[[], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from ipseclab.runtime.netlab import nat

    def interrupted(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("ipseclab.runtime.netlab.topology.Topology._routes", interrupted)
    lab = nat(lab_name())
    with pytest.raises(KeyboardInterrupt):
        lab.up()
    assert_nothing_left(lab.name)


def test_usable_under_a_running_event_loop(lab_name: Callable[[], str]) -> None:
    """As in a Jupyter cell: pyroute2's sync API alone would fail with a loop running."""
    import asyncio

    from ipseclab.runtime.netlab import site_to_site
    from ipseclab.runtime.netlab.udpecho import probe, serve_echo

    name, other_name = lab_name(), lab_name()

    async def cell() -> list[str]:
        seen = []
        with site_to_site(name) as lab:
            serve_echo(lab, "right", PORT)
            seen.append(probe(lab, "left", "10.99.0.2", PORT).seen_from[0])
            with lab.in_netns("left"), site_to_site(other_name) as other:
                # built from inside in_netns: the veths still come from the root namespace
                serve_echo(other, "right", PORT)
                seen.append(probe(other, "left", "10.99.0.2", PORT).seen_from[0])
            assert lab.netlink("right", lambda ipr: len(ipr.get_routes(family=2))) > 0
        return seen

    assert asyncio.run(cell()) == ["10.99.0.1", "10.99.0.1"]
    assert_nothing_left(name)
    assert_nothing_left(other_name)


_CREATE = """
import json, subprocess, sys
from ipseclab.runtime.netlab import nat
lab = nat(sys.argv[1]).up()
proc = lab.spawn("left", ["sleep", "60"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(json.dumps({"pid": proc.pid}))
"""


def _python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=30, check=False
    )


def test_destroy_from_a_separate_process(lab_name: Callable[[], str]) -> None:
    from ipseclab.runtime.netlab import attach, lab_names, lab_status

    name = lab_name()
    created = _python(_CREATE, name)  # builds a lab, starts a process, exits without down()
    assert created.returncode == 0, created.stderr
    pid = json.loads(created.stdout)["pid"]
    assert name in lab_names()
    status = lab_status(name)
    assert status is not None and status["kind"] == "nat" and len(status["namespaces"]) == 3
    assert [(p["pid"], p["running"]) for p in status["processes"]] == [(pid, True)]
    # another process can use the lab it did not build
    lab = attach(name)
    out = lab.run("router", ["cat", "/proc/sys/net/ipv4/ip_forward"], capture_output=True, text=True)
    assert out.stdout.strip() == "1"
    destroyed = _python("import sys; from ipseclab.runtime.netlab import destroy; destroy(sys.argv[1])", name)
    assert destroyed.returncode == 0, destroyed.stderr
    assert_nothing_left(name, [pid])
    assert lab_status(name) is None


def test_capture_is_readable(lab_name: Callable[[], str], tmp_path: Path) -> None:
    from scapy.all import IP, UDP, rdpcap

    from ipseclab.runtime.netlab import site_to_site
    from ipseclab.runtime.netlab.udpecho import probe, serve_echo

    with site_to_site(lab_name()) as lab:
        serve_echo(lab, "right", PORT)
        capture = lab.capture("right", tmp_path / "right.pcap")
        for i in range(3):
            probe(lab, "left", "10.99.0.2", PORT, f"datagram {i}".encode())
        path = capture.stop()
    assert capture.packets is not None and capture.packets >= 6
    packets = [p for p in rdpcap(str(path)) if UDP in p]
    sent = [bytes(p[UDP].payload) for p in packets if p[UDP].dport == PORT]
    assert sent == [b"datagram 0", b"datagram 1", b"datagram 2"]
    assert all(p[IP].src == "10.99.0.1" for p in packets if p[UDP].dport == PORT)
    if shutil.which("tshark"):
        fields = subprocess.run(
            ["tshark", "-r", str(path), "-Y", f"udp.dstport == {PORT}", "-T", "fields",
             "-e", "ip.src"],
            capture_output=True, text=True, timeout=30, check=True,
        ).stdout.split()
        assert fields == ["10.99.0.1"] * 3


def test_lab_commands(lab_name: Callable[[], str]) -> None:
    name = lab_name()

    def lab(*args: str) -> subprocess.CompletedProcess[str]:
        result = _python("import sys; from ipseclab.runtime.netlab.labcli import main; sys.exit(main())", *args)
        assert "Traceback" not in result.stderr, result.stderr
        return result

    up = lab("up", name, "--kind", "nat", "--port-remap")
    assert up.returncode == 0 and "203.0.113.1" in up.stdout
    assert lab("up", name).returncode == 1  # taken
    status = lab("status", name, "--json")
    (report,) = json.loads(status.stdout)
    assert report["kind"] == "nat" and report["options"] == {"port_remap": True}
    assert name in lab("list").stdout.split()
    assert lab("down", name).returncode == 0
    assert_nothing_left(name)
    assert lab("status", name).returncode == 1
