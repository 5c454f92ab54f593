"""``eng.admin``: the administrator's care of the database: ``check`` it, ``backup`` it, ``restore`` a backup into
an empty one (docs/operations.md). The comparisons live in ``engine.integrity``, the copying in ``engine.backup``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from engine import backup, integrity, migrate, policy, results, store
from engine.errors import LeadflowError
from engine.i18n import N_, Message
from engine.services.context import Service, operation

if TYPE_CHECKING:
    from engine.api import Engine

#: The differences ``check`` lists (all of them are counted).
LISTED = 1000


class AdminService(Service):
    name = "admin"

    @operation
    def check(self) -> results.CheckReport:
        """Admins: the database's integrity, every lead against its event log and every projection against a
        recount; ``ok`` is False when anything differs (each difference listed, the first ``LISTED``)."""
        ctx = self.ctx
        started = time.perf_counter()
        found: list[results.Difference] = []
        count = 0

        def report(difference: results.Difference) -> None:
            nonlocal count
            count += 1
            if len(found) < LISTED:
                found.append(difference)

        with ctx.transaction() as conn:
            policy.require_admin(ctx.actor(conn), Message(N_("check the database")))
            for difference in integrity.database(conn):
                report(difference)
            leads = integrity.leads_against_history(conn, ctx.specs_lookup(conn), report)
            integrity.stage_counts_against_leads(conn, report)
            for difference in integrity.unfinished_erasures(conn):
                report(difference)
        return {"ok": count == 0, "database": self.ctx.db.dialect.name, "leads": leads,
                "seconds": round(time.perf_counter() - started, 3), "differences": found, "more": count - len(found)}

    @operation
    def backup(self, file: str | Path) -> results.BackupReport:
        """Admins: a consistent backup of the whole database to ``file``, a new file (docs/operations.md)."""
        ctx = self.ctx
        started = time.perf_counter()
        with ctx.transaction() as conn:
            policy.require_admin(ctx.actor(conn), Message(N_("back up the database")))
        target = Path(file)
        backup.backup(ctx.db, target)
        return {"file": str(target), "database": ctx.db.dialect.name, "revision": migrate.current_revision(ctx.db),
                "bytes": target.stat().st_size, "seconds": round(time.perf_counter() - started, 3)}

    @operation
    def restore(self, file: str | Path) -> results.RestoreReport:
        """Admins (of the target, when it has users): restore a backup into this database, which must hold no
        leadflow data; verified (revision, every lead against its event log) before it is reported, and taken
        back when the verification fails."""
        ctx = self.ctx
        started = time.perf_counter()
        source = Path(file)
        kind = backup.kind_of(source)
        with ctx.db.connect() as conn:
            initialised = backup.has_schema(conn)
        if initialised:
            with ctx.transaction() as conn:
                backup.require_empty(conn)
                if conn.execute(store.users.select().limit(1)).first():
                    policy.require_admin(ctx.actor(conn), Message(N_("restore into this database")))
        expected = "sqlite" if ctx.db.dialect.name == "sqlite" else "pg_dump"
        if kind != expected:
            raise LeadflowError(N_("{source!r} is a {kind} backup; it restores into a "
                                   "{text} database, and this one is "
                                   "{name}"), source=str(source), kind=kind,
                                text='SQLite' if kind == 'sqlite' else 'PostgreSQL', name=ctx.db.dialect.name)

        def verify(url: str) -> tuple[str | None, int]:
            restored = type(self.engine)(store.create_db_engine(url), user=ctx.user_name)
            try:
                return _verified(restored)
            finally:
                restored.close()

        if kind == "sqlite":
            revision, leads = backup.restore_sqlite(source, ctx.db, verify)
        else:
            revision, leads = backup.restore_postgres(source, ctx.db, verify)
        return {"file": str(source), "database": ctx.db.dialect.name, "revision": revision, "leads": leads,
                "seconds": round(time.perf_counter() - started, 3)}


def _verified(restored: Engine) -> tuple[str | None, int]:
    """The restored database's revision (upgraded to this leadflow's) and its number of leads, once every lead
    equals its event-log rebuild; else the error that names the first that does not."""
    db = restored.db
    revision = migrate.current_revision(db)
    if revision is None:
        raise LeadflowError("the backup holds no leadflow schema (no alembic_version); nothing was restored")
    if not migrate.known_revision(revision):
        raise LeadflowError(N_("the backup's schema is at revision {revision}, which this leadflow does not know "
                               "(it knows up to {head_revision}): restore it with a newer leadflow; "
                               "nothing was restored"), revision=revision, head_revision=migrate.head_revision())
    migrate.upgrade(db)
    found: list[results.Difference] = []
    ctx = restored.context
    with ctx.transaction() as conn:
        leads = integrity.leads_against_history(conn, ctx.specs_lookup(conn), found.append)
    wrong = [d for d in found if d["kind"] == "lead"]
    if wrong:
        raise LeadflowError(N_("the backup is not sound: {count} differences between leads and their event "
                               "log, the first: {text}; nothing was restored"), count=len(wrong),
                            text=wrong[0]['message'])
    return migrate.current_revision(db), leads
