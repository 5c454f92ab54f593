"""Search (``leadflow find``, ``engine.search``) and phone numbers in E.164, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from engine import search, store
from engine.errors import InvalidInputError, PermissionDenied
from engine.rules import PhoneError, check_phone
from tests.conftest import Team, js, refused, snapshot
from tests.test_rebuild import assert_rebuilds

PV = "photovoltaics"


def names(hits: list[Any]) -> list[str]:
    return [h["name"] for h in hits]


# -- folding -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "folded"), [
    ("Łukasz Żółć", "lukasz zolc"),
    ("Ștefan Ţăran", "stefan taran"),  # comma below
    ("Ştefan Ţăran", "stefan taran"),  # cedilla
    ("Жанна Ёлкина", "жанна елкина"),  # Cyrillic stays Cyrillic, case-folded
    ("Йошкар-Ола", "йошкар ола"),  # й keeps its breve: it is a letter of its own
    ("  O'Brien & Søn, GmbH  ", "o brien son gmbh"),
    ("STRASSE straße", "strasse strasse"),
])
def test_fold_forgets_case_and_latin_diacritics_but_keeps_other_scripts(text: str, folded: str) -> None:
    assert search.fold(text) == folded


@given(st.text(max_size=60))
def test_folding_is_idempotent(text: str) -> None:
    assert search.fold(search.fold(text)) == search.fold(text)


@given(st.text(alphabet=st.characters(categories=("L", "N", "Zs")), min_size=1, max_size=40))
def test_every_name_finds_itself_by_any_prefix_of_its_folded_form(name: str) -> None:
    search_name, key = search.client_search_columns(name, None, None, None, None)
    for end in range(1, len(search_name) + 1):
        prefix = search_name[:end].rstrip()
        if prefix:
            assert search_name.startswith(search.fold(prefix))
            assert search.fold(prefix) in key


# -- phones --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "region", "e164"), [
    ("601 222 333", None, "+48601222333"),
    ("601-222-333", "PL", "+48601222333"),
    ("+48 (601) 222-333", "RO", "+48601222333"),
    ("0048 601 222 333", None, "+48601222333"),
    ("0721 234 567", "RO", "+40721234567"),
    ("+40 21 312 3456", None, "+40213123456"),
    ("8 (912) 345-67-89", "RU", "+79123456789"),
    ("+7 495 123-45-67", None, "+74951234567"),
])
def test_phones_are_stored_in_e164_national_ones_in_the_region(text: str, region: str | None, e164: str) -> None:
    assert check_phone(text, region) == e164


@pytest.mark.parametrize("text", ["123", "+48 601 222", "+999 123 456 789", "0721 234 567"])
def test_an_invalid_phone_is_refused_with_the_reason(text: str) -> None:
    with pytest.raises(PhoneError, match="is not a"):
        check_phone(text)  # PL: 0721... is a Romanian mobile, no Polish number


def test_the_installations_region_reads_national_numbers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEADFLOW_PHONE_REGION", "RO")
    assert check_phone("0721 234 567") == "+40721234567"
    assert check_phone("0721 234 567", "RU") != "+40721234567" if _valid("0721 234 567", "RU") else True


def _valid(text: str, region: str) -> bool:
    try:
        check_phone(text, region)
    except PhoneError:
        return False
    return True


# -- the search ----------------------------------------------------------------------------------------------

@pytest.fixture
def floor(team: Team) -> Team:
    anna, ioana, marta = team.as_("anna"), team.as_("ioana"), team.as_("marta")
    anna.leads.add(process=PV, name="Łukasz Żółć", phone="601 222 333", email="lukasz@example.pl",
                   company="Żółć Solar sp. z o.o.", tax_id="PL 525-000-11-22")
    anna.leads.add(process=PV, name="Ștefan Popescu", phone="+40 721 234 567")
    anna.leads.add(process=PV, name="Stefania Lis")
    ioana.leads.add(process=PV, name="Ştefan Ionescu", phone="+40 722 000 111")
    marta.leads.add(process=PV, name="Жанна Иванова", phone="+7 912 345 67 89", owner="piotr")
    anna.leads.add(process=PV, name="Anna Kowalska-Stefańska")
    return team


def test_find_forgives_diacritics_and_case_in_three_languages(floor: Team) -> None:
    admin = floor.admin
    assert names(admin.search.find("zolc")) == ["Łukasz Żółć"]
    assert set(names(admin.search.find("stefan"))) == {"Ștefan Popescu", "Ştefan Ionescu", "Stefania Lis",
                                                       "Anna Kowalska-Stefańska"}
    assert names(admin.search.find("жанна")) == ["Жанна Иванова"]
    assert names(admin.search.find("ЖАННА")) == ["Жанна Иванова"]


def test_hits_are_ranked_exact_then_prefix_then_partial(floor: Team) -> None:
    order = {"exact": 0, "prefix": 1, "partial": 2}
    hits = floor.admin.search.find("stefan")
    assert [h["match"] for h in hits] == ["prefix"] * 4  # a name's or a word's start ("Kowalska-Stefańska")
    exact = floor.admin.search.find("stefania lis")
    assert exact[0]["name"] == "Stefania Lis" and exact[0]["match"] == "exact"
    mixed = floor.admin.search.find("popescu")
    assert [(h["name"], h["match"]) for h in mixed] == [("Ștefan Popescu", "prefix")]
    inner = floor.admin.search.find("tefan")
    assert {h["match"] for h in inner} == {"partial"} and len(inner) == 4
    ranked = floor.admin.search.find("stefania")
    assert [order[h["match"]] for h in ranked] == sorted(order[h["match"]] for h in ranked)


def test_a_long_text_found_through_its_rarest_word_gives_the_same_hits_as_the_whole_text(
        floor: Team, monkeypatch: pytest.MonkeyPatch) -> None:
    """A long text's partial matches are read through one rare word where there is a trigram index
    (``_anchored_matches``): the same clients, ranked the same, as the text's own trigram query, whether the word
    matches few clients or too many."""
    from engine.services import search as service

    at = dt.datetime(2026, 1, 5, 9, 0)
    with floor.admin.db.begin() as conn:
        ids = store.reserve_ids(conn, store.clients, 60)
        created = store.driver_value(conn, store.clients.c.created_at, at)
        store.insert_clients(conn, [store.client_row(
            client_id, name=f"{'Grzegorz' if i % 2 else 'Jan'} Brzęczyszczykiewicz {4700 + i % 15}",
            company="Brzęczyszczykiewicz 4711 Solar" if i % 7 == 0 else None, email=None, phone=None, tax_id=None,
            created_at=created) for i, client_id in enumerate(ids)])
    texts = ["Grzegorz Brzęczyszczykiewicz 4711", "brzeczyszczykiewicz 4711", "czykiewicz 471", "jan brz",
             "Brzęczyszczykiewicz 4711 Solar", "zolc solar"]
    used: list[bool] = []
    real_limit = service.ANCHOR_CANDIDATES
    real = service._anchored_matches

    def spied(conn: Any, text: str) -> list[int] | None:
        found = real(conn, text)
        used.append(found is not None)
        return found

    monkeypatch.setattr(service, "_anchored_matches", spied)
    for limit in (3, 20, 100):
        anchored = {t: floor.admin.search.find(t, limit=limit) for t in texts}
        monkeypatch.setattr(service, "ANCHOR_CANDIDATES", 0)  # every anchor gives up: the whole text's query
        whole = {t: floor.admin.search.find(t, limit=limit) for t in texts}
        monkeypatch.setattr(service, "ANCHOR_CANDIDATES", real_limit)
        assert anchored == whole
    assert any(used)  # the anchor did answer (SQLite's FTS5 table, PostgreSQL's pg_trgm index)
    assert [h["match"] for h in anchored["Brzęczyszczykiewicz 4711 Solar"]][:1] == ["exact"]  # the company's
    assert len(anchored["brzeczyszczykiewicz 4711"]) > 4


def test_postgresql_checks_an_anchor_words_matches_in_sql_and_takes_ten_times_as_many(
        floor: Team, monkeypatch: pytest.MonkeyPatch) -> None:
    """On PostgreSQL the anchor word's matches are checked against the whole text by the database
    (``_anchored_in_sql``), so a word matching up to ten times ``ANCHOR_CANDIDATES`` still answers; SQLite gives up
    beyond ``ANCHOR_CANDIDATES``. Either way the hits are the whole text's."""
    from engine.services import search as service

    with floor.admin.db.begin() as conn:
        ids = store.reserve_ids(conn, store.clients, 30)
        created = store.driver_value(conn, store.clients.c.created_at, dt.datetime(2026, 1, 5, 9, 0))
        store.insert_clients(conn, [store.client_row(
            client_id, name=f"{'Ewa' if i % 3 else 'Jan'} Kowalczyk 58{i:02d}", company=None, email=None, phone=None,
            tax_id=None, created_at=created) for i, client_id in enumerate(ids)])
        postgres = conn.dialect.name == "postgresql"
    whole = {h["client_id"] for h in floor.admin.search.find("jan kowalczyk 58", limit=100)}
    monkeypatch.setattr(service, "ANCHOR_CANDIDATES", 10)  # "kowalczyk" (the longest word) matches 30
    with floor.admin.db.connect() as conn:
        anchored = service._anchored_matches(conn, "jan kowalczyk 58")
    if postgres:
        assert anchored is not None and set(anchored) == whole and len(whole) == 10
    else:
        assert anchored is None
    assert {h["client_id"] for h in floor.admin.search.find("jan kowalczyk 58", limit=100)} == whole


