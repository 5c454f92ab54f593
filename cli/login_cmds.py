"""``leadflow login``, ``logout`` and ``whoami``: the CLI's identity on a team server (docs/cli.md).

A login trades a user name and password for a personal access token (docs/server.md) and keeps the token for
that server in the user's config directory (cli/credentials.py); every later command presents it, and the
server acts as its owner. The password is used once, for the login, and never stored.
"""

from __future__ import annotations

import contextlib
import getpass
import socket
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import click

from cli.app import App, pass_app
from cli.output import echo, emit, json_option, print_json
from engine.i18n import _

if TYPE_CHECKING:
    from cli.remote import RemoteEngine


@contextlib.contextmanager
def _client(server: str, token: str | None) -> Iterator[RemoteEngine]:
    """A client of ``server`` presenting ``token``, its connection closed when the block ends."""
    from cli.remote import RemoteEngine, Server

    client = RemoteEngine(Server(server, token))
    try:
        yield client
    finally:
        client.close()


def _password(password_stdin: bool, prompt: str, *, second: bool = False, confirm: bool = False) -> str:
    """The password from standard input's next line (the first, or the ``second``, as the error names it), or asked
    for on the terminal without echo (twice when ``confirm``)."""
    if password_stdin:
        text = sys.stdin.readline()
        password = text[:-1] if text.endswith("\n") else text
        if not password:
            raise click.UsageError(
                _("--password-stdin read no password: give it on the second line of standard input") if second else
                _("--password-stdin read no password: give it on the first line of standard input"))
        return password
    if not sys.stdin.isatty():
        raise click.UsageError(_("no terminal to ask for the password on: give it on standard input with "
                                 "--password-stdin"))
    return str(click.prompt(prompt, hide_input=True, confirmation_prompt=confirm))


@click.command("login")
@click.argument("url", metavar="URL")
@click.option("--user", "name", metavar="NAME", help="Your user name on the server (default: your OS login).")
@click.option("--password-stdin", is_flag=True,
              help="Read the password from the first line of standard input (for scripts; never an argument); a "
                   "user who must change it gives the new one on the second line.")
@click.option("--token-name", metavar="NAME",
              help="The name of the token this login makes, as 'token list --mine' shows it (default: "
                   "'leadflow CLI on HOST').")
@json_option
@pass_app
def login(app: App, url: str, name: str | None, password_stdin: bool, token_name: str | None, as_json: bool) -> None:
    """Log in to a team server: its commands then run there, as you.

    Asks for your password (or reads it with --password-stdin), makes a personal access token and stores it
    for URL in your config directory (readable by you only); the server becomes the one every command uses
    until you log in to another, log out, or give --db.
    """
    from cli import credentials

    server = credentials.normalise_server(url)
    if name is None:
        name = getpass.getuser() if password_stdin or not sys.stdin.isatty() else str(
            click.prompt(_("User"), default=getpass.getuser()))
    password = _password(password_stdin, _("Password of {user} on {server}", user=name, server=server))
    if server.startswith("http://") and not _loopback(server):
        click.echo(_("Warning: {server} is not HTTPS: your password and token cross the network readable by anyone "
                     "on the way", server=server), err=True)
    session = _session(server, name, password, password_stdin)
    try:
        with _client(server, session["token"]) as with_session:
            made = with_session.tokens.add_personal(name=token_name or f"leadflow CLI on {socket.gethostname()}")
    finally:
        _end_session(server, session["token"])
    user = session.get("user") or {}
    saved = credentials.Login(server, made["token"], user.get("name", name), made.get("id"))
    path = credentials.save(saved)
    result = {"server": server, "user": user, "token_id": made.get("id"), "token_name": made.get("name"),
              "expires_at": made.get("expires_at"), "credentials": str(path)}
    emit(result, as_json, lambda r: echo(
        _("Logged in to {server} as {user}", server=server, user=saved.user)
        + (f" ({user['role']})" if user.get("role") else "")
        + _("; token {token} '{name}'", token=r["token_id"], name=r["token_name"])
        + (_(", expires {day}", day=r["expires_at"][:10]) if r["expires_at"] else "")
        + _(", kept in {path}", path=path)))


def _session(server: str, name: str, password: str, password_stdin: bool) -> dict[str, Any]:
    """A login's session; a user who must change their password (a one-time password, or one an admin set) is
    asked for a new one (the terminal, twice; or the second line of standard input) and logged in with it."""
    from cli.remote import RemoteError

    with _client(server, None) as client:
        try:
            return dict(client.auth.login(name, password))
        except RemoteError as exc:
            if exc.problem.get("code") != "password_change_required":
                raise
            said = str(exc.problem.get("detail") or exc.message)
        click.echo(_("{said}: choose your own now.", said=said), err=True)
        new = _password(password_stdin, _("New password of {user}", user=name), second=True, confirm=True)
        client.auth.change_password(name, password, new)
        return dict(client.auth.login(name, new))


def _end_session(server: str, token: str) -> None:
    """The login's session served only to make the token; end it (a failure here leaves it to expire)."""
    from cli.remote import RemoteError

    with contextlib.suppress(RemoteError), _client(server, token) as client:
        client.auth.logout()


def _loopback(server: str) -> bool:
    from ipaddress import ip_address
    from urllib.parse import urlsplit

    host = urlsplit(server).hostname or ""
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


@click.command("logout")
@click.argument("url", required=False, metavar="[URL]")
@pass_app
def logout(app: App, url: str | None) -> None:
    """Revoke your token on a server (default: the current one) and delete it here."""
    from cli import credentials
    from cli.remote import RemoteError

    target = url or app.server_url
    saved = credentials.stored(target)
    if saved is None:
        raise click.ClickException(
            _("not logged in to {server}: nothing to log out of", server=credentials.normalise_server(target))
            if target else _("not logged in to any server: nothing to log out of"))
    problem = None
    if saved.token_id is not None:
        try:
            with _client(saved.server, saved.token) as client:
                client.tokens.revoke(saved.token_id)
        except RemoteError as exc:
            if exc.status != 401:  # 401: the token no longer works (revoked, expired): nothing left to revoke
                problem = exc.message
    credentials.forget(saved.server)
    if problem is not None:
        raise click.ClickException(_("logged out here, but the server did not revoke token {token}: {problem}; it "
                                     "works until it expires, unless revoked (leadflow token revoke {token})",
                                     token=saved.token_id, problem=problem))
    echo(_("Logged out of {server} (token {token} revoked)", server=saved.server, token=saved.token_id)
         if saved.token_id else _("Logged out of {server}", server=saved.server))


@click.command("whoami")
@json_option
@pass_app
def whoami(app: App, as_json: bool) -> None:
    """Who you are and where the commands run: a team server, or a local database."""
    me = app.engine.users.whoami()
    if as_json:
        print_json(me)
        return
    who = (_("{name} ({role}, team {team})", name=me["name"], role=me["role"], team=me["team"]) if me.get("team")
           else _("{name} ({role})", name=me["name"], role=me["role"]))
    echo(_("{who} on {server}", who=who, server=app.login.server) if app.login is not None
         else _("{who} on the local database", who=who))
