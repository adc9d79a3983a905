"""The Kubernetes path (Zero to JupyterHub values in ``containers/kubernetes/values.yaml``):
what can be checked without a cluster.

The file parses and names the image, command and privilege the pod needs; then (root, podman)
the jupyter image runs exactly as such a pod would — that command, privileged, the user's volume
empty — and a kernel of its JupyterLab negotiates Main and Quick Mode on the pod's own lab.
"""

from __future__ import annotations

import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

VALUES = Path(__file__).resolve().parents[1] / "containers" / "kubernetes" / "values.yaml"
Z2JH = Path(__file__).resolve().parent / "data" / "z2jh"


def _merged(base: dict, over: dict) -> dict:
    """Helm's merge of user values over a chart's defaults (maps merge, everything else replaces)."""
    out = dict(base)
    for key, value in over.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def test_the_values_validate_against_the_charts_schema() -> None:
    """What ``helm install`` checks: the chart's defaults with our values over them satisfy the
    chart's values schema; a key the chart does not have is refused the same way (as this file's
    first draft was: privilege goes through KubeSpawner's container_security_context)."""
    import json

    import jsonschema

    schema = json.loads((Z2JH / "values.schema.json").read_text())
    defaults = yaml.safe_load((Z2JH / "values.yaml").read_text())
    ours = yaml.safe_load(VALUES.read_text())
    jsonschema.validate(_merged(defaults, ours), schema)
    broken = _merged(ours, {"singleuser": {"extraContainerConfig": {"securityContext": {"privileged": True}}}})
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(_merged(defaults, broken), schema)


def test_the_values_file_says_what_a_user_pod_needs() -> None:
    values = yaml.safe_load(VALUES.read_text())
    single = values["singleuser"]
    assert single["image"]["name"].endswith("/ipseclab-jupyter")
    assert single["cmd"] == ["python3", "-m", "ipseclab.runtime.containers.entry", "notebook", "--"]
    assert values["hub"]["config"]["KubeSpawner"]["container_security_context"]["privileged"] is True
    assert single["uid"] == 0 and single["storage"]["homeMountPath"] == "/labs"
    assert values["hub"]["config"]["JupyterHub"]["authenticator_class"]
    assert "NOT TESTED ON A CLUSTER" in VALUES.read_text()


@pytest.mark.root
def test_the_jupyter_image_runs_as_the_pod_would(tmp_path: Path) -> None:
    from jupyter_remote import run_code
    from ports import free_tcp_port

    from ipseclab.runtime.containers.stack import containers_available, ensure_images

    reason = containers_available()
    if reason:
        print(f"skipping the pod run: {reason}", file=sys.stderr)
        pytest.skip(reason)
    image = ensure_images(jupyter=True)["jupyter"]
    from ipseclab.runtime.containers.podman import Podman

    podman, name, port, token = Podman(), "ipl-pod-test", free_tcp_port(), "podtoken"
    home = tmp_path / "home"
    home.mkdir()
    cmd = yaml.safe_load(VALUES.read_text())["singleuser"]["cmd"]
    podman.rm(name)
    try:
        podman("run", "-d", "--name", name, "--privileged", "-p", f"127.0.0.1:{port}:8888", "-v", f"{home}:/labs",
               "--entrypoint", cmd[0], image, *cmd[1:], f"--IdentityProvider.token={token}", timeout=120)
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=5):
                    break
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    raise AssertionError(podman("logs", name, check=False).stdout[-2000:]) from None
                time.sleep(0.5)
        assert (home / "01_phase1_transforms.ipynb").exists(), "the empty volume got the labs"
        assert not (home / "solutions").exists(), "never the solutions"
        out = run_code(f"http://127.0.0.1:{port}", token, "\n".join([
            "from ipseclab.demo import DemoOptions",
            "from ipseclab.teaching.peers import connect",
            "peers = connect('namespaces', DemoOptions(seed=3))",
            "peers.session.run_to_end()",
            "print(peers.describe().splitlines()[0], peers.session.established())",
        ]))
        assert "Peers in network namespaces" in out and out.strip().endswith("True"), out
    finally:
        podman.rm(name)