def test_find_by_phone_in_any_format_email_tax_id_company_and_lead_id(floor: Team) -> None:
    admin = floor.admin
    for text in ("601-222-333", "+48 601 222 333", "0048601222333", "601222333"):
        (hit,) = admin.search.find(text)
        assert hit["name"] == "Łukasz Żółć" and hit["phone"] == "+48601222333", text
    assert admin.search.find("601-222-333")[0]["match"] == "exact"
    assert names(admin.search.find("lukasz@example.pl")) == ["Łukasz Żółć"]
    assert names(admin.search.find("525-000")) == ["Łukasz Żółć"]
    assert names(admin.search.find("zolc solar")) == ["Łukasz Żółć"]
    lead_id = admin.leads.list(search="Жанна")[0]["id"]
    (hit,) = [h for h in admin.search.find(str(lead_id)) if h["matched"] == "lead"]
    assert hit["lead_id"] == lead_id and hit["match"] == "exact"


def test_each_hit_shows_its_open_lead_stage_owner_and_light(floor: Team) -> None:
    (hit,) = floor.admin.search.find("zolc")
    assert hit["lead_id"] is not None and hit["status"] == "open" and hit["stage"] == "register_lead"
    assert hit["owner"] == "anna" and hit["light"] in ("green", "yellow", "red")


