"""Every refusal and error the engine produces is a template with named parameters (docs/i18n.md, issue 17), so it
is extracted into the catalogues and shown in the reader's language; an f-string message would be English in
every language. These tests keep it so: an AST scan of engine/ refuses a new one, and one of cli/ refuses an error or a
printed line written in English there (the CLI's own refusals and lines, issue 17)."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

import engine
from engine import i18n
from engine.errors import LeadflowError, RuleViolation, did_you_mean
from engine.i18n import N_

ENGINE = Path(engine.__file__).resolve().parent
CLI = ENGINE.parent / "cli"

#: Exceptions whose message is allowed to stay English, and why. Nothing else in engine/ may be built from an
#: f-string (or an English text glued together with ``+`` or ``.format``).
ENGLISH_ONLY = {
    # programmer errors and Python protocol errors: a bug's report, never a user's refusal
    "AssertionError", "AttributeError", "RuntimeError", "TypeError", "ValueError",
    # texts that become data: a template's or an SMTP server's problem goes into the outbox's stored last error
    # (an import's per-row refusal is a template: its report carries message_id and params, docs/i18n.md)
    "TemplateError", "SendError",
}
#: The functions whose first argument is a template: an f-string there would be extracted as nonsense.
TEMPLATE_TAKERS = {"N_", "_", "gettext", "ngettext", "Message"}
#: The calls whose second argument is a message shown to a person: a refused value of a form or an import's row.
MESSAGE_SECOND = {"FieldError"}
#: What makes a process file's located problem, and which of its arguments is the message (by position, or by
#: keyword): ``errors.Problem``, ``Document.problem``, the semantic checks' ``at``, the YAML reader's ``_refuse``.
PROBLEM_MAKERS = {"Problem": 4, "problem": 1, "at": 1, "_refuse": 3,
                  "difference": 2}  # and ``check``'s findings (engine/integrity.py)
#: The modules that read a process file: a function of theirs that returns a text returns a template
#: (``i18n.Message``), so that a problem built from it is translated; the few that return something else, and why.
LOADER_MODULES = ("condition_checks.py", "document.py", "errors.py", "formats.py", "loader.py", "messages.py",
                  "process_schema.py", "process_yaml.py", "semantics.py")
NOT_MESSAGES = {
    "_shown_tag",  # a YAML tag as written (!!python/name): a parameter of a message
    "format_path",  # a document path (stages[2].tasks[0]): the problem's place, the same in every language
    "in_language",  # the problem (or error) already in the reader's language
    "__str__",  # the same in English
}


def _error_classes() -> set[str]:
    """The names of every exception class defined in engine/ (imported, so a new module's class counts)."""
    for module in pkgutil.walk_packages(engine.__path__, "engine."):
        if ".migrations" not in module.name:
            importlib.import_module(module.name)
    found: set[str] = set()
    todo: list[type] = [Exception]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            if sub.__module__.startswith("engine"):
                found.add(sub.__name__)
            todo.append(sub)
    return found


def _english(node: ast.expr) -> bool:
    """Whether ``node`` builds a message in English at run time: an f-string, one glued to others with ``+``,
    or a ``"...".format(...)``."""
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(v, ast.FormattedValue) for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mod)):
        return _english(node.left) or _english(node.right) or isinstance(node.left, ast.Constant)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
        return isinstance(node.func.value, ast.Constant)
    if isinstance(node, ast.IfExp):
        return _english(node.body) or _english(node.orelse)
    return False


def _plain_text(node: ast.expr) -> bool:
    """Whether ``node`` is a text that is no template: an English sentence (a literal, an f-string, a glued one),
    where a ``Message(N_("..."), ...)`` belongs."""
    return (isinstance(node, ast.Constant) and isinstance(node.value, str)) or _english(node) or isinstance(
        node, ast.JoinedStr)


def _name(func: ast.expr) -> str:
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def _calls(paths: list[Path]) -> Iterator[tuple[Path, ast.Call, str, bool]]:
    """Every call with arguments in ``paths``: its file, the call, the name it calls and whether it is raised."""
    for path in paths:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        raised = {id(node.exc) for node in ast.walk(tree) if isinstance(node, ast.Raise)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and node.args:
                yield path, node, _name(node.func), id(node) in raised


def _problem_message(node: ast.Call) -> ast.expr | None:
    """The message given to a maker of a located problem, or None."""
    position = PROBLEM_MAKERS.get(_name(node.func))
    if position is None:
        return None
    given = [k.value for k in node.keywords if k.arg == "message"]
    return node.args[position] if len(node.args) > position else (given[0] if given else None)


def _english_returns(tree: ast.AST) -> list[ast.Return]:
    """The ``return``s of a loader module's functions that give back an English text built at run time."""
    found = []
    for func in ast.walk(tree):
        if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)) and func.name not in NOT_MESSAGES:
            found += [node for node in ast.walk(func)
                      if isinstance(node, ast.Return) and node.value is not None and _english(node.value)]
    return found


