"""Remote access between our daemons in network namespaces (root): the client gets 10.3.0.1
from the gateway's pool, puts it on its TUN and reaches the host behind the gateway from it —
a ping through our ESP, answered back to the virtual IP the gateway routes into the tunnel."""

from __future__ import annotations

import os
import sys
import time

import pytest

pytestmark = pytest.mark.root

if os.geteuid() != 0:
    print("skipping the remote-access namespace test: needs root (namespaces, TUN); CI runs as root", file=sys.stderr)
    pytest.skip("needs root (network namespaces, TUN)", allow_module_level=True)

from ipseclab.runtime.netlab.esp_interop import ipseclab_pair  # noqa: E402
from ipseclab.runtime.netlab.pinger import ping  # noqa: E402
from ipseclab.runtime.netlab.topology import site_to_site  # noqa: E402

POOL = "10.3.0.0/24"


def remote_access(text: str) -> str:
    """Our daemons' TOML as a road-warrior client (left) and its gateway (right), IKEv2."""
    text = text.replace("[connections.lab.children.c1]", "version = 2\n\n[connections.lab.children.c1]")
    if 'name = "ipseclab"' in text:  # left: ask for a virtual IP; our side of the child is whatever we get
        text = text.replace("version = 2\n", 'version = 2\nvips = ["0.0.0.0"]\n')
        return text.replace('local_ts = "10.1.0.1/32"', 'local_ts = "0.0.0.0/0"')
    text = text.replace("version = 2\n", 'version = 2\npools = ["rw"]\n')
    text = text.replace('remote_ts = "10.1.0.1/32"', f'remote_ts = "{POOL}"')
    return text.replace("[connections.lab]", f'[peer.pools.rw]\naddrs = "{POOL}"\ndns = ["10.2.0.53"]\n\n[connections.lab]')


def test_the_client_pings_from_its_virtual_ip() -> None:
    with site_to_site(f"ra{os.getpid() % 100000}", routes=False) as topo, ipseclab_pair(topo, config=remote_access) as clients:
        left, right = clients["left"], clients["right"]
        (ike,) = left.list_sas()["isakmp"]
        assert ike["virtual_ip"] == "10.3.0.1"
        assert right.list_sas()["leases"] == [{"pool": "rw", "identity": "left@lab", "address": "10.3.0.1", "online": True}]
        stats = ping(topo, "left", "10.3.0.1", topo.hosts["right"].protected[0], count=3)
        assert stats.received == 3, stats.lines
        (sa_in,) = [s for s in left.esp()["sas"] if s["direction"] == "inbound"]
        assert sa_in["counters"]["packets"] >= 3  # the answers came back through the tunnel to the virtual IP
        assert sa_in["local_ts"] == "10.3.0.1/32"
        # the gateway loads its configuration again: the client's lease is kept (offline until it returns)
        left.terminate()
        deadline = time.monotonic() + 10
        while right.list_sas()["isakmp"] and time.monotonic() < deadline:  # the Delete is on its way
            time.sleep(0.05)
        right.load(right.config_text())
        assert right.list_sas()["leases"] == [{"pool": "rw", "identity": "left@lab", "address": "10.3.0.1", "online": False}]


def xauth_remote_access(text: str) -> str:
    """The same road warrior with IKEv1: PSK + XAUTH as alice, then Mode Config."""
    users = '[peer.eap_users]\nalice = "alice-secret"\n\n'
    if 'name = "ipseclab"' in text:
        text = text.replace("[connections.lab.children.c1]", 'local_auth = "xauth"\nxauth_id = "alice"\nvips = ["0.0.0.0"]\n\n'
                            "[connections.lab.children.c1]")
        text = text.replace('local_ts = "10.1.0.1/32"', 'local_ts = "0.0.0.0/0"')
        return text.replace("[connections.lab]", users + "[connections.lab]")
    text = text.replace("[connections.lab.children.c1]", 'remote_auth = "xauth"\npools = ["rw"]\n\n[connections.lab.children.c1]')
    text = text.replace('remote_ts = "10.1.0.1/32"', f'remote_ts = "{POOL}"')
    return text.replace("[connections.lab]", users + f'[peer.pools.rw]\naddrs = "{POOL}"\n\n[connections.lab]')


def test_ikev1_xauth_and_mode_config_then_a_ping_from_the_virtual_ip() -> None:
    with site_to_site(f"rx{os.getpid() % 100000}", routes=False) as topo, ipseclab_pair(topo, config=xauth_remote_access) as clients:
        left, right = clients["left"], clients["right"]
        (ike,) = left.list_sas()["isakmp"]
        assert (ike["virtual_ip"], ike["eap_id"]) == ("10.3.0.1", "alice")
        assert right.list_sas()["leases"] == [{"pool": "rw", "identity": "alice", "address": "10.3.0.1", "online": True}]
        stats = ping(topo, "left", "10.3.0.1", topo.hosts["right"].protected[0], count=3)
        assert stats.received == 3, stats.lines
        left.terminate()  # alice goes; the gateway is reconfigured; her address waits for her
        deadline = time.monotonic() + 10
        while right.list_sas()["isakmp"] and time.monotonic() < deadline:
            time.sleep(0.05)
        right.load(right.config_text())
        assert right.list_sas()["leases"] == [{"pool": "rw", "identity": "alice", "address": "10.3.0.1", "online": False}]
