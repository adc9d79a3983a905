"""strongSwan's ``charon`` as a lab peer: one daemon per namespace, driven over VICI.

Debian 12's strongSwan 5.9.8 runs here with ``kernel-libipsec`` (this machine kind has no
kernel ESP).  charon hard-codes its pidfile to ``/run/charon.pid``, so every instance gets a
private mount namespace (``unshare -m``) with its own directory bound over ``/run``; its
``strongswan.conf``, VICI socket and file log live in a work directory of its own::

    charon = Charon(workdir)
    charon.start(topology_spawner(topo, "right"))     # or netns_spawner("some-netns")
    charon.load_psk("throw-away secret")
    charon.load_conn("lab", charon_conn(local="10.99.0.2", remote="10.99.0.1", ...))
    charon.initiate("c1")                              # InitiateResult (ok, error, log)
    charon.list_sas()                                  # plain str/dict data
    charon.keys_from_log()                             # Ka per cookie, ESP keys per SPI
    charon.stop()                                      # SIGTERM to charon's own PID

The process is started as ``unshare -m sh -c "mount ... && exec charon"``: both ``unshare``
(without ``--fork``) and ``sh`` exec, so the PID we hold is charon's own and ``stop`` signals
exactly that process.  The log runs at level 4 for IKE and CHD, which prints every derived
key (and the PSK): use throw-away secrets only.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

from ipseclab.errors import IpsecLabError
from ipseclab.runtime.netlab.charonlog import CharonKeys, keys_from_log

if TYPE_CHECKING:
    import vici

CHARON_BIN = "/usr/lib/ipsec/charon"

#: Plugins loaded explicitly (``load_modular = no``): enough for IKEv1/IKEv2 with PSK or
#: RSA certificates, AES-CBC/GCM, MODP/ECP/X25519 and ESP through kernel-libipsec.
PLUGINS = (
    "random nonce openssl gcm aes sha1 sha2 hmac gmp curve25519 kdf pem pkcs1 x509 pubkey "
    "kernel-libipsec kernel-netlink socket-default updown vici eap-identity eap-md5 xauth-generic"
)

#: File-log levels: IKE/CHD at 4 print the keys ``keys_from_log`` needs, MGR at 2 the
#: "checkout IKEv1 SA with SPIs" lines that tie them to cookies.
DEFAULT_LOG_LEVELS: dict[str, int] = {
    "default": 1,
    "ike": 4,
    "chd": 4,
    "cfg": 2,
    "mgr": 2,
    "enc": 1,
    "net": 1,
    "knl": 1,
    "lib": 1,
}


class CharonError(IpsecLabError):
    """charon could not be started, reached or driven (the message says which and why)."""


class Spawner(Protocol):
    """Starts ``argv`` inside a network namespace and returns the process (its PID is argv's)."""

    def __call__(
        self, argv: Sequence[str], *, stdout: IO[bytes] | int, stderr: IO[bytes] | int, env: Mapping[str, str]
    ) -> subprocess.Popen[bytes]: ...


def netns_spawner(netns: str) -> Spawner:
    """A :class:`Spawner` using ``ip netns exec NETNS`` (ip execs, so the PID stays argv's)."""

    def spawn(
        argv: Sequence[str], *, stdout: IO[bytes] | int, stderr: IO[bytes] | int, env: Mapping[str, str]
    ) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            ["ip", "netns", "exec", netns, *argv],
            stdout=stdout,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            env=dict(env),
            start_new_session=True,
        )

    return spawn


def topology_spawner(topology: Any, role: str) -> Spawner:
    """A :class:`Spawner` using ``Topology.spawn(role, ...)`` (setns; the topology also
    remembers the PID and kills it on ``down()`` should we not get to it)."""

    def spawn(
        argv: Sequence[str], *, stdout: IO[bytes] | int, stderr: IO[bytes] | int, env: Mapping[str, str]
    ) -> subprocess.Popen[bytes]:
        return topology.spawn(role, list(argv), stdout=stdout, stderr=stderr, env=dict(env))

    return spawn