def _english_messages() -> list[str]:
    errors = _error_classes() | {"LeadflowError"}
    found = []
    for path in [*sorted(ENGINE.rglob("*.py")), ENGINE.parent / "cli" / "process_cmds.py"]:
        if "migrations" in path.parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        raised = {id(node.exc) for node in ast.walk(tree) if isinstance(node, ast.Raise)}
        if path.parent == ENGINE and path.name in LOADER_MODULES:
            found += [f"{path.relative_to(ENGINE.parent)}:{node.lineno}: return" for node in _english_returns(tree)]
        for node in ast.walk(tree):
            message = _problem_message(node) if isinstance(node, ast.Call) else None
            if message is not None and _english(message):
                found.append(f"{path.relative_to(ENGINE.parent)}:{node.lineno}: {_name(node.func)}(...)")
            if not isinstance(node, ast.Call) or not node.args:
                continue
            name = _name(node.func)
            checked = (name in errors and name not in ENGLISH_ONLY) or name in TEMPLATE_TAKERS
            raised_unknown = id(node) in raised and name not in ENGLISH_ONLY
            if (checked or raised_unknown) and _english(node.args[0]):
                found.append(f"{path.relative_to(ENGINE.parent)}:{node.lineno}: {name}(...)")
            if name in MESSAGE_SECOND and len(node.args) > 1 and _plain_text(node.args[1]):
                found.append(f"{path.relative_to(ENGINE.parent)}:{node.lineno}: {name}(..., text)")
    return found


def test_no_engine_error_is_built_from_an_f_string() -> None:
    """Write ``RuleViolation(N_("lead {lead} is closed"), lead=lead_id)``, not ``RuleViolation(f"...")``: the
    template is extracted by pybabel and translated where it is shown (docs/i18n.md)."""
    assert _english_messages() == []


def test_the_scan_finds_an_f_string_message(tmp_path: Path) -> None:
    # the scan itself can fail: it sees an f-string, a glued text and a .format
    for source in ('RuleViolation(f"lead {x} is closed")', 'InvalidInputError("lead " + str(x))',
                   'NotFoundError("no {0}".format(x))', 'N_(f"{x}")'):
        call = ast.parse(source, mode="eval").body
        assert isinstance(call, ast.Call)
        assert _english(call.args[0]), source
    assert not _english(ast.parse('N_("lead {lead} is closed")', mode="eval").body)
    # ... and a process file's located problem built from one, or from a loader's helper that returns one
    for source in ('doc.problem(path, f"unknown key {key}")', 'Problem(file, 1, 1, "", f"file is {size} bytes")',
                   'self.at(path, Message(N_("x")) if x else f"y {x}")', 'Problem(file, 1, 1, "", message=f"{x}")'):
        call = ast.parse(source, mode="eval").body
        assert isinstance(call, ast.Call)
        message = _problem_message(call)
        assert message is not None and _english(message), source
    helper = ast.parse('def _why(x):\n    if x:\n        return Message(N_("{x}"), x=x)\n    return f"because {x}"\n')
    assert [node.lineno for node in _english_returns(helper)] == [4]
    assert {"RuleViolation", "NotFoundError", "PhoneError", "BatchRefused"} <= _error_classes()


# -- cli/: the CLI's own refusals and lines -------------------------------------------------------------------------

#: What cli/ may raise in English, and why: programmer errors (a wrong call of the remote engine's operations, a
#: broken invariant), never shown to a user as a refusal (cli/main.py reports them as a bug), and the internal
#: ValueError the credentials file's reader raises and catches itself.
CLI_ENGLISH_ONLY = {"AssertionError", "AttributeError", "NotImplementedError", "RuntimeError", "TypeError",
                    "ValueError"}
#: The calls that print or ask a person something: their text must come from ``_``/``ngettext``.
PRINTERS = {"echo", "secho", "print", "prompt", "confirm"}
#: The folders of cli/ with their own rules: the team server's refusals of a request's shape stay English
#: (docs/i18n.md), and the web pages are Jinja templates (their texts are checked by tests/test_i18n.py).
CLI_ELSEWHERE = {"server", "web"}
_MARKUP = re.compile(r"\[/?[a-z][a-z0-9 #._=-]*\]")  # rich's [bold], [/], [dim]: not words


