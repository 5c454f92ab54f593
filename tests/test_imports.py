"""The engine is a library: importing it pulls in no CLI, and cheap commands stay cheap."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENGINE = ROOT / "engine"


def modules_after(code: str, env: dict[str, str] | None = None) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys, json; print(json.dumps(sorted(sys.modules)))"],
        cwd=ROOT, capture_output=True, text=True, check=True, env={**os.environ, **(env or {})},
    ).stdout
    return set(json.loads(out.splitlines()[-1]))


def test_engine_does_not_import_the_cli() -> None:
    loaded = modules_after("import engine.api, engine.loader, engine.state, engine.machine")
    assert not {"click", "cli", "rich"} & loaded


def engine_modules() -> dict[str, Path]:
    """Every module under engine/ by its dotted name (a package by its own name), alembic's scripts included."""
    found = {}
    for path in sorted(ENGINE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


#: Run by alembic inside a migration (env.py and the versions), never imported on their own.
ALEMBIC_SCRIPTS = "engine.migrations."


def imported_names(module: str, path: Path) -> Iterator[tuple[str, int, bool]]:
    """Every module an ``import`` statement in ``path`` may name, with its line and whether it is for the type
    checker only (under ``if TYPE_CHECKING:``). Module level or inside a function: a lazy import is an import
    all the same. ``from package import name`` yields ``package`` and ``package.name``, which counts only where
    it is a module."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    type_only = {id(inner) for node in ast.walk(tree)
                 if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")
                 for statement in node.body for inner in ast.walk(statement)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno, id(node) in type_only
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            yield base, node.lineno, id(node) in type_only
            for alias in node.names:
                yield f"{base}.{alias.name}", node.lineno, id(node) in type_only


#: What the engine must never import: the interfaces, and the libraries only they use.
EDGE_ONLY = {"cli", "click", "rich", "matplotlib", "fastapi", "uvicorn", "starlette"}


def test_no_engine_module_imports_the_interfaces_or_their_libraries() -> None:
    modules = engine_modules()
    assert {"engine", "engine.api", "engine.spec"} <= set(modules)  # the walk found the engine
    offending = sorted(f"{path.relative_to(ROOT)}:{line} imports {name}"
                       for module, path in modules.items() for name, line, _ in imported_names(module, path)
                       if name.split(".")[0] in EDGE_ONLY)
    assert offending == []


def test_importing_every_engine_module_loads_no_interface() -> None:
    """Each module imported alone (the engine's modules cleared before each), so none relies on another having
    been imported first; then nothing of the interfaces is loaded."""
    importable = sorted(m for m in engine_modules() if not m.startswith(ALEMBIC_SCRIPTS))
    code = (f"import importlib\nfor name in {importable!r}:\n"
            "    for loaded in [m for m in sys.modules if m == 'engine' or m.startswith('engine.')]:\n"
            "        del sys.modules[loaded]\n"
            "    importlib.import_module(name)")
    loaded = modules_after(f"import sys\n{code}")
    assert {m.split(".")[0] for m in loaded} & EDGE_ONLY == set()


#: Cycles another part of issue 13 is still taking apart, each as its modules in sorted order. The test asks for
#: exactly these, so an entry cannot outlive its cycle: whoever removes a cycle removes its line.
KNOWN_CYCLES: set[tuple[str, ...]] = set()


def import_cycles(graph: dict[str, set[str]]) -> set[tuple[str, ...]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = set()

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while not group or group[-1] != node:
                group.append(stack.pop())
            if len(group) > 1:
                cycles.add(tuple(sorted(group)))

    for node in graph:
        if node not in index:
            visit(node)
    return cycles


def engine_import_graph() -> dict[str, set[str]]:
    """Which engine module imports which, from every ``import`` statement that runs (module level or lazy; one for
    the type checker only does not). Importing a package's module runs the package first, but that step is left
    out: ``engine/__init__.py`` and a package's ``__init__`` that gathers its modules make no cycle a reader has
    to untangle (one that breaks an import is found by importing each module alone, above)."""
    modules = engine_modules()
    return {module: {name for name, _, type_only in imported_names(module, path)
                     if not type_only and name in modules and name != module and not module.startswith(f"{name}.")}
            for module, path in modules.items()}


def test_import_cycles_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert import_cycles(graph) == {("a", "b", "c")}


def test_imported_names_reads_lazy_relative_and_type_only_imports(tmp_path: Path) -> None:
    path = tmp_path / "leads.py"
    path.write_text("from typing import TYPE_CHECKING\nfrom . import context\nif TYPE_CHECKING:\n"
                    "    from engine.api import Engine\n\ndef f():\n    import rich.console\n", encoding="utf-8")
    assert set(imported_names("engine.services.leads", path)) == {
        ("typing", 1, False), ("typing.TYPE_CHECKING", 1, False), ("engine.services", 2, False),
        ("engine.services.context", 2, False), ("engine.api", 4, True), ("engine.api.Engine", 4, True),
        ("rich.console", 7, False)}


def test_the_engine_has_no_import_cycles() -> None:
    assert import_cycles(engine_import_graph()) == KNOWN_CYCLES


def test_lead_show_path_does_not_load_heavy_modules() -> None:
    loaded = modules_after("import cli.main")
    assert not {"jsonschema", "rich", "matplotlib", "fastapi", "alembic"} & loaded


#: What the salesperson's everyday commands must not pay for at start-up (issue 8: under 300 ms wall).
HEAVY = {"yaml", "jsonschema", "rich", "matplotlib", "fastapi", "uvicorn", "alembic", "holidays", "jinja2",
         "transitions"}


def test_lead_show_and_task_done_run_without_heavy_modules(tmp_path: Path) -> None:
    from engine.api import Engine

    url = f"sqlite:///{tmp_path / 'leadflow.db'}"
    admin = Engine.open(url, user="root")
    admin.init()
    admin.load_process(ROOT / "processes" / "photovoltaics.yaml")
    admin.add_user("anna", "salesperson", "north")
    lead = admin.as_user("anna").add_lead(process="photovoltaics", name="Zofia Kamińska")
    admin.close()
    for argv in (["lead", "show", str(lead["id"]), "--json"], ["task", "done", str(lead["id"]), "record_contact"]):
        loaded = modules_after(
            f"from cli.main import cli\ncli.main({argv!r}, prog_name='leadflow', standalone_mode=False)",
            env={"LEADFLOW_DB": url, "LEADFLOW_USER": "anna", "PYTHONPATH": str(ROOT)})
        assert "engine.api" in loaded, argv  # the command ran
        assert HEAVY & loaded == set(), argv
        # only the modules of the command that runs: not the reports, the import, the HTTP service, ...
        assert {m for m in loaded if m.startswith("cli.") and m.endswith("_cmds")} == {
            "cli.lead_cmds", *(["cli.recovery_cmds"] if argv[0] == "lead" else [])}, argv
    check = Engine.open(url, user="anna")
    assert [t["state"] for t in check.get_lead(lead["id"])["tasks"] if t["id"] == "record_contact"] == ["done"]
    check.close()


def test_every_command_is_listed_and_loads_under_its_name() -> None:
    """The command table of cli/main.py names each command's module: a typo would surface only when run."""
    import click

    from cli.main import COMMANDS, SUBCOMMANDS, cli

    context = click.Context(cli)
    assert cli.list_commands(context) == sorted(COMMANDS)
    for name in COMMANDS:
        command = cli.get_command(context, name)
        assert command is not None and command.name == name
    for group, subcommands in SUBCOMMANDS.items():
        loaded = cli.get_command(context, group)
        assert isinstance(loaded, click.Group)
        assert {sub for _, sub in subcommands} <= {c.callback.__name__ for c in loaded.commands.values()
                                                   if c.callback is not None}