def test_a_salesperson_never_finds_a_colleagues_client(floor: Team) -> None:
    anna, ioana, marta, radu = (floor.as_(n) for n in ("anna", "ioana", "marta", "radu"))
    assert "Ştefan Ionescu" not in names(anna.search.find("stefan"))
    assert names(ioana.search.find("stefan")) == ["Ştefan Ionescu"]
    assert anna.search.find("жанна") == []  # piotr's, in anna's own team
    assert names(marta.search.find("жанна")) == ["Жанна Иванова"]  # her team's
    assert radu.search.find("zolc") == []  # another team's manager
    assert anna.leads.list(search="stefan") and all(r["owner"] == "anna" for r in anna.leads.list(search="stefan"))
    assert [r["name"] for r in ioana.leads.list(search="zolc")] == []


@pytest.mark.parametrize(("text", "message"), [
    ("", "empty"), ("   ", "empty"), ("x" * 201, "longer than 200"), ("ab\x1bc", "control characters"),
    ("---", "no letters or digits"),
])
def test_bad_search_text_is_refused_clearly(floor: Team, text: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        floor.admin.search.find(text)
    with pytest.raises(InvalidInputError, match=message):
        floor.admin.leads.list(search=text)


def test_the_limit_is_checked_and_kept(floor: Team) -> None:
    assert len(floor.admin.search.find("stefan", limit=2)) == 2
    with pytest.raises(InvalidInputError, match="from 1 to 500"):
        floor.admin.search.find("stefan", limit=0)


def test_the_search_columns_follow_every_client_written_and_an_import(floor: Team, tmp_path: Any) -> None:
    csv = tmp_path / "in.csv"
    csv.write_text("name,phone\nGrzegorz Brzęczyszczykiewicz,+48 602 111 222\nDoina Țurcanu,0721 999 888\n",
                   encoding="utf-8")
    report = floor.as_("marta").intake.import_csv(csv, process=PV)
    assert report["status"] == "imported", report
    assert names(floor.admin.search.find("brzeczy")) == ["Grzegorz Brzęczyszczykiewicz"]
    assert floor.admin.search.find("602 111 222")[0]["phone"] == "+48602111222"
    with floor.admin.db.connect() as conn:
        bad = [r for r in conn.execute(sa.select(store.clients)).mappings()
               if (r["search_name"], r["search_key"]) != search.client_search_columns(
                   r["name"], r["company"], r["email"], r["phone"], r["tax_id"])]
    assert bad == []


def test_an_import_refuses_an_invalid_phone_with_the_reason(floor: Team, tmp_path: Any) -> None:
    csv = tmp_path / "in.csv"
    csv.write_text("name,phone\nJan Bad,12345\n", encoding="utf-8")
    report = floor.as_("marta").intake.import_csv(csv, process=PV)
    assert "not a valid number" in str(report)


def test_a_lead_with_a_visible_clients_phone_joins_that_client(floor: Team) -> None:
    anna = floor.as_("anna")
    first = anna.leads.list(search="zolc")[0]
    again = anna.leads.add(process=PV, name="Łukasz Żółć", phone="+48 601-222-333")
    assert again["client_id"] == first["client_id"]


def test_a_lead_with_an_invisible_clients_phone_gets_a_new_client_and_records_the_duplicate(floor: Team) -> None:
    ioana = floor.as_("ioana")
    theirs = floor.admin.leads.list(search="zolc")[0]
    lead = ioana.leads.add(process=PV, name="Lukasz Zolc", phone="601 222 333")
    assert lead["client_id"] != theirs["client_id"]
    created = ioana.leads.history(lead["id"])[0]
    assert created["data"]["possible_duplicate_of"] == theirs["client_id"]
    with pytest.raises(PermissionDenied):
        ioana.clients.get(theirs["client_id"])
    assert_rebuilds(floor, lead["id"])


def test_the_cli_find_json_and_lead_list_search(floor: Team) -> None:
    hits = js(floor.url, "anna", ["find", "ZÓŁĆ", "--json"])
    assert [h["name"] for h in hits] == ["Łukasz Żółć"]
    rows = js(floor.url, "anna", ["lead", "list", "--name", "stefan", "--json"])
    assert {r["name"] for r in rows} == {"Ștefan Popescu", "Stefania Lis", "Anna Kowalska-Stefańska"}
    message = refused(floor.url, "anna", ["find", "ab\x01"])
    assert "control characters" in message


def test_a_lead_add_with_an_invalid_phone_is_refused_and_changes_nothing(floor: Team) -> None:
    before = len(floor.admin.leads.list())
    message = refused(floor.url, "anna", ["lead", "add", "--process", PV, "--name", "X", "--phone", "601 222"])
    assert "phone '601 222' is not a valid number" in message
    assert len(floor.admin.leads.list()) == before


# -- one client, one person: duplicates and merging ---------------------------------------------------------

@pytest.fixture
def twins(team: Team) -> tuple[Team, dict[str, Any], dict[str, Any]]:
    """The same person twice: anna's client (with a call logged as a report) and piotr's, same phone."""
    anna, piotr, marta = team.as_("anna"), team.as_("piotr"), team.as_("marta")
    first = anna.leads.add(process=PV, name="Łukasz Żółć", phone="601 222 333")
    anna.leads.complete_task(first["id"], "record_contact", note="called")
    second = piotr.leads.add(process=PV, name="Lukasz Zolc", phone="+48 601-222-333", email="lz@example.pl",
                             tax_id="5250001122")
    piotr.recovery.report(second["id"], "left a message")
    assert second["client_id"] != first["client_id"]  # piotr may not see anna's client
    assert marta.clients.duplicates()  # the manager sees them
    return team, first, second


def test_client_duplicates_lists_same_phone_and_same_folded_name(twins: Any) -> None:
    team, first, second = twins
    groups = team.as_("marta").clients.duplicates()
    by_reason = {g["reason"]: g for g in groups}
    assert {c["id"] for c in by_reason["phone"]["clients"]} == {first["client_id"], second["client_id"]}
    assert by_reason["phone"]["value"] == "+48601222333"
    assert {c["id"] for c in by_reason["name"]["clients"]} == {first["client_id"], second["client_id"]}
    assert team.as_("radu").clients.duplicates() == []  # another team's manager sees none of them
    with pytest.raises(PermissionDenied, match="only a manager or an admin"):
        team.as_("anna").clients.duplicates()


def test_client_merge_moves_leads_history_and_contacts_and_deletes_nothing(twins: Any) -> None:
    team, first, second = twins
    marta = team.as_("marta")
    keep, other = first["client_id"], second["client_id"]
    with team.admin.db.connect() as conn:
        events_before = conn.execute(sa.select(sa.func.count()).select_from(store.events)).scalar()
        clients_before = conn.execute(sa.select(sa.func.count()).select_from(store.clients)).scalar()
    merged = marta.clients.merge(keep, other)
    assert {lead["id"] for lead in merged["leads"]} == {first["id"], second["id"]}
    assert merged["email"] == "lz@example.pl" and merged["tax_id"] == "5250001122"  # taken from the other
    assert merged["phone"] == "+48601222333" and merged["merged_into"] is None
    kinds = [e["kind"] for e in team.admin.leads.history(second["id"])]
    assert kinds[-1] == "client_merged" and "reported" in kinds  # its history moved with it
    assert team.admin.leads.history(second["id"])[-1]["data"] == {"from": other, "to": keep}
    shown_other = marta.clients.get(other)
    assert shown_other["merged_into"] == keep and [lead["id"] for lead in shown_other["leads"]] == [second["id"]]
    with team.admin.db.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(store.clients)).scalar() == clients_before
        assert conn.execute(sa.select(sa.func.count()).select_from(store.events)).scalar() == events_before + 1
    for lead_id in (first["id"], second["id"]):
        assert_rebuilds(team, lead_id)
    # merged: one person, found once, no longer a duplicate, and new leads join KEEP
    assert [h["client_id"] for h in team.admin.search.find("601 222 333")] == [keep]
    assert not [g for g in marta.clients.duplicates() if g["reason"] == "phone"]
    assert team.as_("piotr").leads.add(process=PV, name="Ł. Żółć", phone="601222333")["client_id"] == keep