def _literal_parts(node: ast.expr) -> list[str]:
    """The texts written in the source that ``node`` shows: a string, an f-string's literal parts, the parts of a
    text glued with ``+`` or ``%``, a ``"...".format(...)``'s pattern."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.JoinedStr):
        return [v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str)]
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mod)):
        return _literal_parts(node.left) + _literal_parts(node.right)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
        return _literal_parts(node.func.value)
    return []


def _has_words(node: ast.expr) -> bool:
    """Whether ``node`` shows English words written in the source (a two-letter word is enough)."""
    return any(re.search(r"[A-Za-z]{2,}", _MARKUP.sub("", part)) for part in _literal_parts(node))


def _cli_english_texts() -> list[str]:
    """Every error raised in cli/ and every line it prints whose text is English written in the source."""
    errors = _error_classes() | {"LeadflowError", "ClickException", "UsageError", "BadParameter", "FileError",
                                 "CredentialsError", "RemoteError"}
    found = []
    ours = [p for p in sorted(CLI.rglob("*.py")) if not CLI_ELSEWHERE & set(p.relative_to(CLI).parts[:-1])]
    for path, node, name, is_raised in _calls(ours):
        error = (name in errors or is_raised) and name not in CLI_ENGLISH_ONLY
        if ((error or name in PRINTERS) and _has_words(node.args[0])) or (
                name in TEMPLATE_TAKERS and _english(node.args[0])):
            found.append(f"{path.relative_to(CLI.parent)}:{node.lineno}: {name}(...)")
    return found


def test_no_cli_error_or_line_is_written_in_english() -> None:
    """cli/'s own refusals (``click.UsageError(_("--password-stdin read no password ..."))``) and the lines it
    prints (``click.echo(_("Logged in to {server} as {user}", ...))``) are translated like the engine's: an English
    text written in the source would be English in every language (docs/i18n.md)."""
    assert _cli_english_texts() == []


def test_the_cli_scan_finds_an_english_text() -> None:
    for source in ('click.UsageError("give --email or --role")', 'click.ClickException(f"cannot write {path}")',
                   'click.echo(f"Logged in to {server}")', 'con.print(f"[bold]Lead {lead}[/bold]")',
                   'click.prompt("User")', 'CredentialsError("no server " + name)'):
        call = ast.parse(source, mode="eval").body
        assert isinstance(call, ast.Call)
        assert _has_words(call.args[0]), source
    for source in ('click.echo(_("Logged in to {server}", server=s))', 'con.print(f"[dim]  {name} ({id}): {n}[/]")',
                   'click.echo("[]")', 'click.UsageError(error_text(exc))'):
        call = ast.parse(source, mode="eval").body
        assert isinstance(call, ast.Call)
        assert not _has_words(call.args[0]), source


def test_an_error_keeps_its_english_text_and_is_translated_when_shown() -> None:
    err = RuleViolation(N_("can't {verb} {count} of {leads} leads, so none was written: {shown}{more}"),
                        verb="advance", count=2, leads=3, shown="x", more="")
    assert str(err) == "can't advance 2 of 3 leads, so none was written: x"
    assert i18n.error_text(err, "pl") != str(err)
    assert i18n.error_text(err, "pl").startswith("nie można")


def test_a_part_of_a_message_is_translated_with_it() -> None:
    """A "did you mean" clause, a list of reasons, an error inside an error: each in the reader's language."""
    hint = did_you_mean("advanse", ["advance", "close"])
    assert hint == "; did you mean 'advance'?"  # it is the English text itself
    assert isinstance(hint, i18n.Message)
    assert "advance" in hint.in_language("ru") and hint.in_language("ru") != str(hint)
    inner = LeadflowError(N_("wrong user name or password"))
    outer = LeadflowError(N_("the backup is not sound: {count} differences between leads and their event log, "
                             "the first: {text}; nothing was restored"), count=1, text=inner)
    assert str(outer).endswith("the first: wrong user name or password; nothing was restored")
    polish = i18n.error_text(outer, "pl")
    assert i18n.error_text(inner, "pl") in polish


