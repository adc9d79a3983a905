"""The lab as containers (``containers/compose.yaml`` with podman-compose, rootful podman).

The images are built from ``containers/Containerfile`` (on a locally bootstrapped Debian: no
registry here), the stack comes up — left behind the nftables NAT container, right outside —
Main Mode and Quick Mode run across the NAT, a ping crosses it as ESP in UDP 4500, tshark
decrypts the router's capture with the key table of our own events, and everything the stack
made is gone by name afterwards.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ipseclab.demo import DemoOptions
from ipseclab.export import write_keys
from ipseclab.runtime.containers.stack import ContainerLab, containers_available
from ipseclab.runtime.netlab.tshark import dissect

pytestmark = pytest.mark.root

_REASON = containers_available()
if _REASON:
    print(f"skipping the container stack: {_REASON}", file=sys.stderr)
    pytest.skip(_REASON, allow_module_level=True)

NAT_NETWORKS = ("192.168.179", "198.18.179")  # not the default lab's, so a running lab is left alone


def _wait_established(lab: ContainerLab, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sas = lab.clients["left"].list_sas()
        if any(x["state"] == "ESTABLISHED" for x in sas.get("ipsec", [])):
            return sas
        time.sleep(0.2)
    raise AssertionError(f"no IPsec SA within {timeout} s: {lab.clients['left'].list_sas()}")


def _leftovers(name: str, podman) -> dict[str, str]:  # noqa: ANN001
    containers = podman("ps", "-a", "--filter", f"name=ipl-{name}-", "--format", "{{.Names}}").stdout.strip()
    networks = [n["name"] for n in json.loads(podman("network", "ls", "--format", "json").stdout or "[]")
                if n["name"].startswith(f"ipl-{name}-")]
    bridges = subprocess.run(["ip", "-br", "addr"], capture_output=True, text=True, check=True).stdout
    return {"containers": containers, "networks": " ".join(networks),
            "bridges": " ".join(line.split()[0] for line in bridges.splitlines() if any(f"{p}.254/" in line for p in NAT_NETWORKS))}


@pytest.fixture(scope="module")
def nat_lab():
    lab = ContainerLab("ctest", "nat", DemoOptions(seed=13), networks=NAT_NETWORKS)
    try:
        yield lab.up()
    finally:
        lab.down()
    assert _leftovers("ctest", lab.podman) == {"containers": "", "networks": "", "bridges": ""}
    assert not lab.state_dir.exists()


def test_main_and_quick_mode_across_the_nat_container_then_ping_through_esp_in_udp(nat_lab: ContainerLab, tmp_path: Path) -> None:
    left_host, right_host = nat_lab.topology.hosts["left"], nat_lab.topology.hosts["right"]
    router = nat_lab.topology.hosts["router"]
    capture = nat_lab.capture("router", "outside", "outside.pcap")
    inside = nat_lab.capture("router", "inside", "inside.pcap")
    nat_lab.clients["left"].initiate("site")
    sas = _wait_established(nat_lab)
    ping = nat_lab.ping(3)
    nat_lab.stop_capture("outside.pcap")
    nat_lab.stop_capture("inside.pcap")

    (ike,) = sas["isakmp"]
    assert ike["state"] == "QM_IDLE" and ike["local"] == f"{left_host.address}:4500" and ike["remote"] == f"{right_host.address}:4500"
    (child,) = sas["ipsec"]
    assert child["mode"] == "UDP tunnel" and child["local_ts"] == f"{left_host.protected[0]}/32"
    right_sas = nat_lab.clients["right"].list_sas()
    assert right_sas["isakmp"][0]["remote"] == f"{router.address}:4500"  # right only ever sees the router
    assert (ping.sent, ping.received) == (3, 3), ping.lines

    events = nat_lab.clients["left"].events_since(0) + nat_lab.clients["right"].events_since(0)
    write_keys(events, tmp_path / "keys")
    frames = dissect(capture, tmp_path / "keys")
    ike_frames = [f for f in frames if f.exchange_type is not None]
    inside_frames = [f for f in dissect(inside) if f.exchange_type is not None]
    assert [f.src for f in inside_frames[:2]] == [left_host.address, right_host.address], \
        "inside the router left's packets still carry left's own address (only the lab's NAT translates)"
    assert [f.src for f in ike_frames[:4]] == [router.address, right_host.address] * 2
    assert [(f.sport, f.dport) for f in ike_frames] == [(500, 500)] * 4 + [(4500, 4500)] * 5  # the switch after MM4
    assert all(f.decrypted for f in ike_frames[4:]), "tshark decrypted MM5 onwards with our table"
    esp = [f for f in frames if f.esp_spi is not None]
    assert [f.src for f in esp] == [router.address, right_host.address] * 3
    assert {f.dport for f in esp} == {4500}, "ESP in UDP 4500 through the NAT"
    assert all(f.esp_icv_good for f in esp), "tshark verified every ICV with our keys"
    assert all(f.inner_icmp for f in esp), "tshark decrypted the echo requests and replies"


def test_a_second_up_of_the_same_lab_replaces_the_first(nat_lab: ContainerLab) -> None:
    """``up`` takes a stack of the same name down first (a notebook run twice)."""
    again = ContainerLab("ctest", "nat", DemoOptions(seed=13), networks=NAT_NETWORKS)
    again.up()
    try:
        assert again.clients["left"].status()["name"] == "left"
        nat_lab.clients = again.clients  # the module fixture tears this one down
    finally:
        again.clients = {}


def test_site_to_site_stack(tmp_path: Path) -> None:
    lab = ContainerLab("csite", "site-to-site", DemoOptions(seed=14), networks=("", "198.18.180"))
    try:
        lab.up()
        lab.clients["left"].initiate("site")
        sas = _wait_established(lab)
        assert sas["ipsec"][0]["mode"] == "tunnel" and sas["isakmp"][0]["remote"] == "198.18.180.2:500"
        ping = lab.ping(2)
        assert (ping.sent, ping.received) == (2, 2), ping.lines
    finally:
        lab.down()
    assert lab.podman("ps", "-a", "--filter", "name=ipl-csite-", "--format", "{{.Names}}").stdout.strip() == ""


def test_the_containerfile_builds_an_image_with_every_tool_the_labs_use() -> None:
    """The peer image (layers cached after the first build) holds ipseclab — this very source —
    charon, swanctl, tshark, tcpdump and nft."""
    from ipseclab.runtime.containers.stack import ensure_images, source_hash

    images = ensure_images()
    assert images["peer"].endswith(f":{source_hash()}")
    probe = "; ".join(["command -v charon-systemd >/dev/null || ls /usr/lib/ipsec/charon", "command -v swanctl", "tshark --version | head -1",
                       "tcpdump --version 2>&1 | head -1", "nft --version",
                       "python3 -c 'import ipseclab, sys; print(ipseclab.__file__)'"])
    done = subprocess.run(["podman", "run", "--rm", "--entrypoint", "sh", images["peer"], "-c", probe],
                          capture_output=True, text=True, env=ContainerLab("cprobe").podman.env, timeout=120)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "/usr/sbin/swanctl" in out and "TShark" in out and "tcpdump version" in out and "nftables" in out
    assert "/opt/ipseclab/" in out


def test_the_compose_files_resolve_to_the_namespace_labs_address_plan() -> None:
    """What podman-compose makes of each compose file with the shipped ``.env``: the addresses
    the namespace labs use (``container_topology``)."""
    from ipseclab.runtime.containers.stack import (
        COMPOSE_FILES,
        CONTAINERS,
        compose_command,
        container_topology,
    )

    for kind, path in COMPOSE_FILES.items():
        done = subprocess.run([*compose_command(), "-f", str(path), "--env-file", str(CONTAINERS / ".env"), "config"],
                              capture_output=True, text=True, cwd=CONTAINERS, timeout=60, check=True)
        topo = container_topology("lab", kind)
        for role in ("left", "right"):
            assert f"ipv4_address: {topo.hosts[role].address}" in done.stdout, (kind, role)
            assert f"container_name: ipl-lab-{role}" in done.stdout
        assert "NET_ADMIN" in done.stdout and "/dev/net/tun" in done.stdout


def _cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ipseclab.cli", *args], capture_output=True, text=True, timeout=timeout)


def test_demo_in_containers_across_the_nat_with_ping_capture_and_keys(tmp_path: Path) -> None:
    pcap, keys = tmp_path / "wire.pcap", tmp_path / "keys"
    done = _cli("demo", "--containers", "--topology", "nat", "--seed", "9", "--ping", "2", "--pcap", str(pcap), "--keys", str(keys))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "in containers (nat)" in done.stdout and "2 sent, 2 received, 0 lost" in done.stdout
    frames = dissect(pcap, keys)  # taken on left's own interface: its inside address
    esp = [f for f in frames if f.esp_spi is not None]
    assert len(esp) == 4 and all(f.esp_icv_good and f.inner_icmp for f in esp)
    from ipseclab.runtime.containers.stack import container_lab_names

    assert not [n for n in container_lab_names() if n.startswith("demo")], "the demo's stack is gone"


def test_demo_ikev2_remote_access_in_containers(tmp_path: Path) -> None:
    """IKEv2 between the containers: alice behind the NAT container logs in with EAP-MD5, gets
    10.3.0.1 from right's pool and pings from it; tshark opens the ESP with our keys."""
    pcap, keys = tmp_path / "ra.pcap", tmp_path / "keys"
    done = _cli("demo", "--ike", "v2", "--remote-access", "--eap", "--containers", "--topology", "nat", "--seed", "5",
                "--ping", "2", "--pcap", str(pcap), "--keys", str(keys))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "EAP(Success)" in done.stdout and "virtual IP 10.3.0.1 from the gateway's pool" in done.stdout
    assert "ping 10.3.0.1 -> " in done.stdout and "2 sent, 2 received, 0 lost" in done.stdout
    esp = [f for f in dissect(pcap, keys) if f.esp_spi is not None]
    assert len(esp) == 4 and all(f.esp_icv_good and f.inner_icmp for f in esp)


