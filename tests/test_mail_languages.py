"""Every mail a shipped process sends exists in each language of the market it serves, renders with a lead of that
process in that language, and says what the English one says (issue 17; docs/i18n.md "Mails"). And one mail, end to
end: a Romanian client of leasing gets Romanian mails through a real SMTP server."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from email.header import decode_header, make_header
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from jinja2 import Environment, meta, nodes

from engine import i18n, messages, notices
from engine.loader import load_file
from engine.spec import ProcessSpec, StageSpec
from tests import test_outbox as outbox_tests
from tests.conftest import Team
from tests.smtp import Inbox, Server

PROCESSES = Path(__file__).resolve().parent.parent / "processes"
TEMPLATES = PROCESSES / "templates"
SHIPPED = sorted(p.stem for p in PROCESSES.glob("*.yaml"))
#: The mails the engine sends on its own for every process (docs/automation.md): the owner's, in the owner's language.
ENGINE_MAILS = (*notices.TEMPLATES.values(), notices.DIGEST_TEMPLATE)

#: The names a translation may leave out of what the English mail shows, and why; it may leave out nothing else and
#: use nothing the English one does not.
LEFT_OUT = {
    # a formal Polish mail opens with "Dzień dobry,": naming the client needs the vocative and the client's sex
    # ("Panie Łukaszu"), which leadflow does not know
    "pl": {"client.name", "process.title"},
    # the title is a label in the nominative ("Instalacje fotowoltaiczne"), which a sentence of an inflected language
    # cannot always take: the welcome says "your inquiry" instead
    "ro": {"process.title"},
    "ru": {"process.title"},
}

CLIENTS = {
    "en": {"name": "John Carter", "company": "Carter & Sons Ltd", "email": "john@carter.example.com",
           "phone": "+44 20 7946 0000"},
    "pl": {"name": "Łukasz Żółć", "company": "Żółć sp. z o.o.", "email": "lukasz@example.pl",
           "phone": "+48 600 100 200"},
    "ro": {"name": "Ioana Popescu", "company": "Popescu Transport SRL", "email": "ioana@example.ro",
           "phone": "+40 721 000 111"},
    "ru": {"name": "Жанна Иванова", "company": "ООО «Север»", "email": "zhanna@example.ru",
           "phone": "+7 495 000 00 00"},
}
OWNERS = {"en": "Anna Smith", "pl": "Anna Nowak", "ro": "Ioana Radu", "ru": "Ольга Петрова"}
FIELD_VALUES = {"text": "Toyota Corolla 1.8 Hybrid", "number": 38, "money": "125000.00", "date": "2026-04-15",
                "bool": True}


@cache
def spec_of(process: str) -> ProcessSpec:
    return load_file(PROCESSES / f"{process}.yaml")


def label_languages(value: Any) -> set[str]:
    """The languages the labels of a process file (a spec, or any part of it) are written in."""
    if isinstance(value, i18n.Text):
        return set(value.as_dict())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return set().union(*(label_languages(getattr(value, f.name)) for f in dataclasses.fields(value)))
    if isinstance(value, (list, tuple)):
        return set().union(*(label_languages(v) for v in value))
    if isinstance(value, dict):
        return set().union(*(label_languages(v) for v in value.values()))
    return set()


def mails_of(spec: ProcessSpec) -> dict[str, StageSpec]:
    """Every template a process sends, with a stage it is sent from (the engine's own mails: the first stage)."""
    used = {action.template: stage for stage in reversed(spec.stages) for action in stage.on_enter
            if action.template}
    return {**dict.fromkeys(ENGINE_MAILS, spec.stages[0]), **used}


def language_of(path: Path) -> str:
    parts = path.name.removesuffix(messages.SUFFIX).split(".")
    return parts[1] if len(parts) > 1 else i18n.SOURCE


def variants(name: str) -> list[Path]:
    """The files of template ``name``: the English one first, then its translations."""
    return [TEMPLATES / f"{name}{messages.SUFFIX}", *sorted(TEMPLATES.glob(f"{name}.*{messages.SUFFIX}"))]


def names(path: Path) -> set[str]:
    """The names a template shows or tests, as dotted paths (``client.name``, ``lead.fields.get``), without the
    loop's own variables."""
    tree = Environment().parse(messages.read(path))
    given = meta.find_undeclared_variables(tree)
    found: set[str] = set()

    def dotted(node: nodes.Node) -> str | None:
        if isinstance(node, nodes.Name):
            return node.name
        if isinstance(node, nodes.Getattr):
            base = dotted(node.node)
            return f"{base}.{node.attr}" if base else None
        return None

    def walk(node: nodes.Node) -> None:
        path = dotted(node)
        if path is not None:
            if path.split(".")[0] in given:
                found.add(path)
            return
        for child in node.iter_child_nodes():
            walk(child)

    walk(tree)
    return found


def lead_context(spec: ProcessSpec, stage: StageSpec, language: str, *, full: bool) -> dict[str, Any]:
    """What a template sees for a lead of ``spec`` whose client speaks ``language``: everything set (``full``), or an
    unassigned lead with nothing but the client's name, no link and no fields."""
    client = CLIENTS[language] if full else {"name": CLIENTS[language]["name"], "company": None, "email": None,
                                             "phone": None}
    owner = {"name": OWNERS[language], "email": "owner@example.com"} if full else None
    fields = {f.id: (f.options[0] if f.type == "choice" else list(f.options[:2]) if f.type == "choices" else
                     FIELD_VALUES[f.type]) if full else None for f in spec.fields}
    lead = {"id": 417, "process": spec.id, "stage": stage.id, "stage_name": stage.name, "status": "open",
            "owner": owner["name"] if owner else None, "team": "north", "product": "Premium" if full else None,
            "source": "web_form", "value": "125000.00" if full else None, "currency": spec.currency,
            "created_at": "2026-03-02T09:00:00", "next_contact": "2026-03-04T14:00:00",
            "url": "https://crm.example.com/leads/417" if full else None}
    values = messages.context(
        process={"id": spec.id, "title": spec.title}, stage={"id": stage.id, "name": stage.name}, lead=lead,
        fields=fields, client=client, owner=owner,
        mail={"kind": "email", "to": "client", "due_at": "2026-03-02T09:00:00"},
        sender={"name": "Biuro Sprzedaży", "email": "sales@example.com"})
    others = [{"id": 418, "stage": stage.id, "stage_name": stage.name, "product": None, "url": None,
               "client": {"name": "Jan Kowalski", "company": None, "email": None, "phone": "+48 601 222 333"}}]
    digest_leads = [{"id": 417, "stage": stage.id, "stage_name": stage.name, "product": lead["product"],
                     "url": lead["url"], "client": client}, *others]
    return {**values, "digest": {"count": 3, "more": 1, "leads": digest_leads}}


def renders() -> Iterator[tuple[str, str, Path]]:
    for process in SHIPPED:
        for name in mails_of(spec_of(process)):
            for path in variants(name):
                yield process, name, path


# -- every template of a process in every language of its market -------------------------------------------------

@pytest.mark.parametrize("process", SHIPPED)
def test_every_mail_of_a_process_exists_in_each_language_its_labels_carry(process: str) -> None:
    spec = spec_of(process)
    languages = label_languages(spec)
    assert i18n.SOURCE in languages and len(languages) > 1  # photovoltaics and leasing en/pl/ro, the others with ru
    missing = [f"{name}.{code}{messages.SUFFIX}" for name in mails_of(spec) for code in sorted(languages)
               if code != i18n.SOURCE and not (TEMPLATES / f"{name}.{code}{messages.SUFFIX}").is_file()]
    assert missing == [], f"{process} speaks {sorted(languages)}: translate {', '.join(missing)}"
    assert all((TEMPLATES / f"{name}{messages.SUFFIX}").is_file() for name in mails_of(spec))


def test_the_markets_are_the_documented_ones() -> None:
    assert {p: sorted(label_languages(spec_of(p))) for p in SHIPPED} == {
        "leasing": ["en", "pl", "ro"], "life_insurance": ["en", "pl", "ro", "ru"],
        "mortgage": ["en", "pl", "ro", "ru"], "photovoltaics": ["en", "pl", "ro"],
        "saas_trial": ["en", "pl", "ro", "ru"]}


@pytest.mark.parametrize(("process", "name", "path"), list(renders()),
                         ids=[f"{p}-{path.name}" for p, _, path in renders()])
@pytest.mark.parametrize("full", [True, False], ids=["everything-set", "unassigned-bare"])
def test_every_variant_renders_with_a_lead_of_the_process(process: str, name: str, path: Path, full: bool) -> None:
    spec, language = spec_of(process), language_of(path)
    rendered = messages.render_file(path, lead_context(spec, mails_of(spec)[name], language, full=full))
    text = f"{rendered.subject}\n{rendered.body}"
    assert rendered.template == path.name
    assert "None" not in text  # every optional name is tested before it is shown
    assert "{{" not in text and "{%" not in text
    if "process.title" in names(path):  # the process's title in the mail's language, not the English one lowered
        title, english = spec.title.in_(language).casefold(), spec.title.in_(i18n.SOURCE).casefold()
        assert title in text.casefold()
        assert title == english or english not in text.casefold()
    if language != i18n.SOURCE and "client.name" in names(path):
        assert CLIENTS[language]["name"] in text


@pytest.mark.parametrize("path", sorted(TEMPLATES.glob(f"*.*{messages.SUFFIX}")), ids=lambda p: p.name)
def test_a_translation_shows_what_the_english_mail_shows(path: Path) -> None:
    english = TEMPLATES / f"{path.name.split('.')[0]}{messages.SUFFIX}"
    theirs, ours = names(english), names(path)
    assert ours - theirs == set(), f"{path.name} uses names the English {english.name} does not"
    assert theirs - ours <= LEFT_OUT[language_of(path)], f"{path.name} leaves out {sorted(theirs - ours)}"


def test_the_names_of_a_template_are_its_dotted_paths_without_loop_variables() -> None:
    assert names(TEMPLATES / "import_digest.txt.j2") == {
        "owner", "owner.name", "process.title", "digest.count", "digest.more", "digest.leads", "sender.name"}
    assert {"lead.fields.get", "lead.fields.roof_area_m2"} <= names(TEMPLATES / "offer_in_preparation.txt.j2")


# -- end to end: a Romanian client of leasing ----------------------------------------------------------------------

inbox, smtp, mailing = outbox_tests.inbox, outbox_tests.smtp, outbox_tests.mailing


def test_a_romanian_client_of_leasing_gets_romanian_mails_over_smtp(mailing: Team, smtp: Server,
                                                                      inbox: Inbox) -> None:
    anna = mailing.as_("anna")
    lead = anna.leads.add(process="leasing", name="Ioana Popescu", email="ioana.popescu@example.ro",
                          phone="+40 721 000 111", company="Popescu Transport SRL")
    assert anna.clients.set_language(lead["client_id"], "ro")["language"] == "ro"
    anna.complete_task(lead["id"], "record_contact")
    anna.advance(lead["id"])  # first_contact: the welcome
    for task in ("call_client", "book_meeting"):
        anna.complete_task(lead["id"], task)
    anna.advance(lead["id"])  # collect_requirements: the documents it needs (its reminder waits three days)
    assert mailing.admin.run_due()["sent"] == 2
    welcome, documents = inbox.received
    assert welcome.rcpt_tos == documents.rcpt_tos == ["ioana.popescu@example.ro"]
    subject = "Vă mulțumim pentru solicitare, Ioana Popescu"
    assert str(welcome.message["Subject"]) == subject
    assert welcome.message.get_content().startswith("Bună ziua,\n\nvă mulțumim pentru solicitare.")
    assert "Consultantul dumneavoastră este anna (anna@example.pl)." in welcome.message.get_content()
    head = welcome.raw.split(b"\r\n\r\n")[0].replace(b"\r\n ", b" ")  # unfolded
    assert head.isascii()
    (line,) = [h for h in head.split(b"\r\n") if h.startswith(b"Subject: ")]
    assert b"=?utf-8?" in line  # RFC 2047
    assert str(make_header(decode_header(line.decode("ascii").removeprefix("Subject: ")))) == subject
    assert str(documents.message["Subject"]) == "Documentele de care avem nevoie"
    body = documents.message.get_content()
    assert body.startswith("Bună ziua, Ioana Popescu,\n\npentru a vă pregăti oferta avem nevoie de câteva documente")
    assert body.endswith("Cu stimă,\nanna\nBiuro Sprzedaży\n")
    sent = {m["template"]: m["state"] for m in mailing.admin.list_outbox(lead_id=lead["id"])}
    assert sent == {"welcome": "sent", "documents_request": "sent", "documents_reminder": "queued"}