@pytest.mark.parametrize("code", ["pl", "ro", "ru"])
def test_every_template_in_engine_is_in_the_catalogue(code: str) -> None:
    """The templates found in engine/ have their translation (test_i18n checks the whole catalogue; this names the
    engine's in particular, so a refusal never falls back to English)."""
    catalogue = i18n.translations(code)._catalog  # type: ignore[attr-defined]  # GNUTranslations' messages
    missing = []
    for path in sorted(ENGINE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (isinstance(node, ast.Call) and _name(node.func) == "N_" and node.args
                    and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                text = node.args[0].value
                if not catalogue.get(text):
                    missing.append(f"{path.name}:{node.lineno}: {text}")
    assert missing == []


# -- click's own words ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("code", "usage", "options", "help_option", "error", "no_such_option", "missing"), [
    ("en", "Usage:", "Options:", "Show this message and exit.", "Error:", "No such option '--nosuch'.",
     "Missing argument 'LEAD_ID'."),
    ("pl", "Użycie:", "Opcje:", "Pokaż ten komunikat i zakończ.", "Błąd:", "Nie ma opcji '--nosuch'.",
     "Brak argumentu 'LEAD_ID'."),
    ("ro", "Utilizare:", "Opțiuni:", "Afișează acest mesaj și iese.", "Eroare:", "Nu există opțiunea '--nosuch'.",
     "Lipsește argumentul 'LEAD_ID'."),
    ("ru", "Использование:", "Опции:", "Показать это сообщение и выйти.", "Ошибка:", "Нет такой опции: '--nosuch'.",
     "Не указан аргумент 'LEAD_ID'."),
])
def test_clicks_own_words_speak_the_language(monkeypatch: pytest.MonkeyPatch, code: str, usage: str, options: str,
                                             help_option: str, error: str, no_such_option: str,
                                             missing: str) -> None:
    from click.testing import CliRunner

    from cli.main import cli

    monkeypatch.setenv("LEADFLOW_LANG", code)
    runner = CliRunner()
    shown = runner.invoke(cli, ["--help"], prog_name="leadflow")
    assert shown.exit_code == 0
    assert shown.stdout.startswith(f"{usage} leadflow [OPTIONS] COMMAND [ARGS]...")
    assert f"\n{options}\n" in shown.stdout
    assert help_option in " ".join(shown.stdout.split())
    wrong = runner.invoke(cli, ["lead", "advance", "--nosuch"], prog_name="leadflow")
    assert wrong.exit_code == 2  # a usage error, whatever the language
    assert wrong.stderr.startswith(f"{usage} leadflow lead advance [OPTIONS]")
    assert wrong.stderr.splitlines()[-1] == f"{error} {no_such_option}"
    lacking = runner.invoke(cli, ["lead", "show"], prog_name="leadflow")
    assert lacking.exit_code == 2
    assert lacking.stderr.splitlines()[-1] == f"{error} {missing}"


def test_click_words_change_only_clicks_modules() -> None:
    """The standard library's gettext, which other libraries use, is left as it is."""
    import gettext

    import click.core
    import click.exceptions

    from cli import click_words

    click_words.install()
    assert click.core._ is click_words.gettext  # type: ignore[attr-defined]
    assert click.exceptions.ngettext is click_words.ngettext  # type: ignore[attr-defined]
    assert gettext.gettext("Usage:") == "Usage:"
    extracted = {m if isinstance(m, str) else m[0] for _line, _f, m, _c in click_words.messages()}
    assert {"Usage:", "Options", "Show this message and exit.", "Error: {message}", "Missing argument"} <= extracted
    assert not extracted & click_words.FOR_PROGRAMMERS


def test_a_refused_value_or_row_is_a_template_too() -> None:
    """A web form's refused value (``FieldError``) and an import's refused row (``RowRefused``) are shown to a
    person in their language (docs/i18n.md): an English text there is found, as a raised f-string is."""
    for source in ('FieldError("email", "a lead needs an e-mail")', 'FieldError(k, f"{k} is unknown")'):
        call = ast.parse(source, mode="eval").body
        assert isinstance(call, ast.Call) and _plain_text(call.args[1]), source
    call = ast.parse('FieldError(k, Message(N_("{key} is unknown"), key=k))', mode="eval").body
    assert isinstance(call, ast.Call) and not _plain_text(call.args[1])
    assert "RowRefused" in _error_classes() and "RowRefused" not in ENGLISH_ONLY


def test_a_message_kept_as_json_is_shown_in_any_language() -> None:
    """An import job's stored report keeps each refusal as ``message_json``: ``message_text`` shows it again in any
    language, nested clauses included; one that no longer fits its template is shown as stored, in English."""
    one = i18n.Message(N_("stage {stage!r} is not a stage of process {process}{suggestion}; stages: {stages}"),
                       stage="ofer", process="pv", suggestion=did_you_mean("ofer", ["offer"]), stages="offer")
    both = i18n.several([i18n.Message(N_("a lead needs the client's name")), one])
    stored = i18n.message_json(both)
    assert stored["message_id"] == i18n.SEVERAL and stored["params"]["reasons"][1]["params"]["suggestion"] == {
        "message_id": "; did you mean '{word}'?", "params": {"word": "offer"}}
    for code in i18n.LANGUAGES:
        assert i18n.message_text(stored, code) == i18n.message_text(both, code)
    assert str(both) == ("a lead needs the client's name; stage 'ofer' is not a stage of process pv; did you mean "
                         "'offer'?; stages: offer")
    assert i18n.message_text(stored, "pl").startswith("lead wymaga nazwy klienta; etap 'ofer' nie jest etapem")
    broken = {"reason": "as it was", "message_id": "{at:%Y-%m-%d}", "params": {"at": "2026-01-01"}}
    assert i18n.message_text(broken, "pl") == "as it was"
    assert i18n.Message("").in_language("pl") == ""  # not the catalogue's header
