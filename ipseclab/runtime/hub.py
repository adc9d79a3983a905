"""JupyterHub for a class: every user's server comes with a lab of its own.

``containers/jupyterhub/jupyterhub_config.py`` calls :func:`configure`: before a user's server
starts, :func:`pre_spawn_hook` brings up that user's lab — two ``ipseclab peer`` daemons in
network namespaces (or a container stack) named ``u<8 hex digits of the user name>`` — hands
its control sockets to the user's account (the daemons stay root's; another student cannot
open them), copies the labs into the user's home on the first start and sets
``IPSECLAB_STACK`` so that ``connect(PEERS, ...)`` in any notebook attaches to the user's own
peers.  When the server stops, :func:`post_stop_hook` takes the lab down.  The hub runs as root
(namespaces, TUN devices, podman), as JupyterHub's ``LocalProcessSpawner`` needs anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import pwd
import shutil
import sys
from pathlib import Path
from typing import Any

from ipseclab.demo import DemoOptions

LABS = Path(__file__).resolve().parents[2] / "labs"


def user_lab_name(username: str) -> str:
    """A lab name for a hub user: ``u`` + 8 hex digits of the name (fits the 10-character limit)."""
    return "u" + hashlib.sha256(username.encode()).hexdigest()[:8]


def _account(spawner: Any) -> tuple[int, int] | None:
    """The (uid, gid) the user's server runs as, when that is a system account (LocalProcessSpawner)."""
    if type(spawner).__name__ == "SimpleLocalProcessSpawner":
        return None  # every server runs as the hub's own user
    with contextlib.suppress(KeyError):
        entry = pwd.getpwnam(spawner.user.name)
        return entry.pw_uid, entry.pw_gid
    return None


def _bring_up(spawner: Any, containers: bool, kind: str) -> Path:
    name = user_lab_name(spawner.user.name)
    if containers:
        from ipseclab.runtime.containers.stack import ContainerLab, free_networks

        lab = ContainerLab(name, kind, DemoOptions(), networks=free_networks(kind, name)).up()
        run_dir = lab.state_dir
    else:
        from ipseclab.runtime.netlab.peers import NetLab
        from ipseclab.runtime.netlab.topology import destroy, lab_names

        if name in lab_names():  # a server that was not stopped cleanly
            destroy(name)
        lab = NetLab(name, kind, DemoOptions(), dataplane=True).up()
        run_dir = Path(lab.topology.state_dir)
    for client in lab.clients.values():
        with contextlib.suppress(Exception):
            client.close()  # type: ignore[attr-defined]
    account = _account(spawner)
    if account is not None:  # the user's kernels open these sockets; nobody else can
        for path in (run_dir, *(run_dir / f"{role}.{ext}" for role in ("left", "right") for ext in ("ctl", "ev")), run_dir / "peers.json"):
            with contextlib.suppress(FileNotFoundError):
                os.chown(path, *account)
    return run_dir


def _labs_for(spawner: Any) -> Path:
    home = Path(spawner.user_env({}).get("HOME") or Path.home())
    labs = home / "ipseclab-labs"
    if not labs.exists():
        shutil.copytree(LABS, labs, ignore=shutil.ignore_patterns("lab-export", ".ipynb_checkpoints", "solutions"))
        account = _account(spawner)
        if account is not None:
            for path in (labs, *labs.rglob("*")):
                os.chown(path, *account)
    return labs


def make_hooks(*, containers: bool = False, kind: str = "site-to-site") -> tuple[Any, Any]:
    """The spawner's ``pre_spawn_hook`` and ``post_stop_hook`` for labs of ``kind``."""

    async def pre_spawn_hook(spawner: Any) -> None:
        run_dir = await asyncio.get_running_loop().run_in_executor(None, _bring_up, spawner, containers, kind)
        spawner.environment["IPSECLAB_STACK"] = str(run_dir)
        labs = await asyncio.get_running_loop().run_in_executor(None, _labs_for, spawner)
        spawner.notebook_dir = str(labs)
        spawner.log.info("ipseclab: %s has lab %s (%s)", spawner.user.name, user_lab_name(spawner.user.name), run_dir)

    def post_stop_hook(spawner: Any) -> None:
        name = user_lab_name(spawner.user.name)
        if containers:
            from ipseclab.runtime.containers.stack import ContainerLab, container_lab_names

            if name in container_lab_names():
                ContainerLab.attach(name).down()
        else:
            from ipseclab.runtime.netlab.topology import destroy, lab_names

            if name in lab_names():
                destroy(name)
        spawner.log.info("ipseclab: lab %s of %s is down", name, spawner.user.name)

    return pre_spawn_hook, post_stop_hook


def configure(c: Any, *, containers: bool = False, kind: str = "site-to-site") -> None:
    """Set up a JupyterHub config object ``c``: the lab hooks on the spawner, JupyterLab as the
    default page.  Authentication and the spawner class stay the hub's (PAM and
    ``LocalProcessSpawner`` by default: students log in with their system accounts)."""
    pre, post = make_hooks(containers=containers, kind=kind)
    c.Spawner.pre_spawn_hook = pre
    c.Spawner.post_stop_hook = post
    c.Spawner.default_url = "/lab"
    # this Python's environment has jupyterhub-singleuser and the proxy, whatever PATH says
    bindir = Path(sys.executable).parent
    if (bindir / "jupyterhub-singleuser").exists():
        c.Spawner.cmd = [str(bindir / "jupyterhub-singleuser")]
    if (bindir / "configurable-http-proxy").exists():
        c.ConfigurableHTTPProxy.command = [str(bindir / "configurable-http-proxy")]
    c.Spawner.http_timeout = 120
    c.Spawner.start_timeout = 180