def strongswan_conf(
    workdir: Path,
    *,
    levels: Mapping[str, int] = DEFAULT_LOG_LEVELS,
    aggressive_psk: bool = True,
    retransmit_timeout: float = 2.0,
    plugins: str = PLUGINS,
    install_virtual_ip: bool = False,
) -> str:
    """``strongswan.conf`` for one instance (nested sections: charon rejects dotted keys).

    ``aggressive_psk`` sets ``i_dont_care_about_security_and_use_aggressive_mode_psk``,
    without which a responder answers Aggressive Mode PSK with AUTHENTICATION_FAILED.
    """
    aggr = "  i_dont_care_about_security_and_use_aggressive_mode_psk = yes\n" if aggressive_psk else ""
    level_lines = "".join(f"      {k} = {v}\n" for k, v in levels.items())
    return f"""charon {{
  load_modular = no
  load = {plugins}
{aggr}  install_virtual_ip = {"yes" if install_virtual_ip else "no"}
  retransmit_timeout = {retransmit_timeout}
  plugins {{
    vici {{
      socket = unix://{workdir}/charon.vici
    }}
  }}
  filelog {{
    main {{
      path = {workdir}/charon.log
{level_lines}      flush_line = yes
      append = no
    }}
  }}
  syslog {{
    daemon {{
      default = -1
    }}
  }}
}}
swanctl {{
  socket = unix://{workdir}/charon.vici
}}
"""


def plain(value: Any) -> Any:
    """VICI answers (bytes, nested dicts/lists, OrderedDicts) as str/dict/list."""
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


@dataclass(frozen=True)
class CharonChild:
    """One charon child (``connections.<conn>.children.<name>``), seen from charon's side."""

    name: str
    local_ts: str
    remote_ts: str
    esp_proposals: str = "aes128-sha1"
    extra: Mapping[str, Any] = field(default_factory=dict)


def charon_conn(
    *,
    local: str,
    remote: str,
    proposals: str = "aes128-sha1-modp2048",
    children: Iterable[CharonChild] = (),
    aggressive: bool = False,
    auth: str = "psk",
    local_id: str | None = None,
    remote_id: str | None = None,
    certs: Sequence[bytes] = (),
    cacerts: Sequence[bytes] = (),
    extra: Mapping[str, Any] | None = None,
    version: int = 1,
) -> dict[str, Any]:
    """A VICI ``load-conn`` body for an IKEv1 (or, with ``version = 2``, IKEv2) connection.

    ``auth`` is ``psk`` or ``pubkey``; with ``pubkey`` pass our certificate(s) in ``certs``
    and the trusted CA(s) in ``cacerts`` as PEM bytes (charon parses the blobs itself).
    DPD is off; ``rekey_time``/``reauth_time`` keep charon's defaults unless ``extra``
    overrides them.
    """
    if auth not in ("psk", "pubkey"):
        raise CharonError(f"auth must be 'psk' or 'pubkey', not {auth!r}")
    local_round: dict[str, Any] = {"auth": auth}
    remote_round: dict[str, Any] = {"auth": auth}
    if local_id:
        local_round["id"] = local_id
    if remote_id:
        remote_round["id"] = remote_id
    if certs:
        local_round["certs"] = list(certs)
    if cacerts:
        remote_round["cacerts"] = list(cacerts)
    conn: dict[str, Any] = {
        "version": str(version),
        "local_addrs": [local],
        "remote_addrs": [remote],
        "proposals": [proposals],
        "aggressive": "yes" if aggressive else "no",
        "dpd_delay": "0",
        "local": local_round,
        "remote": remote_round,
        "children": {
            c.name: {
                "local_ts": [c.local_ts],
                "remote_ts": [c.remote_ts],
                "esp_proposals": [c.esp_proposals],
                "start_action": "none",
                **c.extra,
            }
            for c in children
        },
    }
    conn.update(extra or {})
    return conn


@dataclass
class InitiateResult:
    """What a VICI ``initiate`` / ``terminate`` returned: success, charon's error text, its log."""

    ok: bool
    seconds: float
    error: str | None = None
    log: list[str] = field(default_factory=list)


def _connect(path: Path, alive: Callable[[], bool], timeout: float) -> socket.socket:
    deadline = time.monotonic() + timeout
    while True:
        if not alive():
            raise CharonError("charon exited before its VICI socket answered")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(str(path))
            return sock
        except OSError:
            sock.close()
            if time.monotonic() > deadline:
                raise CharonError(f"no VICI socket at {path} after {timeout} s") from None
            time.sleep(0.03)


