"""Bus security: who may open the ipc sockets, and CurveZMQ for a bus bound beyond loopback.

* The runtime directory holding ``ipc://`` sockets is private to the service
  user (mode 0700): :func:`ensure_private_dir` creates it so, tightens a
  directory we own, and refuses one owned by someone else.
* A ``tcp://`` endpoint on anything but loopback must be encrypted and
  authenticated with CurveZMQ: the publisher is a CURVE server holding the
  secret certificate ``[bus].curve_secret_key``; subscribers must know its
  public key (and, with ``[bus].curve_clients_dir``, present a client key
  whose public certificate lies in that directory). A client without the
  key never completes the handshake and receives nothing.

Certificates are ZeroMQ's text format (``zmq.auth.create_certificates``);
``undertow``'s key files hold no other secret.
"""
from __future__ import annotations

import ipaddress
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

__all__ = ["SecurityError", "ensure_private_dir", "endpoint_is_local", "ipc_dir", "CurveServer", "CurveClient",
           "generate_certificate", "curve_server_for", "curve_client_for", "read_secret", "LOOPBACK_HOSTS"]

LOOPBACK_HOSTS = ("localhost",)
PRIVATE_MODE = 0o700


class SecurityError(RuntimeError):
    """A runtime directory or key file is not safe to use."""


def ensure_private_dir(path: str | os.PathLike) -> Path:
    """Create ``path`` with mode 0700, or tighten it to 0700; refuse a directory another user owns."""
    p = Path(path)
    old = os.umask(0o077)
    try:
        p.mkdir(parents=True, exist_ok=True)
    finally:
        os.umask(old)
    st = p.lstat()
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise SecurityError(f"{p} is not a directory (a symlink or file is not accepted as the runtime directory)")
    if st.st_uid != os.geteuid():
        raise SecurityError(f"{p} belongs to uid {st.st_uid}, not to this user ({os.geteuid()}): "
                            f"choose a run_dir of your own")
    if stat.S_IMODE(st.st_mode) != PRIVATE_MODE:
        os.chmod(p, PRIVATE_MODE)
    return p


def _host(endpoint: str) -> str:
    return urlsplit(endpoint).hostname or ""


def endpoint_is_local(endpoint: str) -> bool:
    """Whether only this host can reach ``endpoint``: ``ipc://`` or ``tcp://`` on a loopback address."""
    if endpoint.startswith("ipc://"):
        return True
    if not endpoint.startswith("tcp://"):
        return False
    host = _host(endpoint)
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:   # "*", an interface name or a DNS name: may be reachable from outside
        return False


def ipc_dir(endpoint: str) -> Path | None:
    """The directory of an ``ipc://`` endpoint's socket file (None for other transports)."""
    if not endpoint.startswith("ipc://"):
        return None
    return Path(endpoint[len("ipc://"):]).parent


def generate_certificate(directory: str | os.PathLike, name: str) -> tuple[Path, Path]:
    """Create ``<name>.key`` (public) and ``<name>.key_secret`` (mode 0600) in ``directory`` (made 0700)."""
    d = ensure_private_dir(directory)
    public, secret = zmq.auth.create_certificates(str(d), name)
    os.chmod(secret, 0o600)
    return Path(public), Path(secret)


def _load(path: str, key: str, need_secret: bool) -> tuple[bytes, bytes | None]:
    try:
        public, secret = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as exc:
        raise SecurityError(f"cannot read CurveZMQ certificate {path} (`$.bus.{key}`): {exc}") from None
    if need_secret and not secret:
        raise SecurityError(f"{path} (`$.bus.{key}`) holds no secret key: give the *.key_secret file")
    return public, secret


@dataclass(frozen=True)
class CurveServer:
    """CURVE server settings for a bound PUB/XPUB socket."""

    public: bytes
    secret: bytes
    clients_dir: str = ""     # authorised client public certificates; "" = any client knowing our public key

    @classmethod
    def from_files(cls, secret_file: str, clients_dir: str = "") -> "CurveServer":
        public, secret = _load(secret_file, "curve_secret_key", True)
        if clients_dir and not Path(clients_dir).is_dir():
            raise SecurityError(f"`$.bus.curve_clients_dir` {clients_dir} is not a directory")
        return cls(public, secret, clients_dir)

    def apply(self, sock: zmq.Socket) -> ThreadAuthenticator | None:
        """Make ``sock`` a CURVE server (before bind); start a ZAP authenticator when clients are allow-listed."""
        auth = None
        if self.clients_dir:
            auth = ThreadAuthenticator(sock.context)
            auth.start()
            auth.configure_curve(domain="*", location=self.clients_dir)
        sock.setsockopt(zmq.CURVE_SERVER, 1)
        sock.setsockopt(zmq.CURVE_SECRETKEY, self.secret)
        sock.setsockopt(zmq.CURVE_PUBLICKEY, self.public)
        return auth


@dataclass(frozen=True)
class CurveClient:
    """CURVE client settings for a SUB socket: our key pair and the server's public key."""

    public: bytes
    secret: bytes
    server_public: bytes

    @classmethod
    def from_files(cls, client_secret_file: str, server_public_file: str) -> "CurveClient":
        public, secret = _load(client_secret_file, "curve_secret_key", True)
        server_public, _ = _load(server_public_file, "curve_secret_key", False)
        return cls(public, secret, server_public)

    def apply(self, sock: zmq.Socket) -> None:
        """Make ``sock`` a CURVE client (before connect)."""
        sock.setsockopt(zmq.CURVE_SECRETKEY, self.secret)
        sock.setsockopt(zmq.CURVE_PUBLICKEY, self.public)
        sock.setsockopt(zmq.CURVE_SERVERKEY, self.server_public)


def curve_server_for(bus_cfg) -> CurveServer | None:
    """The CURVE server of ``[bus]``, or None when no key is configured."""
    if not bus_cfg.curve_secret_key:
        return None
    return CurveServer.from_files(bus_cfg.curve_secret_key, bus_cfg.curve_clients_dir)


def curve_client_for(bus_cfg) -> CurveClient | None:
    """How the engine's own subscribers (alerts, ``tail``) reach a CURVE bus: with the server's key pair,
    which the service user can read (with ``curve_clients_dir``, put the server's public certificate there too)."""
    if not bus_cfg.curve_secret_key:
        return None
    return CurveClient.from_files(bus_cfg.curve_secret_key, bus_cfg.curve_secret_key)


def read_secret(name: str, env_var: str, env: dict[str, str] | None = None) -> str | None:
    """A secret from systemd's ``LoadCredential`` (``$CREDENTIALS_DIRECTORY/<name>``), else from ``env_var``.

    The credential file wins: under the unit it is readable by the service alone and never enters
    the environment that every child process inherits.
    """
    env = os.environ if env is None else env
    creds = env.get("CREDENTIALS_DIRECTORY")
    if creds:
        try:
            value = (Path(creds) / name).read_text().strip()
        except FileNotFoundError:
            value = ""
        if value:
            return value
    return env.get(env_var) or None
