"""The container entry point's pure parts: the address plan and configuration it derives from
the compose environment (no containers needed)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from ipseclab.runtime.config_toml import parse_peer_config
from ipseclab.runtime.containers.entry import daemon_argv, peer_config_path, topology_from
from ipseclab.runtime.containers.stack import container_topology


def test_without_a_host_written_config_each_peer_gets_the_labs_config_with_the_env_psk(tmp_path: Path) -> None:
    env = {"IPSECLAB_KIND": "nat", "IPSECLAB_INSIDE": "10.77.1", "IPSECLAB_OUTSIDE": "10.77.2", "IPSECLAB_PSK": "class-psk-7"}
    left = parse_peer_config(peer_config_path("left", env, tmp_path).read_text())
    right = parse_peer_config(peer_config_path("right", env, tmp_path).read_text())
    assert left.address == "10.77.1.2" and left.connections[0].remote_address == "10.77.2.2"
    assert right.address == "10.77.2.2" and right.connections[0].remote_address == "%any"  # behind a NAT: any address
    assert left.psk == right.psk == b"class-psk-7"
    assert stat.S_IMODE((tmp_path / "left.toml").stat().st_mode) == 0o600


def test_a_config_the_host_wrote_is_used_as_it_is(tmp_path: Path) -> None:
    (tmp_path / "left.toml").write_text("# from the host\n")
    assert peer_config_path("left", {}, tmp_path).read_text() == "# from the host\n"


def test_defaults_are_the_namespace_labs_addresses_and_a_typo_is_refused() -> None:
    assert topology_from({}).hosts["left"].address == "192.168.77.2"
    assert topology_from({"IPSECLAB_KIND": "site-to-site"}).hosts["right"].address == "10.99.0.2"
    assert container_topology("x", "nat").hosts["left"].gateway == "192.168.77.1"
    with pytest.raises(ValueError):
        topology_from({"IPSECLAB_OUTSIDE": "203.0.1133"})


def test_the_daemon_listens_only_on_ipc_files_in_the_run_directory(tmp_path: Path) -> None:
    argv = daemon_argv("right", tmp_path / "right.toml", {"IPSECLAB_SEED": "4"}, tmp_path)
    assert argv[argv.index("--control") + 1] == f"ipc://{tmp_path}/right.ctl"
    assert argv[argv.index("--events") + 1] == f"ipc://{tmp_path}/right.ev"
    assert argv[argv.index("--seed") + 1] == "4" and "--dataplane" in argv
    assert "--dataplane" not in daemon_argv("right", tmp_path / "r.toml", {"IPSECLAB_DATAPLANE": "0"}, tmp_path)
