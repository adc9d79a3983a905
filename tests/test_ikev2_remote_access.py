"""Remote access with IKEv2 (RFC 7296 §3.15) between ipseclab peers in memory: a road-warrior
client asks for a virtual IP in IKE_AUTH, the gateway leases one from its pool, both narrow the
child to it; the same identity gets its address back, a full pool is explained, and a lease
returns to the pool when the IKE SA goes."""

from __future__ import annotations

from engine_support import PSK, events_of, sent

from ipseclab.config import ChildConfig, Connection, Identity, PeerConfig
from ipseclab.crypto.rng import SeededRng
from ipseclab.ikev1.policy import IsakmpPolicy
from ipseclab.peer import Peer
from ipseclab.pools import AddressPool
from ipseclab.runtime.transport.memory import MemoryNetwork
from ipseclab.trace import ErrorEvent, Info, SaEstablished
from ipseclab.wire.v2.constants import CfgAttributeType
from ipseclab.wire.v2.message import CPPayload, Message, decode_payloads

GATEWAY = "198.51.100.1"


def client(name: str, address: str) -> PeerConfig:
    child = ChildConfig("corp", "0.0.0.0/0", "10.2.0.0/16")
    conn = Connection("corp", GATEWAY, children=(child,), version=2, vips=("0.0.0.0",))
    return PeerConfig(name, address, identity=Identity("user_fqdn", f"{name}@lab"), psk=PSK,
                      isakmp_policies=[IsakmpPolicy(10)], connections=[conn])


def gateway(addrs: str = "10.3.0.0/24") -> PeerConfig:
    child = ChildConfig("corp", "10.2.0.0/16", addrs)
    conn = Connection("rw", "%any", children=(child,), version=2, pools=("rw",))
    return PeerConfig("gw", GATEWAY, psk=PSK, isakmp_policies=[IsakmpPolicy(10)], connections=[conn],
                      pools=[AddressPool("rw", addrs, dns=("10.2.0.53",))])


def network(*clients: PeerConfig, addrs: str = "10.3.0.0/24") -> MemoryNetwork:
    peers = [Peer(cfg, rng=SeededRng(7, cfg.name)) for cfg in (gateway(addrs), *clients)]
    return MemoryNetwork(peers)


def connect(net: MemoryNetwork, name: str) -> None:
    net.initiate(name, "corp")
    net.run()


def test_the_client_gets_a_virtual_ip_and_the_child_narrows_to_it() -> None:
    net = network(client("alice", "192.0.2.10"))
    connect(net, "alice")
    alice, gw = net.peer("alice"), net.peer("gw")
    auth = [m for m in sent(net.events) if m.exchange == "IKE_AUTH"]
    assert "CP(CFG_REQUEST)" in auth[0].summary and "CP(CFG_REPLY)" in auth[1].summary
    reply = next(p for p in decode_payloads(Message.decode(auth[1].raw).payloads[-1].first_payload, auth[1].plaintext)
                 if isinstance(p, CPPayload))
    assert reply.get(CfgAttributeType.INTERNAL_IP4_ADDRESS) == [bytes([10, 3, 0, 1])]
    assert reply.get(CfgAttributeType.INTERNAL_IP4_DNS) == [bytes([10, 2, 0, 53])]
    (pair,), (gw_pair,) = alice.child_sas, gw.child_sas
    assert (pair.local_ts, pair.remote_ts) == ("10.3.0.1/32", "10.2.0.0/16")
    assert (gw_pair.local_ts, gw_pair.remote_ts) == ("10.2.0.0/16", "10.3.0.1/32")  # the route into the tunnel
    assert alice.sa_table()["isakmp"][0]["virtual_ip"] == "10.3.0.1"
    assert gw.sa_table()["leases"] == [{"pool": "rw", "identity": "alice@lab", "address": "10.3.0.1", "online": True}]
    info = next(e.ike for e in events_of(net.events, SaEstablished, "alice") if e.ike is not None)
    assert info.virtual_ip == "10.3.0.1"


