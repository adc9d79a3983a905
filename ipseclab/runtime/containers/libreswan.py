"""libreswan 4.10 (pluto) in a podman container, as a second independent IKEv1 peer.

The image is built without a registry (``mmdebstrap`` of Debian bookworm with ``libreswan``,
imported into podman) once per machine. The container joins a network namespace a
:mod:`~ipseclab.runtime.netlab.topology` made, so it takes a host's place in the lab unchanged.

This kernel has no ESP, and pluto aborts a Quick Mode when installing its IPsec SAs fails;
``containers/libreswan/xfrm_ack.c`` (compiled here with gcc, preloaded into pluto) answers
only those installs with a netlink ACK and logs what pluto wanted to install — SPI and keys —
so a test compares every ESP key with ours. No ESP flows through libreswan.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ipseclab.runtime.containers.podman import Podman, PodmanError, bootstrap_image

IMAGE = "localhost/ipseclab-libreswan:4.10"
SHIM_SOURCE = Path(__file__).resolve().parents[3] / "containers" / "libreswan" / "xfrm_ack.c"
XFRM_MSG_HEADER = 16
SPI_OFFSET = XFRM_MSG_HEADER + 56 + 16  # nlmsghdr, xfrm_selector, xfrm_id.daddr


def ensure_image(podman: Podman, image: str = IMAGE) -> str:
    """The libreswan image, built once (``mmdebstrap`` + ``podman import``, ~30 s)."""
    return bootstrap_image(podman, image, ("libreswan", "iproute2", "procps"))


def build_shim(dest: Path) -> Path:
    """Compile the XFRM-install shim into ``dest`` (a directory); returns the .so path."""
    out = dest / "xfrm_ack.so"
    done = subprocess.run(["gcc", "-shared", "-fPIC", "-O2", "-o", str(out), str(SHIM_SOURCE), "-ldl"],
                          capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise PodmanError(f"cannot build the XFRM shim: {done.stderr.strip()[-800:]}")
    return out


@dataclass(frozen=True)
class PlutoInstall:
    """One IPsec SA pluto asked the kernel to install (XFRM_MSG_NEWSA/UPDSA): its SPI and the
    whole request, in which its keys appear verbatim."""

    spi: int
    request: bytes

    def holds(self, key: bytes) -> bool:
        return bool(key) and key in self.request


@dataclass(frozen=True)
class Conn:
    """One ``conn`` for ``ipsec.conf`` (libreswan's names): IKEv1, or IKEv2 with ``ikev2``."""

    local: str
    remote: str
    local_id: str
    remote_id: str
    local_subnet: str
    remote_subnet: str
    psk: str
    ike: str = "aes128-sha1;modp2048"
    esp: str = "aes128-sha1"
    pfs: bool = False
    aggressive: bool = False
    encapsulation: bool = False
    ikev2: bool = False
    #: remote access (IKEv2 CP / IKEv1 Mode Config): as the gateway, the range its clients get
    #: (``rightaddresspool``); as a client, ask for an address (``leftmodecfgclient``)
    address_pool: str = ""
    modecfg_client: bool = False
    #: IKEv1 XAUTH (with Mode Config pull): "server" checks ``xauth_user``'s password from
    #: ``/etc/ipsec.d/passwd``, "client" logs in as ``xauth_user`` with ``xauth_password``
    xauth: str = ""
    xauth_user: str = "alice"
    xauth_password: str = ""

    def ipsec_conf(self, name: str) -> str:
        lines = [
            "ikev2=insist" if self.ikev2 else "ikev2=no", "authby=secret", f"left={self.local}", f"leftid={self.local_id}", f"leftsubnet={self.local_subnet}",
            f"right={self.remote}", f"rightid={self.remote_id}", f"rightsubnet={self.remote_subnet}",
            f"ike={self.ike}", f"phase2alg={self.esp}", f"pfs={'yes' if self.pfs else 'no'}", "auto=add",
        ]
        if self.address_pool:
            lines += [f"rightaddresspool={self.address_pool}", "rightmodecfgclient=yes", "leftmodecfgserver=yes"]
            lines = [line for line in lines if not line.startswith("rightsubnet=")]
        if self.modecfg_client and self.ikev2:  # any address the gateway gives, the child narrowed to it
            lines += ["leftmodecfgclient=yes", "narrowing=yes"]
            lines = [line if not line.startswith("leftsubnet=") else "leftsubnet=0.0.0.0/0" for line in lines]
        elif self.modecfg_client:  # IKEv1: its Quick Mode proposes the address Mode Config gave
            lines += ["leftmodecfgclient=yes"]
            lines = [line for line in lines if not line.startswith("leftsubnet=")]
        if self.xauth == "server":
            lines += ["leftxauthserver=yes", "rightxauthclient=yes", "xauthby=file", "modecfgpull=yes"]
        elif self.xauth == "client":
            lines += ["leftxauthclient=yes", f"leftusername={self.xauth_user}", "rightxauthserver=yes",
                      "rightmodecfgserver=yes", "modecfgpull=yes"]
        if self.aggressive:
            lines.append("aggressive=yes")
        if self.encapsulation:
            lines.append("encapsulation=yes")
        body = "\n".join(f"    {line}" for line in lines)
        return f"config setup\n    ikev1-policy=accept\n    logfile=/mnt/pluto.log\n\nconn {name}\n{body}\n"

    def secrets(self) -> str:
        text = f'{self.local_id} {self.remote_id} : PSK "{self.psk}"\n'
        if self.xauth == "client":
            text += f'@{self.xauth_user} : XAUTH "{self.xauth_password}"\n'
        return text

    def passwd(self, conn_name: str) -> str:
        """``/etc/ipsec.d/passwd`` for ``xauthby=file``: ``user:crypt(3) hash:connection``."""
        if self.xauth != "server":
            return ""
        hashed = subprocess.run(["openssl", "passwd", "-1", "-stdin"], input=self.xauth_password, capture_output=True,
                                text=True, check=True).stdout.strip()
        return f"{self.xauth_user}:{hashed}:{conn_name}\n"


class Libreswan:
    """pluto in container ``name``, in network namespace ``netns``, with one connection."""

    def __init__(self, podman: Podman, name: str, netns: str, workdir: Path, conn: Conn, conn_name: str = "lab") -> None:
        self.podman = podman
        self.name = name
        self.netns = netns
        self.workdir = workdir
        self.conn = conn
        self.conn_name = conn_name

    def start(self, timeout: float = 20.0) -> Libreswan:
        image = ensure_image(self.podman)
        self.workdir.mkdir(parents=True, exist_ok=True)
        build_shim(self.workdir)
        (self.workdir / "ipsec.conf").write_text(self.conn.ipsec_conf(self.conn_name))
        (self.workdir / "ipsec.secrets").write_text(self.conn.secrets())
        (self.workdir / "ipsec.secrets").chmod(0o600)
        (self.workdir / "passwd").write_text(self.conn.passwd(self.conn_name))
        (self.workdir / "passwd").chmod(0o600)
        self.podman.run_detached(self.name, image, ["sleep", "infinity"], netns=self.netns,
                                 caps=("NET_ADMIN", "SYS_ADMIN"), volumes=((str(self.workdir), "/mnt"),))
        try:
            self.podman.exec(self.name, "sh", "-c", "mkdir -p /run/pluto && cp /mnt/ipsec.conf /etc/ipsec.conf && "
                             "cp /mnt/ipsec.secrets /etc/ipsec.secrets && mkdir -p /etc/ipsec.d && "
                             "cp /mnt/passwd /etc/ipsec.d/passwd && ipsec initnss >/dev/null")
            self.podman.exec(self.name, "/usr/libexec/ipsec/pluto", "--config", "/etc/ipsec.conf", "--nofork",
                             detach=True, env={"LD_PRELOAD": "/mnt/xfrm_ack.so", "XFRM_ACK_LOG": "/mnt/xfrm.log"})
            deadline = time.monotonic() + timeout
            while self.podman.exec(self.name, "ipsec", "whack", "--status", check=False).returncode != 0:
                if time.monotonic() > deadline:
                    raise PodmanError(f"pluto did not start within {timeout:.0f} s: {self.log()[-800:]}")
                time.sleep(0.2)
            self.podman.exec(self.name, "ipsec", "addconn", "--autoall")
            self.podman.exec(self.name, "ipsec", "whack", "--listen")
        except Exception:
            self.stop()
            raise
        return self

    def up(self, timeout: float = 20.0) -> str:
        """``ipsec auto --up``: initiate the connection; returns whack's output."""
        done = self.podman.exec(self.name, "timeout", str(int(timeout)), "ipsec", "auto", "--up", self.conn_name,
                                check=False, timeout=timeout + 10)
        return done.stdout + done.stderr

    def status(self) -> str:
        return self.podman.exec(self.name, "ipsec", "status", check=False).stdout

    def established(self) -> tuple[bool, bool]:
        """(an IKE SA established, an IPsec (child) SA established), from ``ipsec status``
        (IKEv1: "IKE SA established", IKEv2: "established IKE SA" / "established Child SA")."""
        text = self.status()
        return ("(IKE SA established)" in text or "(established IKE SA)" in text,
                "(IPsec SA established)" in text or "(established Child SA)" in text)

    def installs(self) -> list[PlutoInstall]:
        path = self.workdir / "xfrm.log"
        if not path.exists():
            return []
        out = []
        for line in path.read_text().split():
            request = bytes.fromhex(line)
            if len(request) >= SPI_OFFSET + 4:
                out.append(PlutoInstall(int.from_bytes(request[SPI_OFFSET:SPI_OFFSET + 4], "big"), request))
        return out

    def log(self) -> str:
        path = self.workdir / "pluto.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        self.podman.rm(self.name)

    def __enter__(self) -> Libreswan:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
