"""CURVE authentication for control and event sockets on ``tcp://`` (CurveZMQ, RFC-like
spec 26/CURVEZMQ, through pyzmq's :mod:`zmq.auth`).

An ``ipc://`` socket is a file only its owner may open; a ``tcp://`` port is open to every
local user (and to anyone who can reach the address).  The daemon therefore refuses
``tcp://`` unless it is given a key directory::

    DIR/server.key, DIR/server.key_secret      the daemon's key pair (created if missing)
    DIR/clients/<name>.key                     public keys of clients allowed in
    DIR/client.key_secret                      a first client key pair, created with the
                                               server's (give it to the notebook)

Secret key files are 0600 and the directory 0700.  Traffic is encrypted and every client
is authenticated by its key; the key's z85 text is who asked, in the event stream.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.auth

from ipseclab.errors import ControlError
from ipseclab.files import private_directory

SERVER = "server"
CLIENT = "client"
CLIENTS = "clients"


@dataclass(frozen=True)
class CurveKeys:
    directory: Path

    @property
    def clients(self) -> Path:
        return self.directory / CLIENTS

    def pair(self, name: str) -> tuple[bytes, bytes]:
        """(public, secret) from ``<name>.key_secret``."""
        public, secret = zmq.auth.load_certificate(self.directory / f"{name}.key_secret")
        if secret is None:
            raise ControlError(f"{self.directory / name}.key_secret holds no secret key")
        return public, secret

    def server_public(self) -> bytes:
        public, _ = zmq.auth.load_certificate(self.directory / f"{SERVER}.key")
        return public


def _create(directory: Path, name: str) -> None:
    old = os.umask(0o077)
    try:
        public, secret = zmq.auth.create_certificates(directory, name)
    finally:
        os.umask(old)
    os.chmod(secret, 0o600)


def ensure_keys(directory: str | os.PathLike[str]) -> CurveKeys:
    """The daemon's key directory, with a server key pair and one client key (created once)."""
    if not zmq.has("curve"):
        raise ControlError("this libzmq has no CURVE support: use ipc:// sockets")
    keys = CurveKeys(Path(directory))
    private_directory(keys.directory)
    private_directory(keys.clients)
    if not (keys.directory / f"{SERVER}.key_secret").exists():
        _create(keys.directory, SERVER)
    if not (keys.directory / f"{CLIENT}.key_secret").exists():
        _create(keys.directory, CLIENT)
        os.replace(keys.directory / f"{CLIENT}.key", keys.clients / f"{CLIENT}.key")
    return keys


def make_server(sock: zmq.Socket, keys: CurveKeys) -> None:
    public, secret = keys.pair(SERVER)
    sock.curve_secretkey = secret
    sock.curve_publickey = public
    sock.curve_server = True


def make_client(sock: zmq.Socket, directory: str | os.PathLike[str], name: str = CLIENT) -> None:
    keys = CurveKeys(Path(directory))
    public, secret = keys.pair(name)
    sock.curve_secretkey = secret
    sock.curve_publickey = public
    sock.curve_serverkey = keys.server_public()
