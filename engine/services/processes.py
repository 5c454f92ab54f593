"""Process definitions: load a file as a version, list them, move open leads to another version
(``engine.processes``)."""

from __future__ import annotations

import builtins
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from engine import clock, policy, results, views
from engine.errors import RuleViolation
from engine.i18n import N_, Message
from engine.services.context import Service, operation
from engine.spec import ProcessSpec
from engine.store import leads, process_versions
from engine.vocab import EventKind, LeadStatus, TaskStatus


class ProcessService(Service):
    """``engine.processes``: the stored process versions."""

    name = "processes"

    @operation
    def load(self, path: str | Path) -> results.LoadedProcess:
        """Validate and store a process file; a changed file becomes a new version, an unchanged one nothing."""
        from engine.loader import load_file

        spec = load_file(path)
        ctx = self.ctx
        with ctx.transaction() as conn:
            policy.require_admin(ctx.actor(conn), Message(N_("load processes")))
            existing = conn.execute(
                sa.select(process_versions.c.version).where(
                    process_versions.c.process == spec.id, process_versions.c.content_hash == spec.content_hash
                )
            ).first()
            if existing:
                return {"process": spec.id, "version": existing[0], "created": False, "hash": spec.content_hash}
            latest = conn.execute(
                sa.select(sa.func.max(process_versions.c.version)).where(process_versions.c.process == spec.id)
            ).scalar()
            version = (latest or 0) + 1
            conn.execute(sa.insert(process_versions).values(
                process=spec.id, version=version, content_hash=spec.content_hash, title=spec.title,
                spec_json=spec.canonical_json(), source_path=str(path), loaded_at=clock.now(),
                loaded_by=ctx.user_name))
            return {"process": spec.id, "version": version, "created": True, "hash": spec.content_hash}

    @operation
    def list(self, *, open_leads: bool = True) -> list[results.ProcessRow]:
        """Every stored version with its count of open leads (``open_leads=False``: without it, which spares a
        count over every open lead when only the names are wanted, as by the web pages' filters)."""
        with self.ctx.transaction() as conn:
            self.ctx.actor(conn)
            counts = {
                (p, v): n
                for p, v, n in conn.execute(
                    sa.select(leads.c.process, leads.c.process_version, sa.func.count())
                    .where(leads.c.status == LeadStatus.OPEN)
                    .group_by(leads.c.process, leads.c.process_version)
                )
            } if open_leads else None
            rows = conn.execute(
                sa.select(process_versions).order_by(process_versions.c.process, process_versions.c.version)
            ).mappings()
            found: builtins.list[results.ProcessRow] = []
            for r in rows:
                row: results.ProcessRow = {
                    # the spec's title: in several languages when the file gave them (a str, English in JSON)
                    "process": r["process"], "version": r["version"],
                    "title": self.ctx.spec(conn, r["process"], r["version"]).title, "hash": r["content_hash"],
                    "loaded_at": views.iso(r["loaded_at"]), "loaded_by": r["loaded_by"]}
                if counts is not None:
                    row["open_leads"] = counts.get((r["process"], r["version"]), 0)
                found.append(row)
            return found

    @operation
    def spec(self, process: str, version: int | None = None) -> ProcessSpec:
        """The spec of a stored process version (the newest when ``version`` is None)."""
        with self.ctx.transaction() as conn:
            return self.ctx.spec(conn, process, version)

    @operation
    def show(self, process: str, version: int | None = None) -> dict[str, Any]:
        """A stored version's spec as JSON with its content hash: what ``leadflow process show --json`` prints."""
        spec = self.spec(process, version)
        return {**spec.to_dict(), "content_hash": spec.content_hash}

    @operation
    def validate(self, path: str | Path, *, name: str | None = None) -> builtins.list[results.ValidatedFile]:
        """Check a process file and store nothing: ``[{file, valid, problems}]`` as ``process validate --json``
        prints it (``name``: the file's name in the answer, for a file saved under another one). Needs no user."""
        from engine.loader import check_file

        problems = check_file(path)[1]
        return [{"file": name or str(path), "valid": not problems,
                 "problems": [{"line": p.line, "column": p.column, "path": p.path, "message": p.message}
                              for p in problems]}]

    @operation
    def migrate(self, process: str, to_version: int, *, dry_run: bool = False) -> results.Migration:
        """Move every open lead of ``process`` to ``to_version``; refuses (moving none) if any cannot move."""
        ctx = self.ctx
        with ctx.transaction() as conn:
            policy.require_admin(ctx.actor(conn), Message(N_("migrate processes")))
            target = ctx.spec(conn, process, to_version)
            ids = [r[0] for r in conn.execute(
                sa.select(leads.c.id).where(leads.c.process == process, leads.c.status == LeadStatus.OPEN,
                                            leads.c.process_version != to_version).order_by(leads.c.id))]
            blockers = []
            for lead_id in ids:
                state = ctx.lead(conn, lead_id)
                stage = target.stage(state.stage)
                if stage is None:
                    blockers.append(Message(N_("lead {lead} is in stage '{stage}', which version {version} lacks"),
                                            lead=lead_id, stage=state.stage, version=to_version))
                    continue
                done = [tid for tid, st in state.stage_tasks().items() if st == TaskStatus.DONE]
                lost = [tid for tid in done if stage.task(tid) is None]
                if lost:
                    blockers.append(Message(N_("lead {lead} has completed tasks {tasks} that stage '{stage}' of "
                                               "version {version} lacks"), lead=lead_id, tasks=", ".join(lost),
                                            stage=stage.id, version=to_version))
            if blockers:
                raise RuleViolation(N_("can't migrate {process} to version {version}: {blockers}"), process=process,
                                    version=to_version, blockers=blockers)
            if not dry_run:
                for lead_id in ids:
                    state = ctx.lead(conn, lead_id)
                    ctx.commit(conn, state, [ctx.event(EventKind.MIGRATED, {
                        "from_version": state.process_version, "to_version": to_version})])
            return {"process": process, "to_version": to_version, "leads": ids, "dry_run": dry_run}
