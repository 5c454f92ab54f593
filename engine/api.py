"""The engine's public API: every operation a person or a program may perform on leads.

The CLI, the HTTP intake and bulk jobs all call ``Engine``, so each rule is enforced in exactly one place.
``Engine`` opens the database, knows the acting user and holds the caches; its operations are grouped by
concern, one service per attribute (``eng.leads``, ``eng.reports``, ...; see engine/services/). Every
operation runs in one database transaction (or joins the one opened by ``Engine.transaction()``): it either
commits everything it did or leaves the database as before.

Example::

    from engine import Engine
    eng = Engine.open("sqlite:///leadflow.db", user="anna")
    lead = eng.leads.add(process="photovoltaics", name="Łukasz Żółć", phone="+48 600 100 200")
    eng.leads.complete_task(lead["id"], "record_contact")
    eng.leads.advance(lead["id"])
"""

from __future__ import annotations

import getpass
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from engine import policy, store
from engine.errors import InvalidInputError, NotFoundError
from engine.i18n import N_, Message
from engine.services.context import Context

if TYPE_CHECKING:
    from engine.services.activities import ActivityService
    from engine.services.admin import AdminService
    from engine.services.auth import AuthService
    from engine.services.boards import BoardService
    from engine.services.bulk import BulkService
    from engine.services.clients import ClientService
    from engine.services.intake import IntakeService
    from engine.services.leads import LeadService
    from engine.services.outbox import OutboxService
    from engine.services.processes import ProcessService
    from engine.services.recovery import RecoveryService
    from engine.services.reports import ReportService
    from engine.services.search import SearchService
    from engine.services.tasks import TaskService
    from engine.services.tokens import TokenService
    from engine.services.users import UserService

log = logging.getLogger(__name__)

#: The flat names of leadflow 0.1 (``eng.add_lead(...)``), each the service and method it now is
#: (``eng.leads.add(...)``). Kept working for 0.2 by ``Engine.__getattr__``; removed in 0.3 (docs/api.md).
FLAT_NAMES: dict[str, tuple[str, str]] = {
    "add_user": ("users", "add"),
    "set_user_email": ("users", "set_email"),
    "set_user_language": ("users", "set_language"),
    "export_table": ("intake", "export_table"),
    "set_client_language": ("clients", "set_language"),
    "list_users": ("users", "list"),
    "whoami": ("users", "whoami"),
    "user_permissions": ("users", "permissions"),
    "load_process": ("processes", "load"),
    "list_processes": ("processes", "list"),
    "spec": ("processes", "spec"),
    "migrate_process": ("processes", "migrate"),
    "add_lead": ("leads", "add"),
    "get_lead": ("leads", "get"),
    "list_leads": ("leads", "list"),
    "set_fields": ("leads", "set_fields"),
    "assign": ("leads", "assign"),
    "advance": ("leads", "advance"),
    "win": ("leads", "win"),
    "close_lead": ("leads", "close"),
    "reopen": ("leads", "reopen"),
    "complete_task": ("leads", "complete_task"),
    "history": ("leads", "history"),
    "lead_options": ("leads", "options"),
    "rebuild_lead": ("leads", "rebuild"),
    "stored_lead": ("leads", "stored"),
    "client": ("clients", "get"),
    "list_tasks": ("tasks", "list"),
    "complete_tasks_many": ("bulk", "complete_tasks_many"),
    "complete_tasks": ("leads", "complete_tasks"),
    "task_page": ("tasks", "page"),
    "advance_many": ("bulk", "advance_many"),
    "win_many": ("bulk", "win_many"),
    "close_many": ("bulk", "close_many"),
    "find_external_lead": ("leads", "find_external"),
    "add_company": ("clients", "add_company"),
    "add_contact": ("clients", "add_contact"),
    "report_products": ("reports", "products"),
    "board": ("boards", "board"),
    "daily": ("boards", "daily"),
    "list_reviews": ("recovery", "reviews"),
    "review_return": ("recovery", "review_return"),
    "review_confirm": ("recovery", "review_confirm"),
    "report": ("recovery", "report"),
    "recall": ("recovery", "recall"),
    "stalled": ("recovery", "stalled"),
    "rotate": ("recovery", "rotate"),
    "revisits": ("recovery", "revisits"),
    "start_revisit": ("recovery", "start_revisit"),
    "removals": ("recovery", "removals"),
    "run_due": ("outbox", "run_due"),
    "list_outbox": ("outbox", "list"),
    "retry_outbox": ("outbox", "retry"),
    "report_refusals": ("reports", "refusals"),
    "report_funnel": ("reports", "funnel"),
    "report_cycle": ("reports", "cycle"),
    "report_salespeople": ("reports", "salespeople"),
    "report_forecast": ("reports", "forecast"),
    "rebuild_stages": ("reports", "rebuild_stages"),
    "import_csv": ("intake", "import_csv"),
    "start_import": ("intake", "start_import"),
    "import_job": ("intake", "import_job"),
    "export_csv": ("intake", "export_csv"),
    "submit_lead": ("intake", "submit"),
    "add_token": ("tokens", "add"),
    "list_tokens": ("tokens", "list"),
    "revoke_token": ("tokens", "revoke"),
    "authenticate": ("tokens", "authenticate"),
    # added in 0.2 with logging in (docs/server.md); flat names too, so that one table names every operation
    "set_user": ("users", "set"),
    "add_personal_token": ("tokens", "add_personal"),
    "authenticate_request": ("tokens", "request"),
    "show_process": ("processes", "show"),
    "validate_process": ("processes", "validate"),
    # added with search and merging (issue 18)
    "find": ("search", "find"),
    "client_duplicates": ("clients", "duplicates"),
    "merge_clients": ("clients", "merge"),
    # added with correction and erasure (issue 15, GDPR)
    "edit_client": ("clients", "edit"),
    "erase_client": ("clients", "erase"),
}


