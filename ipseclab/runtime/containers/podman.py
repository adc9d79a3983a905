"""A thin adapter over the ``podman`` command (rootful; Debian's 4.3).

Every call names its container or image explicitly and every container is removed by name
(``rm``), so a test cleans up exactly what it started. ``CONTAINERS_CONF`` points at
``containers/podman/containers.conf`` (runc, lower ulimits: what this machine kind needs) unless
the caller's environment already names one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ipseclab.errors import IpsecLabError

CONF = Path(__file__).resolve().parents[3] / "containers" / "podman" / "containers.conf"


class PodmanError(IpsecLabError):
    """A podman command failed; the message holds its output."""


class Podman:
    """Runs ``podman`` with this project's settings."""

    def __init__(self, binary: str = "podman") -> None:
        self.binary = binary
        self.env = dict(os.environ)
        if not self.env.get("CONTAINERS_CONF") and CONF.is_file():
            self.env["CONTAINERS_CONF"] = str(CONF)

    @staticmethod
    def available(binary: str = "podman") -> str | None:
        """None when podman can be used here, else why not (for a test's skip reason)."""
        if os.geteuid() != 0:
            return "rootful podman needs root"
        if shutil.which(binary) is None:
            return f"{binary} is not installed (the Makefile's Debian packages install it)"
        return None

    def __call__(self, *args: str, check: bool = True, timeout: float = 120.0, input: str | None = None) -> subprocess.CompletedProcess[str]:  # noqa: A002
        try:
            done = subprocess.run([self.binary, *args], capture_output=True, text=True, env=self.env, timeout=timeout, input=input)
        except subprocess.TimeoutExpired as exc:
            raise PodmanError(f"podman {' '.join(args[:3])} … took over {timeout:.0f} s") from exc
        if check and done.returncode != 0:
            raise PodmanError(f"podman {' '.join(args)} failed ({done.returncode}): {(done.stderr or done.stdout).strip()[-800:]}")
        return done

    def image_exists(self, image: str) -> bool:
        return self("image", "exists", image, check=False).returncode == 0

    def run_detached(self, name: str, image: str, argv: Sequence[str], *, netns: str | None = None,
                     caps: Sequence[str] = (), volumes: Sequence[tuple[str, str]] = ()) -> None:
        """Start container ``name`` (replacing a leftover of the same name) running ``argv``;
        ``netns`` joins a network namespace the caller made (``/run/netns/NAME``)."""
        self.rm(name)
        args = ["run", "-d", "--name", name]
        if netns:
            args += ["--network", f"ns:/run/netns/{netns}"]
        for cap in caps:
            args += ["--cap-add", cap]
        for host, inside in volumes:
            args += ["-v", f"{host}:{inside}"]
        try:
            self(*args, image, *argv)
        except PodmanError:
            self.rm(name)  # a container created but not started is still there: nothing stays behind
            raise

    def exec(self, name: str, *argv: str, check: bool = True, detach: bool = False, env: dict[str, str] | None = None,
             timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        args = ["exec"]
        if detach:
            args.append("-d")
        for key, value in (env or {}).items():
            args += ["-e", f"{key}={value}"]
        return self(*args, name, *argv, check=check, timeout=timeout)

    def rm(self, name: str) -> None:
        """Remove container ``name`` (killing it) if it exists."""
        self("rm", "-f", "-t", "0", name, check=False)


def bootstrap_image(podman: Podman, image: str, packages: Sequence[str]) -> str:
    """``image`` from Debian bookworm with ``packages``, without a registry: ``mmdebstrap`` into
    a tarball, then ``podman import`` (~20-30 s, once: an existing image is kept)."""
    if podman.image_exists(image):
        return image
    if shutil.which("mmdebstrap") is None:
        raise PodmanError("mmdebstrap is not installed (the Makefile's Debian packages install it)")
    with tempfile.TemporaryDirectory(prefix="ipl-image-") as tmp:
        tar = Path(tmp) / "base.tar"
        done = subprocess.run(["mmdebstrap", "--variant=minbase", f"--include={','.join(packages)}", "bookworm", str(tar)],
                              capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            raise PodmanError(f"mmdebstrap failed: {done.stderr.strip()[-800:]}")
        podman("import", "-q", str(tar), image, timeout=300)
    return image
