"""``leadflow process ...``: check and display process files. Needs no database.

``rich`` and ``jsonschema`` are slow to import: they are imported only inside the
commands that use them (``jsonschema`` by the loader on its first validation),
so that ``leadflow --help`` and unrelated commands stay fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cli.app import App, pass_app
from cli.files import force_option
from cli.output import process_sources, shipped_option
from cli.present import formats
from cli.present.mermaid import mermaid
from cli.present.words import pgettext
from engine import paths as engine_paths
from engine.condition_text import condition_text
from engine.errors import Problem
from engine.i18n import N_, Message, _, label, language, ngettext
from engine.spec import ActionSpec, ProcessSpec, StageSpec, TaskSpec

if TYPE_CHECKING:
    from engine import results



@click.group("process")
def process() -> None:
    """Check and display process definitions (YAML files)."""


# -- validate -----------------------------------------------------------------------------------


def _collect(paths: tuple[str, ...]) -> list[tuple[str, list[Problem] | None]]:
    """The files to check, in order, each once; a path that cannot be used carries its problem."""
    from engine.loader import expand_paths, path_problem  # YAML and JSON Schema: only for commands that read files

    out: list[tuple[str, list[Problem] | None]] = []
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        unusable = path_problem(raw)
        if unusable is not None:
            out.append((raw, [unusable]))
            continue
        if path.is_dir():
            try:
                files = expand_paths([path])
            except OSError as exc:
                out.append((raw, [Problem(raw, 1, 1, "", Message(N_("cannot list the folder: {reason}"),
                                                                 reason=exc.strerror or str(exc)))]))
                continue
            if not files:
                message = Message(N_("the folder holds no process files (*.yaml, *.yml)"))
                out.append((raw, [Problem(raw, 1, 1, "", message)]))
                continue
        else:
            files = [path]
        for file in files:
            key = file.resolve()
            if key not in seen:
                seen.add(key)
                out.append((str(file), None))
    return out


@process.command("validate")
@click.argument("paths", nargs=-1, metavar="[PATH_OR_NAME]...")
@shipped_option("Check")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@pass_app
def validate(app: App, paths: tuple[str, ...], shipped: bool, as_json: bool) -> None:
    """Check process files, folders of them (their *.yaml and *.yml files) or shipped processes by id.

    Prints one ``file:line:col: path: message`` line per problem and a summary on
    stderr. Exit code 0 when every file is valid, 1 otherwise. Needs no database
    (through a server, the server checks the files' content).
    """
    checked = [_problems(early) if early is not None else check(app, file)
               for file, early in _collect(tuple(process_sources(paths, shipped)))]

    if as_json:
        click.echo(json.dumps(checked, ensure_ascii=False, indent=2))
    else:
        for result in checked:
            for problem in result["problems"]:
                click.echo(problem_line(result["file"], problem))

    valid = sum(1 for result in checked if result["valid"])
    invalid = len(checked) - valid
    total = sum(len(result["problems"]) for result in checked)
    summary = ngettext("{count} file valid, {invalid} invalid", "{count} files valid, {invalid} invalid", valid,
                       invalid=invalid)
    if total:
        summary += ngettext(" ({count} problem)", " ({count} problems)", total)
    click.echo(summary, err=True)
    if invalid:
        sys.exit(1)


def check(app: App, file: str) -> results.ValidatedFile:
    """``file`` checked here, or by the server (its content sent) when the CLI works through one."""
    if app.remote:
        [checked] = app.engine.processes.validate(file)
        return checked
    from engine.loader import check_file

    return _problems(check_file(file)[1], file)


def _problems(problems: list[Problem], file: str | None = None) -> results.ValidatedFile:
    return {"file": file or problems[0].file, "valid": not problems,
            "problems": [{"line": p.line, "column": p.column, "path": p.path, "message": p.message}
                         for p in problems]}


def problem_line(file: str, p: results.FileProblem) -> str:
    """A problem as ``str(Problem)`` prints it: ``file:line:col: path: message``, the message in the reader's
    language (checked here, a template; through a server, already in it: the CLI asks for the reader's labels)."""
    return Problem(file, p["line"], p["column"], p["path"], p["message"]).in_language(language())


# -- show ---------------------------------------------------------------------------------------


def _resolve(file_or_name: str) -> Path:
    path = Path(engine_paths.process_sources([file_or_name])[0])
    if path.is_dir():
        names = ", ".join(engine_paths.shipped_processes()) or _("none")
        raise click.ClickException(_("'{name}' is a folder; show takes one process file or the id of a shipped "
                                     "process; shipped: {names}", name=file_or_name, names=names))
    return path


@process.command("show")
@click.argument("file_or_name", metavar="FILE_OR_NAME")
@click.option("--mermaid", "as_mermaid", is_flag=True, help="Print a Mermaid stateDiagram-v2 of the stages.")
@click.option("--json", "as_json", is_flag=True, help="Print the resolved spec and its content hash as JSON.")
def show(file_or_name: str, as_mermaid: bool, as_json: bool) -> None:
    from engine.loader import check_file

    """Show a process: a process file, or the id of a shipped process (e.g. photovoltaics).

    Without options prints a readable summary: the stages in order with their
    deadlines, required fields, next stages, actions and tasks, then the closure
    reasons. Needs no database.
    """
    if as_mermaid and as_json:
        raise click.UsageError(_("--mermaid and --json cannot be combined"))
    path = _resolve(file_or_name)
    spec, problems = check_file(path)
    if spec is None:
        for problem in problems:
            click.echo(problem.in_language(language()), err=True)
        click.echo(_("Error: ") + ngettext("{path} is not a valid process file ({count} problem)",
                                           "{path} is not a valid process file ({count} problems)", len(problems),
                                           path=path), err=True)
        sys.exit(1)

    if as_json:
        data: dict[str, Any] = {**spec.to_dict(), "content_hash": spec.content_hash}
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
    elif as_mermaid:
        click.echo(mermaid(spec), nl=False)
    else:
        _View(spec).print()


@process.command("upgrade")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--output", "output", type=click.Path(dir_okay=False), help="Write the upgraded file here.")
@click.option("--in-place", is_flag=True, help="Replace FILE by its upgraded text.")
@force_option
def upgrade(file: str, output: str | None, in_place: bool, force: bool) -> None:
    """Rewrite a process file of an older format in the current one (format 2), keeping every comment and the
    layout: only the version changes (format 2 adds keys, it changes the meaning of none).

    Prints the upgraded file, or writes it to --output (an existing file only with --force) or over FILE
    (--in-place). Needs no database.
    """
    from cli import files
    from engine.loader import upgrade_file

    if output and in_place:
        raise click.UsageError(_("--output and --in-place cannot be combined"))
    target = files.writable(file, force=True, option="FILE") if in_place else (
        files.writable(output, force=force, option="--output") if output else None)
    text, problems = upgrade_file(file)
    if text is None:
        for problem in problems:
            click.echo(problem.in_language(language()), err=True)
        raise click.ClickException(ngettext("{file} was not upgraded ({count} problem); nothing was written",
                                            "{file} was not upgraded ({count} problems); nothing was written",
                                            len(problems), file=file))
    if target is None:
        click.echo(text.decode("utf-8"), nl=False)
        return
    target.write_bytes(text)
    click.echo(_("{file}: upgraded to format {format} (comments and layout kept)", file=target, format=2), err=True)


# -- the text view ------------------------------------------------------------------------------


def _days(n: int) -> str:
    return ngettext("{count} day", "{count} days", n)


def _business_days(n: int) -> str:
    return ngettext("{count} business day", "{count} business days", n)


#: The letters of BANT, the qualification's four questions (a closure reason's ``bant``).
_BANT = {"B": N_("Budget"), "A": N_("Authority"), "N": N_("Need"), "T": N_("Timeline")}
#: A closure reason's kind as the view says it (its id in --json).
_KIND = {"refusal": N_("refusal"), "removal": N_("removal")}

Part = str | tuple[str, str]  # plain text, or (text, rich style)


def _then(word: str) -> str:
    """``word`` (translated) with the space that separates it from what follows: "next: ", "when "."""
    return f"{word} "


def _joined(word: str, items: list[str] | tuple[str, ...]) -> str:
    """``items`` joined with ``word`` (translated): "leasing or loan"."""
    return f" {word} ".join(items)


class _View:
    """The readable text view of a spec, printed with rich (imported here, not at module load), in the reader's
    language: its frame translated here, the process's labels picked by ``label``. The conditions keep their
    notation (ids, operators, ``and``/``or``), as the file and the refusals write them (docs/i18n.md)."""

    def __init__(self, spec: ProcessSpec):
        from rich.console import Console

        self.spec = spec
        self.console = Console(highlight=False)
        # Piped or captured output never breaks a line in the middle of a name.
        self.soft = not self.console.is_terminal

    def line(self, *parts: Part, indent: int = 0) -> None:
        from rich.text import Text

        text = Text(" " * indent)
        # a label of the process (a Text) in the reader's language: the one place this view picks it
        text.append_text(Text.assemble(*(label(p) if isinstance(p, str) else (label(p[0]), p[1]) for p in parts)))
        self.console.print(text, soft_wrap=self.soft)

    def blank(self) -> None:
        self.console.print()

    def role_name(self, role_id: str) -> str:
        role = self.spec.role(role_id)
        return label(role.name) if role else role_id

    def field_name(self, field_id: str) -> str:
        f = self.spec.field_spec(field_id)
        return f"{label(f.label)} ({field_id})" if f else field_id

    def recipient(self, to: str | None) -> str:
        if to == "client":
            return _("the client")
        if to == "owner":
            return _("the lead owner")
        return self.role_name(to or "?")

    # -- sections --------------------------------------------------------------------------------
    def print(self) -> None:
        self.header()
        self.blank()
        self.line((_("Stages"), "bold underline"))
        for number, stage in enumerate(self.spec.stages, start=1):
            if number > 1:
                self.blank()
            self.stage(number, stage)
        self.blank()
        self.reasons()

    def header(self) -> None:
        spec = self.spec
        self.line((spec.title, "bold"))
        if spec.description:
            self.line((spec.description, "italic"))
        facts = [
            ("id", spec.id),
            (_("currency"), spec.currency),
            (_("calendar"), _("{calendar} (deadlines skip its weekends and public holidays)", calendar=spec.calendar)),
            (_("sales cycle"), _days(spec.sales_cycle_days)),
            (_("cool-off"), _days(spec.cool_off_days)),
        ]
        if spec.stalled_after_days is not None:
            facts.append((_("stalled after"), _("{days} without activity", days=_days(spec.stalled_after_days))))
        facts.append((_("lead owner"), f"{self.role_name(spec.owner_role)} ({spec.owner_role})"))
        facts.append((_("roles"), ", ".join(f"{label(r.name)} ({r.id})" for r in spec.roles)))
        facts.append((_("e-mails in"), spec.language))
        if spec.assignment is not None:
            cap = spec.assignment.max_open
            facts.append((_("assignment"), ngettext("{count} rule, round robin within a team",
                                                    "{count} rules, round robin within a team",
                                                    len(spec.assignment.rules))
                          + (ngettext(", at most {count} open lead a salesperson",
                                      ", at most {count} open leads a salesperson", cap) if cap else "")))
            either, both = _("or"), _("and")
            for number, rule in enumerate(spec.assignment.rules, start=1):
                what = [_("when {condition}", condition=condition_text(rule.when))] if rule.when else []
                what += [_("product {products}", products=_joined(either, rule.products))] if rule.products else []
                rules = _joined(both, what) if what else _("every lead")
                facts.append(("  " + _("rule {number}", number=number), _("team {team}: {rules}", team=rule.team,
                                                                           rules=rules)
                              + (_(" (cap {cap})", cap=rule.max_open) if rule.max_open else "")))
        width = max(len(k) for k, _v in facts) + 1
        for key, value in facts:
            self.line((f"{key + ':':<{width}} ", "dim"), value, indent=2)

    def stage(self, number: int, stage: StageSpec) -> None:
        spec, ind = self.spec, 5
        head: list[Part] = [(f"{number}. ", "bold"), (stage.name, "bold"), (f" [{stage.id}]", "dim")]
        if stage.id == spec.won_stage:
            head.append((" - " + _("won stage: completing it wins the sale"), "green"))
        self.line(*head, indent=2)
        if stage.description:
            self.line((stage.description, "italic"), indent=ind)
        timing = _("deadline {days}", days=_business_days(stage.deadline_days))
        if stage.warning_days:
            timing += ", " + _("due soon {days} before", days=_business_days(stage.warning_days))
        else:
            timing += ", " + _("no warning window")
        if stage.probability is not None:
            timing += "; " + _("win probability {percent}", percent=formats.percent(stage.probability, decimals=0))
        self.line(timing, indent=ind)
        if stage.required_fields:
            names = ", ".join(self.field_name(f) for f in stage.required_fields)
            self.line((_then(_("required fields:")), "dim"), names, indent=ind)

        if not stage.next:
            won = " " + _("(the sale is won here)") if stage.id == spec.won_stage else ""
            self.line((_then(_("next:")), "dim"), _("none") + won, indent=ind)
        for transition in stage.next:
            target = spec.stage(transition.stage)
            parts: list[Part] = [
                (_then(_("next:")), "dim"),
                "-> ",
                target.name if target else transition.stage,
                (f" [{transition.stage}]", "dim"),
            ]
            if transition.when is not None:
                parts += [" " + _then(pgettext("condition", "when")), (condition_text(transition.when), "cyan")]
            self.line(*parts, indent=ind)

        for action in stage.on_enter:
            self.line((_then(_("on enter:")), "dim"), self.action(action), indent=ind)

        tasks = stage.all_tasks
        if not tasks:
            self.line((_then(_("tasks:")), "dim"), _("none"), indent=ind)
            return
        self.line((_("tasks:"), "dim"), indent=ind)
        created = {a.task.id for a in stage.on_enter if a.kind == "create_task" and a.task is not None}
        for task in tasks:
            self.line(*self.task(task, created=task.id in created), indent=ind + 2)

    def action(self, action: ActionSpec) -> str:
        if action.kind == "create_task" and action.task is not None:
            return _("create task '{task}' [{id}]", task=label(action.task.name), id=action.task.id)
        if action.kind == "send_email":
            to = self.recipient(action.to)
            if action.after_days:
                return _("send e-mail '{template}' to {recipient} after {days}", template=action.template,
                         recipient=to, days=_business_days(action.after_days))
            return _("send e-mail '{template}' to {recipient}", template=action.template, recipient=to)
        if action.kind == "remind":
            return _("remind {recipient} with '{template}' after {days}", recipient=self.recipient(action.to),
                     template=action.template, days=_business_days(action.after_days or 0))
        return action.kind  # pragma: no cover - the schema knows no other actions

    def task(self, task: TaskSpec, *, created: bool) -> list[Part]:
        parts: list[Part] = ["• ", task.name, (f" [{task.id}]", "dim"), f" - {self.role_name(task.owner)}, "]
        parts.append((_("mandatory"), "bold") if task.mandatory else (_("optional"), ""))
        if task.deadline_days is not None:
            parts.append(", " + _("own deadline {days}", days=_business_days(task.deadline_days)))
        if task.deadline_hours is not None:
            hours = ngettext("{count} business hour", "{count} business hours", task.deadline_hours)
            parts.append(", " + _("own deadline {days}", days=hours))
        if task.when is not None:
            parts += [", " + _then(_("only when")), (condition_text(task.when), "cyan")]
        if created:
            parts.append(("  " + _("(created on entry)"), "dim"))
        return parts

    def reasons(self) -> None:
        self.line((_("Closure reasons"), "bold underline"))
        self.line((_("a lead may be closed as lost from any stage, for one of these reasons"), "dim"), indent=2)
        for reason in self.spec.closure_reasons:
            details = [_(_KIND[reason.kind]) if reason.kind in _KIND else reason.kind]
            if reason.bant:
                details.append(_("BANT {letter} ({meaning})", letter=reason.bant,
                                 meaning=_(_BANT[reason.bant]) if reason.bant in _BANT else reason.bant))
            if reason.revisit_after_days is not None:
                details.append(_("revisit after {days}", days=_days(reason.revisit_after_days)))
            else:
                details.append(_("no revisit"))
            if reason.review:
                details.append(_("reviewed by the sales director"))
            self.line(
                "• ", (reason.label, "bold"), (f" [{reason.id}]", "dim"), " - " + ", ".join(details), indent=2
            )
