"""Where the CLI keeps its logins: one personal access token per server, in the user's config directory.

The file is ``<config dir>/credentials.json`` (``platformdirs.user_config_dir("leadflow")``: on Linux
``~/.config/leadflow``, or ``$XDG_CONFIG_HOME/leadflow``; on macOS ``~/Library/Application Support/leadflow``;
on Windows ``%LOCALAPPDATA%\\leadflow``), readable by its owner only (mode 0600, in a 0700 directory)::

    {"default": "https://crm.example.pl",
     "servers": {"https://crm.example.pl": {"user": "anna", "token": "lfp_...", "token_id": 17}}}

``default`` is the server of the last ``leadflow login``: the one every command goes to unless ``--server``,
``LEADFLOW_SERVER`` or a local database (``--db``, ``LEADFLOW_DB``) says otherwise.

Why a file and not the OS keyring: importing ``keyring`` and asking its backend (D-Bus to the Secret Service,
the macOS keychain) costs more than the whole remote command may take (docs/performance.md), headless servers and
CI have no keyring at all, and a token is a revocable, expiring secret of one person on one machine, which is
what a 0600 file in that person's home protects (gh and the cloud CLIs keep theirs the same way).

Only the standard library, ``platformdirs`` and ``engine.i18n`` (the standard library's gettext; its messages are
translated): this runs on the remote path, which imports no other engine module.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from engine.i18n import _

FILE_NAME = "credentials.json"


class CredentialsError(Exception):
    """The server address or the stored logins cannot be used (a message for the user)."""


@dataclass(frozen=True)
class Login:
    """A server and the personal access token the CLI presents to it."""

    server: str
    token: str
    user: str | None = None  # as the server said at login (the token alone decides who acts)
    token_id: int | None = None


def config_dir() -> Path:
    from platformdirs import user_config_dir

    return Path(user_config_dir("leadflow", appauthor=False))


def credentials_path() -> Path:
    return config_dir() / FILE_NAME


def normalise_server(url: str) -> str:
    """'crm.example.pl' -> 'https://crm.example.pl'; 'http://127.0.0.1:8080/' -> 'http://127.0.0.1:8080'.

    The key under which a server's token is stored: a scheme, a host, a port if any, and a path prefix if the
    server is served under one; never a query, a fragment or credentials in the address."""
    text = url.strip()
    if "://" not in text:
        text = f"https://{text}"
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https"):
        raise CredentialsError(_("server address {url} is not an http:// or https:// address", url=repr(url)))
    if not parts.hostname:
        raise CredentialsError(_("server address {url} names no host", url=repr(url)))
    if parts.username or parts.password or parts.query or parts.fragment:
        raise CredentialsError(_("server address {url} may not hold a user, a password, a query or a fragment: "
                                 "give the address only, such as https://crm.example.pl", url=repr(url)))
    try:
        port = parts.port
    except ValueError:
        raise CredentialsError(_("server address {url} has an invalid port", url=repr(url))) from None
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    return f"{parts.scheme}://{host}{f':{port}' if port else ''}{parts.path.rstrip('/')}"


def _read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {"default": None, "servers": {}}
    except OSError as exc:
        raise CredentialsError(_("cannot read {path}: {strerror}", path=path, strerror=exc.strerror or exc)) from None
    try:
        data = json.loads(text)
        if not isinstance(data, dict) or not isinstance(data.get("servers", {}), dict):
            raise ValueError("not an object with servers")
    except ValueError:
        raise CredentialsError(_("{path} is not a leadflow credentials file; remove it and log in again",
                                 path=path)) from None
    data.setdefault("servers", {})
    data.setdefault("default", None)
    return data


def stored(server: str | None = None) -> Login | None:
    """The stored login for ``server`` (normalised), or for the default server; None if there is none."""
    data = _read(credentials_path())
    key = normalise_server(server) if server else data.get("default")
    entry = data["servers"].get(key) if key else None
    if not isinstance(entry, dict) or not isinstance(entry.get("token"), str):
        return None
    return Login(str(key), entry["token"], entry.get("user"), entry.get("token_id"))


def default_server() -> str | None:
    """The server of the last login, if its token is still stored."""
    login = stored()
    return login.server if login else None


def save(login: Login) -> Path:
    """Store ``login`` (replacing the server's earlier one) and make its server the default."""
    with _locked() as path:
        data = _read(path)
        data["servers"][login.server] = {"user": login.user, "token": login.token, "token_id": login.token_id}
        data["default"] = login.server
        _write(path, data)
    return path


def forget(server: str) -> bool:
    """Delete ``server``'s stored token; the default moves to another stored server, if any. Whether there was one."""
    with _locked() as path:
        data = _read(path)
        found = data["servers"].pop(server, None) is not None
        if data.get("default") == server:
            data["default"] = next(iter(data["servers"]), None)
        if found:
            _write(path, data)
    return found


def _write(path: Path, data: dict[str, Any]) -> None:
    """Replace the file at once: a new file created 0600 (never readable by others, not even for a moment, and
    never one that someone else made first: O_EXCL), then renamed over the old one."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    with contextlib.suppress(FileNotFoundError):
        partial.unlink()  # left by a killed run of this process id
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out, indent=2)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
        raise


@contextlib.contextmanager
def _locked() -> Iterator[Path]:
    """The credentials file's path, with its directory made (0700) and the file locked against another
    ``leadflow login`` or ``logout`` running at the same time (each reads, changes and writes it whole)."""
    path = credentials_path()
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        lock = os.open(path.with_name(f".{path.name}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise CredentialsError(_("cannot write to {path}: {strerror}", path=path.parent,
                                 strerror=exc.strerror or exc)) from None
    try:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: no advisory locks; logins there are rarely concurrent
            yield path
            return
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield path
    finally:
        os.close(lock)


def resolve(server: str | None) -> Login | None:
    """The login every command but ``login`` uses: ``server`` (``--server``, ``LEADFLOW_SERVER``) or the default
    one, with ``LEADFLOW_TOKEN`` or the token stored for it; None when no server is configured (local mode)."""
    token = os.environ.get("LEADFLOW_TOKEN") or None
    if server:
        key = normalise_server(server)
        if token:
            return Login(key, token)
        login = stored(key)
        if login is None:
            raise CredentialsError(_("not logged in to {server}: run 'leadflow login {server}', or set LEADFLOW_TOKEN",
                                     server=key))
        return login
    login = stored()
    if token:
        if login is None:
            raise CredentialsError(_("LEADFLOW_TOKEN is set but no server is: set LEADFLOW_SERVER too, or unset "
                                     "LEADFLOW_TOKEN to work on a local database"))
        return Login(login.server, token)
    return login