def test_client_merge_refusals(twins: Any) -> None:
    team, first, second = twins
    keep, other = first["client_id"], second["client_id"]
    with pytest.raises(PermissionDenied, match="only a manager or an admin"):
        team.as_("anna").clients.merge(keep, other)
    with pytest.raises(PermissionDenied):
        team.as_("radu").clients.merge(keep, other)  # sees neither
    with pytest.raises(InvalidInputError, match="into itself"):
        team.as_("marta").clients.merge(keep, keep)
    team.as_("marta").clients.merge(keep, other)
    with pytest.raises(InvalidInputError, match="already merged into client"):
        team.as_("marta").clients.merge(other, keep)


def test_client_merge_and_duplicates_from_the_cli(twins: Any) -> None:
    team, first, second = twins
    groups = js(team.url, "marta", ["client", "duplicates", "--json"])
    assert {g["reason"] for g in groups} >= {"phone", "name"}
    refused(team.url, "anna", ["client", "merge", str(first["client_id"]), str(second["client_id"])])
    merged = js(team.url, "marta", ["client", "merge", str(first["client_id"]), str(second["client_id"]), "--json"])
    assert len(merged["leads"]) == 2


def test_an_import_never_gives_a_manager_another_teams_client(twins: Any, tmp_path: Any) -> None:
    team, first, _second = twins
    csv = tmp_path / "in.csv"
    csv.write_text("name,phone\nŁukasz Żółć,601 222 333\nŁukasz Żółć,601-222-333\n", encoding="utf-8")
    report = team.as_("radu").intake.import_csv(csv, process=PV)  # south: anna's client is not his to see
    # the first row: a new client beside anna's, recorded; the second joins the first row's client
    assert (report["imported"], report["new_clients"], report["repeated_clients"], report["possible_duplicates"]) == (
        2, 1, 1, 1), report
    radus = team.as_("radu").leads.list(search="601222333")
    assert len(radus) == 2 and len({r["client_id"] for r in radus}) == 1
    assert radus[0]["client_id"] != first["client_id"]
    created = team.admin.leads.history(radus[0]["id"])[0]
    assert created["data"]["possible_duplicate_of"] == first["client_id"]
    assert_rebuilds(team, radus[0]["id"])
    # north: hers to see, so her leads join it
    report = team.as_("marta").intake.import_csv(csv, process=PV, again=True)
    assert (report["new_clients"], report["possible_duplicates"]) == (0, 0), report


def test_a_web_form_with_an_invalid_phone_is_refused_with_the_reason(team: Team) -> None:
    from engine.intake import InquiryErrors

    team.admin.tokens.add("website", process=PV)
    before = snapshot(team.url)
    with pytest.raises(InquiryErrors) as caught:
        team.as_("website").intake.submit({"name": "Jan", "phone": "+40 12"}, process=PV)
    assert [(e.field, e.message.split(":")[0]) for e in caught.value.errors] == [
        ("phone", "phone '+40 12' is not a valid number of RO (+40)")]
    assert snapshot(team.url) == before
    made = team.as_("website").intake.submit({"name": "Jan", "phone": "601 222 333"}, process=PV)
    assert made["lead"]["phone"] == "+48601222333"
