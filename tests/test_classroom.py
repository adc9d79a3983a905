"""A class on one host (``ipseclab lab up --students N``): a lab and a JupyterLab per student (root).

Each student's server answers with the student's token only; code run in a kernel of that
server (as a student's notebook runs it, over the Jupyter websocket protocol) attaches to the
student's own peers; one student starting over leaves another student's SAs alone; ``lab down
--class`` stops every server and removes every lab, and the students' notebooks stay.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from jupyter_remote import run_code

pytestmark = pytest.mark.root

if os.geteuid() != 0:
    print("skipping the classroom: needs root (namespaces, containers); CI runs as root", file=sys.stderr)
    pytest.skip("needs root", allow_module_level=True)

STUDENT_CODE = """
from ipseclab.demo import DemoOptions
from ipseclab.teaching.peers import connect
peers = connect({mode!r}, DemoOptions(seed=5))
session = peers.session
session.run_to_end()
print("WHERE", peers.describe().splitlines()[0])
print("UP", session.established(), peers.address("left"), len(session.messages()))
"""


def _cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ipseclab.cli", *args], capture_output=True, text=True, timeout=timeout)


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _room(name: str) -> dict:
    return json.loads(Path(f"/run/ipseclab-class/{name}/class.json").read_text())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").exists() and " Z " not in Path(f"/proc/{pid}/stat").read_text()


@pytest.mark.parametrize("mode,students", [("namespaces", 3), ("containers", 3)])
def test_a_class_of_students_each_with_their_own_peers(mode: str, students: int, tmp_path: Path) -> None:
    if mode == "containers":
        from ipseclab.runtime.containers.stack import containers_available

        if containers_available():
            print(f"skipping the class in containers: {containers_available()}", file=sys.stderr)
            pytest.skip(containers_available())
    name = "tcls" if mode == "namespaces" else "tclc"
    args = ["lab", "up", "--students", str(students), "--name", name, "--base-port", str(19100 if mode == "namespaces" else 19200),
            "--home", str(tmp_path / "home")]
    if mode == "containers":
        args.append("--containers")
    up = _cli(*args)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        room = _room(name)
        seats = room["students"]
        assert [s["name"] for s in seats] == [f"{name}{i:02d}" for i in range(1, students + 1)]
        assert f"{name} (class)" in _cli("lab", "list").stdout
        for s in seats:
            base = f"http://127.0.0.1:{s['port']}"
            assert _status(f"{base}/api/status?token={s['token']}") == 200
            assert _status(f"{base}/api/status?token={seats[0]['token'] if s is not seats[0] else 'nope'}") == 403
            assert _status(f"{base}/api/contents/01_phase1_transforms.ipynb?token={s['token']}&content=0") == 200
        outputs = {}
        for s in seats:
            outputs[s["name"]] = run_code(f"http://127.0.0.1:{s['port']}", s["token"], STUDENT_CODE.format(mode=mode))
            assert "UP True" in outputs[s["name"]], outputs[s["name"]]
            where = "Peers in network namespaces" if mode == "namespaces" else "Peers in containers"
            assert where in outputs[s["name"]]
        # one student starts over: the others keep their SAs (their own daemons)
        from ipseclab.runtime.control import PeerClient

        run_code(f"http://127.0.0.1:{seats[0]['port']}", seats[0]["token"],
                 f"from ipseclab.teaching.peers import connect\nconnect({mode!r}).session.back_to_start()")
        for s in seats[1:]:
            with PeerClient(f"ipc://{s['run_dir']}/left.ctl", timeout=5.0) as client:
                assert client.list_sas()["ipsec"], f"{s['name']} lost its SAs when {seats[0]['name']} started over"
        with PeerClient(f"ipc://{seats[0]['run_dir']}/left.ctl", timeout=5.0) as client:
            assert not client.list_sas()["ipsec"]
    finally:
        down = _cli("lab", "down", "--class", name)
    assert down.returncode == 0, down.stdout + down.stderr
    assert not Path(f"/run/ipseclab-class/{name}").exists()
    for s in seats:
        assert s["pid"] is None or not _alive(s["pid"]), f"{s['name']}'s JupyterLab still runs"
        assert _status_or_refused(f"http://127.0.0.1:{s['port']}/api/status")
        assert (Path(s["labs_dir"]) / "01_phase1_transforms.ipynb").exists(), "the students' notebooks stay"
    assert not [n for n in _cli("lab", "list").stdout.split() if n.startswith(name)]


def _status_or_refused(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=5)
    except urllib.error.HTTPError:
        return False  # something still answers
    except (urllib.error.URLError, OSError):
        return True
    return False


def test_an_attached_notebook_builds_its_configurations_on_the_students_lab(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lab 3 loads its own configurations (``peers.configs(...)``) into the peers: attached to a
    student's lab they must carry that lab's addresses, not the in-memory ones."""
    from ipseclab.demo import DemoOptions
    from ipseclab.runtime.netlab.peers import NetLab
    from ipseclab.teaching.peers import connect

    lab = NetLab(f"att{os.getpid() % 10000}", "site-to-site", DemoOptions(seed=2), dataplane=True).up()
    try:
        monkeypatch.setenv("IPSECLAB_STACK", str(lab.topology.state_dir))
        peers = connect("namespaces", DemoOptions(seed=2, mode="aggressive"))
        assert peers.lab is None, "attached: the student's lab is not this kernel's to take down"
        left, right = peers.configs(DemoOptions(seed=2, mode="aggressive"))
        assert (left.address, right.address) == (lab.topology.hosts["left"].address, lab.topology.hosts["right"].address)
        peers.session.reset(configs=(left, right))
        peers.session.run_to_end()
        assert peers.session.established() and peers.session.messages()[0].exchange == "Aggressive Mode"
    finally:
        lab.down()