class Engine:
    """leadflow's engine over one database, acting as one user; its operations are grouped by service.

    Each service is made (and its module imported) on first use, so a command pays only for the ones it calls.
    """

    def __init__(self, db: sa.Engine, user: str | None = None, *, context: Context | None = None):
        self.context = context if context is not None else Context(db, _acting(user))

    @classmethod
    def open(cls, url: str | None = None, *, user: str | None = None, create: bool = True) -> Engine:
        """Open the database at ``url`` (default ``LEADFLOW_DB`` or ``sqlite:///leadflow.db``).

        With ``create=False`` a SQLite file that does not exist is refused (``NotFoundError`` naming its
        absolute path) instead of being created empty by the first connection.
        """
        db = store.create_db_engine(url or os.environ.get("LEADFLOW_DB"))
        if not create:
            _require_sqlite_file(db)
        return cls(db, user=user)

    def close(self) -> None:
        """Release the database connections (closing a *lead* is ``leads.close``)."""
        self.db.dispose()

    def as_user(self, name: str) -> Engine:
        """The same database, acting as another user (shares the caches)."""
        return Engine(self.db, context=self.context.sharing_caches(_acting(name)))

    @property
    def db(self) -> sa.Engine:
        return self.context.db

    @property
    def user_name(self) -> str:
        """The acting user's name."""
        return self.context.user_name

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One transaction for everything inside; engine calls made inside join it."""
        with self.context.transaction() as conn:
            yield conn

    def require_clock(self) -> None:
        """Refuse ``LEADFLOW_NOW`` on a database for real work (local mode: the CLI asks before each command;
        engine/purpose.py)."""
        from engine import purpose

        purpose.require_clock(self.db)

    def init(self, *, purpose: str | None = None) -> dict[str, Any]:
        """Create or upgrade the schema; on an empty database make the acting user its first admin. A new database
        is marked with ``purpose`` (``test``, ``demo``; engine/purpose.py); an existing one keeps its own."""
        from engine import migrate
        from engine import purpose as purposes
        from engine.services import reports, users

        log.debug("%s: init", self.user_name)
        ctx = self.context
        mark = purposes.requested(purpose)
        if purpose is not None and purpose not in (purposes.DEMO, purposes.TEST):
            raise InvalidInputError(N_("a database's purpose is demo or test, not {purpose!r}"), purpose=purpose)
        new = migrate.current_revision(self.db) is None
        if not new:
            if purpose is not None and purposes.existing(self.db) != purpose:
                raise InvalidInputError(N_("only a new database can be made a {purpose} database; this one exists "
                                           "for real work, and stays so"), purpose=purpose)
            with ctx.transaction() as conn:
                if users.count(conn):
                    row = users.first_schema_user(conn, self.user_name)
                    if row is None:
                        raise ctx.not_registered()
                    policy.require_admin(policy.Actor.from_row(row), Message(N_("upgrade the database")))
        migrate.upgrade(self.db)
        with ctx.transaction() as conn:
            first = users.count(conn) == 0
            if first:
                users.add_first_admin(conn, self.user_name)
            if new and mark is not None:
                purposes.mark(conn, mark)
            reports.complete_stages(ctx, conn)
        return {"revision": migrate.current_revision(self.db), "admin_created": self.user_name if first else None}

    # -- the services --------------------------------------------------------------------------------
    @cached_property
    def users(self) -> UserService:
        from engine.services.users import UserService

        return UserService(self)

    @cached_property
    def processes(self) -> ProcessService:
        from engine.services.processes import ProcessService

        return ProcessService(self)

    @cached_property
    def leads(self) -> LeadService:
        from engine.services.leads import LeadService

        return LeadService(self)

    @cached_property
    def clients(self) -> ClientService:
        from engine.services.clients import ClientService

        return ClientService(self)

    @cached_property
    def search(self) -> SearchService:
        from engine.services.search import SearchService

        return SearchService(self)

    @cached_property
    def activities(self) -> ActivityService:
        from engine.services.activities import ActivityService

        return ActivityService(self)

    @cached_property
    def tasks(self) -> TaskService:
        from engine.services.tasks import TaskService

        return TaskService(self)

    @cached_property
    def bulk(self) -> BulkService:
        from engine.services.bulk import BulkService

        return BulkService(self)

    @cached_property
    def boards(self) -> BoardService:
        from engine.services.boards import BoardService

        return BoardService(self)

    @cached_property
    def recovery(self) -> RecoveryService:
        from engine.services.recovery import RecoveryService

        return RecoveryService(self)

    @cached_property
    def outbox(self) -> OutboxService:
        from engine.services.outbox import OutboxService

        return OutboxService(self)

    @cached_property
    def reports(self) -> ReportService:
        from engine.services.reports import ReportService

        return ReportService(self)

    @cached_property
    def intake(self) -> IntakeService:
        from engine.services.intake import IntakeService

        return IntakeService(self)

    @cached_property
    def tokens(self) -> TokenService:
        from engine.services.tokens import TokenService

        return TokenService(self)

    @cached_property
    def auth(self) -> AuthService:
        from engine.services.auth import AuthService

        return AuthService(self)

    @cached_property
    def admin(self) -> AdminService:
        from engine.services.admin import AdminService

        return AdminService(self)

    def __getattr__(self, name: str) -> Any:
        """The flat names of 0.1 (``eng.add_lead``), looked up in ``FLAT_NAMES``; removed in 0.3."""
        if name not in FLAT_NAMES:
            raise AttributeError(f"'Engine' object has no attribute '{name}'")
        service, method = FLAT_NAMES[name]
        return getattr(getattr(self, service), method)


def _require_sqlite_file(db: sa.Engine) -> None:
    # SQLite creates a missing file on connect: a relative URL run from another folder would leave an empty
    # database there and then report a missing schema instead of the wrong folder.
    name = db.url.database
    if db.dialect.name != "sqlite" or not name or name == ":memory:" or name.startswith("file:"):
        return
    path = Path(name).absolute()
    if not path.exists():
        db.dispose()
        raise NotFoundError(N_("no leadflow database at {path} (database URL {url}); "
                               "'leadflow init' creates it there, or point --db or LEADFLOW_DB at an existing one"),
                            path=path, url=db.url.render_as_string())


def _acting(user: str | None) -> str:
    """The acting user's name: as given, else ``LEADFLOW_USER``, else the OS login."""
    return user or os.environ.get("LEADFLOW_USER") or _os_login()


def _os_login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name (e.g. a container without /etc/passwd entry)
        return "unknown"
