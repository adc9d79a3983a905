"""JupyterHub with the class configuration (``ipseclab.runtime.hub``), three users (root).

The hub (PyPI's jupyterhub with the Python configurable-http-proxy) runs the shipped hooks with
test authentication and one system account for every server; each user's server starts with a
lab of its own, code in a kernel of each server (through the hub's proxy, as a notebook runs it)
negotiates on that user's own daemons, and stopping a server takes its lab down.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from jupyter_remote import run_code

pytestmark = pytest.mark.root

if os.geteuid() != 0:
    print("skipping the JupyterHub class: needs root (namespaces); CI runs as root", file=sys.stderr)
    pytest.skip("needs root", allow_module_level=True)
pytest.importorskip("jupyterhub")

USERS = ("alice", "bob", "carol")
CODE = """
from ipseclab.demo import DemoOptions
from ipseclab.teaching.peers import connect
import os
peers = connect("namespaces", DemoOptions(seed=2))
peers.session.run_to_end()
print("LAB", os.path.basename(os.environ["IPSECLAB_STACK"]), peers.session.established())
"""


def _api(hub: str, token: str, method: str, path: str, body: dict | None = None) -> dict:
    req = urllib.request.Request(f"{hub}/hub/api{path}", method=method, data=json.dumps(body or {}).encode() if method != "GET" else None,
                                 headers={"Content-Type": "application/json", **({"Authorization": f"token {token}"} if token else {})})
    with urllib.request.urlopen(req, timeout=60) as r:
        raw = r.read()
    return json.loads(raw) if raw else {}


def test_every_hub_user_gets_a_lab_of_their_own(tmp_path: Path) -> None:
    from ports import free_tcp_port

    from ipseclab.runtime.hub import user_lab_name
    from ipseclab.runtime.netlab.topology import lab_names

    port = free_tcp_port()
    api_token = secrets.token_hex(16)
    config = tmp_path / "jupyterhub_config.py"
    config.write_text(f"""
exec(open({str(Path(__file__).resolve().parents[1] / 'containers' / 'jupyterhub' / 'jupyterhub_config.py')!r}).read())
c.JupyterHub.bind_url = "http://127.0.0.1:{port}"
c.JupyterHub.hub_port = {free_tcp_port()}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{free_tcp_port()}"
c.JupyterHub.authenticator_class = "dummy"
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = {str(tmp_path / "home" / "{username}")!r}
c.Spawner.args = ["--allow-root"]
c.JupyterHub.db_url = "sqlite:///{tmp_path / 'hub.sqlite'}"
c.JupyterHub.cookie_secret_file = {str(tmp_path / 'cookie_secret')!r}
c.JupyterHub.pid_file = {str(tmp_path / 'hub.pid')!r}
c.JupyterHub.services = [{{"name": "class-admin", "api_token": {api_token!r}}}]
c.JupyterHub.load_roles = [{{"name": "class-admin", "scopes": ["admin:users", "admin:servers", "tokens", "access:servers"], "services": ["class-admin"]}}]
c.Authenticator.allow_all = True
""")
    log = (tmp_path / "hub.log").open("wb")
    hub_proc = subprocess.Popen([str(Path(sys.executable).with_name("jupyterhub")), "-f", str(config)], cwd=tmp_path,
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    log.close()
    hub = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                _api(hub, api_token, "GET", "/")
                break
            except (urllib.error.URLError, OSError):
                if hub_proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError((tmp_path / "hub.log").read_text()[-3000:]) from None
                time.sleep(0.5)
        seen = {}
        for user in USERS:
            _api(hub, api_token, "POST", f"/users/{user}")
            _api(hub, api_token, "POST", f"/users/{user}/server")
        for user in USERS:
            deadline = time.monotonic() + 120
            while not _api(hub, api_token, "GET", f"/users/{user}").get("servers", {}).get("", {}).get("ready"):
                assert time.monotonic() < deadline, (tmp_path / "hub.log").read_text()[-3000:]
                time.sleep(0.5)
            assert user_lab_name(user) in lab_names(), f"{user}'s lab is up with the server"
            # the user asks for a token of their own, logging in as the test authenticator allows
            token = _api(hub, "", "POST", f"/users/{user}/tokens", {"auth": {"username": user, "password": "class"}, "expires_in": 600})["token"]
            out = run_code(f"{hub}/user/{user}", token, CODE)
            seen[user] = out
            assert f"LAB {user_lab_name(user)} True" in out, out
            assert (tmp_path / "home" / user / "ipseclab-labs" / "01_phase1_transforms.ipynb").exists()
        assert len({user_lab_name(u) for u in USERS}) == 3
        for user in USERS:
            _api(hub, api_token, "DELETE", f"/users/{user}/server")
        deadline = time.monotonic() + 60
        while any(user_lab_name(u) in lab_names() for u in USERS) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not [u for u in USERS if user_lab_name(u) in lab_names()], "a stopped server's lab is gone"
    finally:
        os.killpg(hub_proc.pid, signal.SIGTERM)
        try:
            hub_proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(hub_proc.pid, signal.SIGKILL)
            hub_proc.wait(timeout=10)
        from ipseclab.runtime.netlab.topology import destroy

        for user in USERS:
            if user_lab_name(user) in lab_names():
                destroy(user_lab_name(user))
