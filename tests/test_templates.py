"""Mail templates: the loader finds every template a process names and refuses broken ones with their
location; the language variant wins; a folder of one's own overrides the shipped templates."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import messages
from engine.loader import check_file

MINI = (Path(__file__).resolve().parent / "data" / "broken" / "unknown_template.yaml").read_text(encoding="utf-8")
PROCESSES = Path(__file__).resolve().parent.parent / "processes"


def process(tmp_path: Path, template: str | None = None, text: str | None = None, *, language: str | None = None
            ) -> Path:
    """A valid mini process whose first_contact mails template ``greeting`` (written to templates/)."""
    body = MINI.replace("{template: welcom, to: client}", "{template: greeting, to: client}")
    if language:
        body = body.replace("cool_off_days: 10\n", f"cool_off_days: 10\nlanguage: {language}\n")
    path = tmp_path / "mini.yaml"
    path.write_text(body, encoding="utf-8")
    if text is not None:
        (tmp_path / "templates").mkdir(exist_ok=True)
        (tmp_path / "templates" / (template or "greeting.txt.j2")).write_text(text, encoding="utf-8")
    return path


def only_problem(path: Path) -> str:
    spec, problems = check_file(path)
    assert spec is None
    assert len(problems) == 1, problems
    (problem,) = problems
    assert (problem.line, problem.column, problem.path) == (31, 32, "stages[1].on_enter[0].send_email.template")
    return problem.message


def test_a_template_next_to_the_process_is_found(tmp_path: Path) -> None:
    spec, problems = check_file(process(tmp_path, text="Subject: Hello {{ client.name }}\n\nHi.\n"))
    assert problems == []
    assert spec is not None


@pytest.mark.parametrize(("text", "fragment"), [
    ("Hello {{ client.name }}\n", "template greeting.txt.j2 must start with a 'Subject: ...' line"),
    ("Subject: Hi\n\n{% if client.name %}unclosed\n", "template greeting.txt.j2 line 3: Unexpected end of template"),
    ("Subject: Hi {{ cleint.name }}\n\nx\n",
     "template greeting.txt.j2 failed to render: UndefinedError: 'cleint' is undefined, with a sample lead"),
    ("Subject: Hi\n\n{{ lead.fields.budgett }}\n",
     "failed to render: UndefinedError: 'dict object' has no attribute 'budgett', with a sample lead"),
    ("Subject: {{ '' }}\n\nx\n", "template greeting.txt.j2 rendered an empty subject, with a sample lead"),
    ("Subject: Hi\n\n{{ ''.__class__ }}\n", "SecurityError: access to attribute '__class__' of 'str' object is unsafe"),
])
def test_a_broken_template_is_a_located_problem(tmp_path: Path, text: str, fragment: str) -> None:
    assert fragment in only_problem(process(tmp_path, text=text))


def test_a_template_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    path = process(tmp_path, text="x")
    (tmp_path / "templates" / "greeting.txt.j2").write_bytes("Subject: Cześć\n".encode("cp1250"))
    assert "greeting.txt.j2 is not UTF-8 text; save it as UTF-8" in only_problem(path)


def test_the_language_variant_wins_and_own_folders_override_the_shipped_ones(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    path = process(tmp_path, "greeting.pl.txt.j2", "Subject: Cześć\n\nx\n", language="pl")
    (tmp_path / "templates" / "greeting.txt.j2").write_text("Subject: Hello\n\nx\n", encoding="utf-8")
    dirs = messages.template_dirs(path)
    assert dirs == [tmp_path / "templates", PROCESSES / "templates"]
    assert messages.find("greeting", "pl", dirs) == tmp_path / "templates" / "greeting.pl.txt.j2"
    assert messages.find("greeting", "ro", dirs) == tmp_path / "templates" / "greeting.txt.j2"
    assert messages.find("welcome", "pl", dirs) == PROCESSES / "templates" / "welcome.pl.txt.j2"
    assert messages.find("welcome", "en", dirs) == PROCESSES / "templates" / "welcome.txt.j2"

    own = tmp_path / "company"
    own.mkdir()
    (own / "welcome.txt.j2").write_text("Subject: Ours\n\nx\n", encoding="utf-8")
    monkeypatch.setenv("LEADFLOW_TEMPLATES", str(own))
    assert messages.find("welcome", "pl", messages.template_dirs(path)) == own / "welcome.txt.j2"


def test_a_missing_language_variant_falls_back_to_english(tmp_path: Path) -> None:
    spec, problems = check_file(process(tmp_path, text="Subject: Hi\n\nx\n", language="ro"))
    assert problems == []
    assert spec is not None
    assert spec.language == "ro"


@pytest.mark.parametrize("name", sorted(p.name for p in (PROCESSES / "templates").iterdir()))
def test_every_shipped_template_is_sound(name: str) -> None:
    assert messages.problem(PROCESSES / "templates" / name) is None


def test_every_polish_template_has_its_english_original() -> None:
    names = {p.name for p in (PROCESSES / "templates").iterdir()}
    polish = {n for n in names if n.endswith(".pl.txt.j2")}
    assert len(polish) == 28  # every template a shipped process sends (issue 17): all but visit_reminder
    assert {n.replace(".pl.txt.j2", ".txt.j2") for n in polish} <= names