def test_an_identity_gets_its_address_back_and_others_the_next() -> None:
    net = network(client("alice", "192.0.2.10"), client("bob", "192.0.2.11"))
    connect(net, "alice")
    connect(net, "bob")
    gw = net.peer("gw")
    assert {row["identity"]: row["address"] for row in gw.sa_table()["leases"]} == {"alice@lab": "10.3.0.1", "bob@lab": "10.3.0.2"}
    net.peer("alice").terminate(net.now)
    net.collect()
    net.run()
    assert {r["identity"]: r["online"] for r in gw.sa_table()["leases"]} == {"alice@lab": False, "bob@lab": True}
    assert any("back in pool rw" in e.message for e in events_of(net.events, Info, "gw"))
    connect(net, "alice")
    assert net.peer("alice").sa_table()["isakmp"][0]["virtual_ip"] == "10.3.0.1"


def test_a_full_pool_is_explained_and_a_returned_address_is_reused() -> None:
    net = network(client("alice", "192.0.2.10"), client("bob", "192.0.2.11"), client("carol", "192.0.2.12"),
                  addrs="10.3.0.0/30")  # two addresses
    for name in ("alice", "bob", "carol"):
        connect(net, name)
    carol = net.peer("carol")
    assert not carol.child_sas and carol.sa_table()["isakmp"][0]["state"] == "ESTABLISHED"
    assert sent(net.events, "gw")[-1].summary == "HDR, SK {IDr, AUTH, N(INTERNAL_ADDRESS_FAILURE)}"
    words = " ".join(e.message for e in events_of(net.events, ErrorEvent, "gw")) + " ".join(
        e.message for e in events_of(net.events, Info, "gw"))
    assert "pool rw (10.3.0.0/30: 2 addresses) is full" in words, words
    net.peer("alice").terminate(net.now)  # alice goes offline: her address may now go to carol
    net.collect()
    net.run()
    carol.terminate(net.now)
    net.collect()
    net.run()
    connect(net, "carol")
    assert carol.sa_table()["isakmp"][0]["virtual_ip"] == "10.3.0.1"
    assert len(carol.child_sas) == 1


def test_leases_survive_a_new_configuration_of_the_same_pools() -> None:
    from ipseclab.pools import Leases

    leases = Leases()
    pool = AddressPool("rw", "10.3.0.0/24")
    assert leases.acquire(pool, "alice@lab") == "10.3.0.1"
    assert leases.acquire(pool, "bob@lab") == "10.3.0.2"
    kept = leases.carried_over([AddressPool("rw", "10.3.0.0/24"), AddressPool("other", "10.4.0.0/24")])
    assert kept.table() == [{"pool": "rw", "identity": "alice@lab", "address": "10.3.0.1", "online": False},
                            {"pool": "rw", "identity": "bob@lab", "address": "10.3.0.2", "online": False}]
    assert kept.acquire(pool, "bob@lab") == "10.3.0.2"  # bob gets his address back after the reload
    assert leases.carried_over([AddressPool("rw", "10.9.0.0/24")]).table() == []  # addresses outside the new range go


def test_per_group_and_per_user_pools() -> None:
    """Staff get addresses from their own pool, carol from hers; a user in no group is told why."""
    gw_cfg = gateway()
    gw_cfg.pools = [AddressPool("staff", "10.3.0.0/24", users=("staff",)), AddressPool("carols", "10.5.0.0/30", users=("carol@lab",))]
    gw_cfg.groups = {"staff": ("alice@lab", "bob@lab")}
    import dataclasses

    gw_cfg.connections = [dataclasses.replace(gw_cfg.connections[0], pools=("staff", "carols"),
                                              children=(ChildConfig("corp", "10.2.0.0/16", "10.0.0.0/8"),))]
    clients = [client(n, f"192.0.2.{10 + i}") for i, n in enumerate(("alice", "bob", "carol", "mallory"))]
    net = MemoryNetwork([Peer(cfg, rng=SeededRng(7, cfg.name)) for cfg in (gw_cfg, *clients)])
    for name in ("alice", "bob", "carol", "mallory"):
        connect(net, name)
    got = {row["identity"]: (row["pool"], row["address"]) for row in net.peer("gw").sa_table()["leases"]}
    assert got == {"alice@lab": ("staff", "10.3.0.1"), "bob@lab": ("staff", "10.3.0.2"), "carol@lab": ("carols", "10.5.0.1")}
    assert not net.peer("mallory").child_sas
    words = " ".join(e.message for e in events_of(net.events, Info, "gw"))
    assert "no virtual IP for mallory@lab: its pools admit only certain users and groups (staff for staff; carols for carol@lab)" in words