class Charon:
    """One charon daemon with its own work directory, ``/run``, VICI socket and log."""

    def __init__(
        self,
        workdir: str | os.PathLike[str],
        *,
        levels: Mapping[str, int] = DEFAULT_LOG_LEVELS,
        aggressive_psk: bool = True,
        retransmit_timeout: float = 2.0,
        binary: str = CHARON_BIN,
        install_virtual_ip: bool = False,
    ) -> None:
        self.workdir = Path(workdir).resolve()
        self.install_virtual_ip = install_virtual_ip  # a remote-access client puts its virtual IP on an interface
        self.levels = dict(levels)
        self.aggressive_psk = aggressive_psk
        self.retransmit_timeout = retransmit_timeout
        self.binary = binary
        self.process: subprocess.Popen[bytes] | None = None
        self._socks: list[socket.socket] = []
        self._session: vici.Session | None = None

    def __repr__(self) -> str:
        pid = self.process.pid if self.process else None
        return f"<Charon {self.workdir} pid={pid}>"

    # -- paths ---------------------------------------------------------------------

    @property
    def vici_path(self) -> Path:
        return self.workdir / "charon.vici"

    @property
    def log_path(self) -> Path:
        return self.workdir / "charon.log"

    @property
    def conf_path(self) -> Path:
        return self.workdir / "strongswan.conf"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @staticmethod
    def available(binary: str = CHARON_BIN) -> str | None:
        """``None`` if charon and the ``vici`` package can be used here, else the reason."""
        if not os.access(binary, os.X_OK):
            return f"{binary} is not installed (Debian: apt-get install strongswan-charon libstrongswan-standard-plugins libcharon-extra-plugins libcharon-extauth-plugins)"
        try:
            import vici  # noqa: F401
        except ImportError:
            return "the Python package 'vici' is not installed (pip install vici)"
        return None

    # -- life cycle ----------------------------------------------------------------

    def start(self, spawn: Spawner, *, timeout: float = 10.0) -> None:
        """Write the configuration, start charon through ``spawn`` and connect to VICI."""
        import vici

        if self.process is not None:
            raise CharonError("this charon is already running")
        (self.workdir / "run").mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.vici_path.unlink()
        self.conf_path.write_text(
            strongswan_conf(
                self.workdir,
                levels=self.levels,
                aggressive_psk=self.aggressive_psk,
                retransmit_timeout=self.retransmit_timeout,
                install_virtual_ip=self.install_virtual_ip,
            )
        )
        script = (
            f"mount --make-rprivate / && mount --bind {self.workdir}/run /run && exec {self.binary}"
        )
        env = {**os.environ, "STRONGSWAN_CONF": str(self.conf_path)}
        with open(self.workdir / "charon.out", "wb") as out:
            self.process = spawn(["unshare", "-m", "sh", "-c", script], stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            sock = _connect(self.vici_path, lambda: self.process is not None and self.process.poll() is None, timeout)
            self._socks.append(sock)
            self._session = vici.Session(sock)
            self._session.version()
        except Exception as exc:
            out_text = (self.workdir / "charon.out").read_text(errors="replace")
            self.stop()
            raise CharonError(f"charon did not come up: {exc}\n{out_text}") from exc

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM charon's own PID and wait (SIGKILL after ``timeout``); returns its exit code."""
        for sock in self._socks:
            with contextlib.suppress(OSError):
                sock.close()
        self._socks.clear()
        self._session = None
        proc, self.process = self.process, None
        if proc is None:
            return None
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
        return proc.returncode

    def __enter__(self) -> Charon:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- VICI ----------------------------------------------------------------------

    @property
    def vici(self) -> vici.Session:
        """The main VICI session (one request at a time: use :meth:`session` from threads)."""
        if self._session is None:
            raise CharonError("charon is not running")
        return self._session

    def session(self) -> vici.Session:
        """A new VICI connection, e.g. for a blocking ``initiate`` in another thread."""
        import vici

        if self.process is None:
            raise CharonError("charon is not running")
        sock = _connect(self.vici_path, lambda: True, 5.0)
        self._socks.append(sock)
        return vici.Session(sock)

    def _request(self, what: str, call: Callable[[], Any]) -> Any:
        from vici.exception import CommandException, SessionException

        try:
            return call()
        except (CommandException, SessionException, OSError) as exc:
            raise CharonError(f"VICI {what} failed: {exc}") from exc

    def load_psk(self, secret: str | bytes, owners: Sequence[str] = ()) -> None:
        """``load-shared`` an IKE pre-shared key (for ``owners``, or for any peer)."""
        body: dict[str, Any] = {"type": "IKE", "data": secret}
        if owners:
            body["owners"] = list(owners)
        self._request("load-shared", lambda: self.vici.load_shared(body))

    def load_eap(self, user: str, password: str, *, kind: str = "EAP") -> None:
        """``load-shared`` an EAP (or, ``kind="XAUTH"``, an XAUTH) password — swanctl's
        ``secrets.eap-<user>`` / ``xauth-<user>`` — both to check a client's and to log in as it."""
        self._request("load-shared", lambda: self.vici.load_shared({"type": kind, "data": password, "owners": [user]}))

    def load_cert(self, pem: bytes, *, ca: bool = False) -> None:
        """``load-cert`` an X.509 certificate (``ca``: a trust anchor)."""
        body = {"type": "X509", "flag": "CA" if ca else "NONE", "data": pem}
        self._request("load-cert", lambda: self.vici.load_cert(body))

    def load_key(self, pem: bytes, key_type: str = "any") -> None:
        """``load-key`` a private key (PEM or DER; ``rsa``, ``ecdsa`` or ``any``)."""
        self._request("load-key", lambda: self.vici.load_key({"type": key_type, "data": pem}))

    def load_pool(self, name: str, addrs: str, dns: Sequence[str] = ()) -> None:
        """``load-pool``: a virtual IP pool for remote-access clients (swanctl's ``pools``)."""
        body: dict[str, Any] = {"addrs": addrs}
        if dns:
            body["dns"] = list(dns)
        self._request("load-pool", lambda: self.vici.load_pool({name: body}))

    def load_conn(self, name: str, conn: Mapping[str, Any]) -> None:
        """``load-conn`` one connection (see :func:`charon_conn` for the body)."""
        self._request("load-conn", lambda: self.vici.load_conn({name: dict(conn)}))

    def unload_conn(self, name: str) -> None:
        self._request("unload-conn", lambda: self.vici.unload_conn({"name": name}))

    def clear_creds(self) -> None:
        """Forget every loaded secret, key and certificate."""
        self._request("clear-creds", lambda: self.vici.clear_creds())

    def _streamed(self, command: str, body: dict[str, Any], session: vici.Session | None) -> InitiateResult:
        from vici.exception import CommandException, SessionException

        sess = session or self.vici
        t0 = time.monotonic()
        log: list[str] = []
        try:
            for entry in getattr(sess, command)(body):
                log.append(plain(entry).get("msg", ""))
        except (CommandException, SessionException, OSError) as exc:
            return InitiateResult(False, round(time.monotonic() - t0, 3), str(exc), log)
        return InitiateResult(True, round(time.monotonic() - t0, 3), None, log)

    def initiate(
        self,
        child: str | None = None,
        *,
        ike: str | None = None,
        timeout: float = 10.0,
        session: vici.Session | None = None,
    ) -> InitiateResult:
        """Bring up ``child`` (and its IKE SA); blocks up to ``timeout`` seconds."""
        body: dict[str, Any] = {"timeout": str(int(timeout * 1000)), "init-limits": "no"}
        if child:
            body["child"] = child
        if ike:
            body["ike"] = ike
        return self._streamed("initiate", body, session)

    def terminate(
        self,
        *,
        ike: str | None = None,
        child: str | None = None,
        ike_id: int | None = None,
        timeout: float = 5.0,
        force: bool = False,
        session: vici.Session | None = None,
    ) -> InitiateResult:
        """Delete an IKE SA (with its children) or a child; charon sends Delete notifications."""
        body: dict[str, Any] = {"timeout": str(int(timeout * 1000))}
        for key, value in (("ike", ike), ("child", child), ("ike-id", ike_id)):
            if value is not None:
                body[key] = str(value)
        if force:
            body["force"] = "yes"
        return self._streamed("terminate", body, session)

    def list_sas(self, session: vici.Session | None = None) -> list[dict[str, Any]]:
        """Every IKE SA as plain data: ``{"name": conn, "initiator-spi": ..., "child-sas": {...}}``."""
        sess = session or self.vici
        out = []
        for entry in self._request("list-sas", lambda: list(sess.list_sas())):
            for name, ike in entry.items():
                out.append({"name": name if isinstance(name, str) else name.decode(), **plain(ike)})
        return out

    # -- log -----------------------------------------------------------------------

    def log_size(self) -> int:
        """Current length of the log (pass it as ``since`` to read one scenario's part)."""
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def log_text(self, since: int = 0) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(since)
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def keys_from_log(self, since: int = 0) -> CharonKeys:
        """Ka (and the SKEYID family) per IKE SA cookie pair and ESP keys per SPI."""
        return keys_from_log(self.log_text(since))