def test_lab_up_status_down_in_containers() -> None:
    up = _cli("lab", "up", "cclitest", "--containers", "--topology", "nat", "--seed", "4")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert "is up in containers" in up.stdout and "ipc:///run/ipseclab-containers/cclitest/left.ctl" in up.stdout
        assert "cclitest (containers)" in _cli("lab", "list").stdout
        lab = ContainerLab.attach("cclitest")
        lab.clients["left"].initiate("site")
        _wait_established(lab)
        status = _cli("lab", "status", "cclitest").stdout
        assert "left running, router running, right running" in status and "QM_IDLE; net1" in status
    finally:
        down = _cli("lab", "down", "cclitest")
    assert down.returncode == 0 and "containers and networks removed" in down.stdout, down.stdout + down.stderr
    assert _leftovers("cclitest", lab.podman)["containers"] == ""
    assert "cclitest" not in _cli("lab", "list").stdout


def test_jupyterlab_container_serves_the_labs_and_a_lab_drives_the_stacks_daemons(tmp_path: Path) -> None:
    """``jupyter`` (profile): JupyterLab answers on 127.0.0.1 with the stack's token only, and a
    lab executed inside it with ``PEERS = "containers"`` attaches to the stack's daemons through
    the shared run directory (no podman in there) and negotiates on them."""
    import shutil

    import nbformat

    from ipseclab.runtime.containers.stack import REPO

    labs = tmp_path / "labs"
    shutil.copytree(REPO / "labs", labs, ignore=shutil.ignore_patterns("lab-export", ".ipynb_checkpoints"))
    nb = nbformat.read(labs / "04_quick_mode.ipynb", as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code" and cell.source.startswith('PEERS = "memory"'):
            cell.source = cell.source.replace('PEERS = "memory"', 'PEERS = "containers"', 1)
    nbformat.write(nb, labs / "04_in_stack.ipynb")
    port = _free_tcp_port()
    lab = ContainerLab("cjup", "nat", DemoOptions(seed=21), networks=("192.168.183", "198.18.183"),
                       jupyter=True, jupyter_port=port, labs_dir=labs)
    try:
        lab.up()
        url = lab.jupyter_url()
        assert url is not None and url.startswith(f"http://127.0.0.1:{port}/lab?token=")
        token = url.split("token=")[1]
        status = _http_status(f"http://127.0.0.1:{port}/api/status?token={token}")
        assert status == 200
        assert _http_status(f"http://127.0.0.1:{port}/api/status?token=wrong") == 403
        done = lab.podman.exec(lab.container("jupyter"), "jupyter", "nbconvert", "--to", "notebook", "--execute",
                               "--ExecutePreprocessor.timeout=120", "--output-dir", "/tmp", "/labs/04_in_stack.ipynb",
                               check=False, timeout=300)
        assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
        ran = lab.podman.exec(lab.container("jupyter"), "cat", "/tmp/04_in_stack.ipynb").stdout
        text = json.dumps(json.loads(ran))
        assert "Peers in containers" in text and lab.topology.hosts["left"].address in text
        assert "| established: True" in text, "part 2 negotiated on the stack's daemons"
        # the notebook ends with its lab view back at the start: MM1 is on its way again, on the daemons
        assert lab.clients["left"].list_sas()["isakmp"][0]["state"] == "MM_SA_SENT"
    finally:
        lab.down()
    assert _leftovers("cjup", lab.podman)["containers"] == ""


def _free_tcp_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _http_status(url: str) -> int:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return r.status
        except urllib.error.HTTPError as exc:
            return exc.code
        except (urllib.error.URLError, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def test_a_bridge_netavark_left_behind_neither_blocks_nor_outlives_the_labs_next_start() -> None:
    """A down bridge with a lab gateway address and no podman network (what a failed start
    leaves) does not make its subnets look taken, and the lab's next teardown removes it."""
    from ipseclab.runtime.containers.stack import _stale_bridges, _subnets_in_use

    name = "iplstale0"
    subprocess.run(["ip", "link", "add", name, "type", "bridge"], check=True)
    try:
        subprocess.run(["ip", "addr", "add", "198.18.186.254/24", "dev", name], check=True)
        subprocess.run(["ip", "link", "set", name, "up"], check=True)
        # a container's port came and went (as netavark leaves it): the bridge has no carrier
        subprocess.run(["ip", "link", "add", "iplstalev0", "type", "veth", "peer", "name", "iplstalev1"], check=True)
        subprocess.run(["ip", "link", "set", "iplstalev0", "master", name, "up"], check=True)
        subprocess.run(["ip", "link", "del", "iplstalev0"], check=True)
        deadline = time.monotonic() + 5
        while "NO-CARRIER" not in subprocess.run(["ip", "link", "show", name], capture_output=True, text=True).stdout:
            assert time.monotonic() < deadline, "the bridge kept its carrier"
            time.sleep(0.1)
        lab = ContainerLab("cstale", "site-to-site", networks=("", "198.18.186"))
        assert name in _stale_bridges(set()) and "198.18.186" not in _subnets_in_use(lab.podman)
        lab.down()
        assert subprocess.run(["ip", "link", "show", name], capture_output=True).returncode != 0, "removed by the lab's teardown"
    finally:
        subprocess.run(["ip", "link", "del", name], capture_output=True)
