"""The documentation's runnable examples run, so the docs cannot drift from the code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"


def python_blocks(markdown: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", markdown, flags=re.S)


def test_api_example_runs(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = python_blocks((DOCS / "api.md").read_text(encoding="utf-8"))
    example = next(b for b in blocks if "Engine.open" in b and "admin.init()" in b)
    monkeypatch.delenv("LEADFLOW_NOW", raising=False)  # the example sets it itself
    exec(compile(example, "docs/api.md", "exec"), {})
    printed = capsys.readouterr().out
    assert "can't leave stage 'register_lead' of lead 1: mandatory tasks open: record_contact" in printed
