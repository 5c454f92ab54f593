"""External ids of leads and clients, and companies with their contact persons (issue 18's B2B part, issue 20),
on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from engine.errors import InvalidInputError, NotFoundError, PermissionDenied
from tests.conftest import Team, js, ok, refused, snapshot

PV = "photovoltaics"


def test_a_lead_keeps_its_external_id_which_finds_it_and_is_unique(team: Team) -> None:
    anna = team.as_("anna")
    lead = anna.leads.add(process=PV, name="Jan Nowak", external_id=" crm-42 ")
    assert lead["external_id"] == "crm-42"
    assert anna.leads.find_external("crm-42") == lead["id"]
    assert anna.leads.get(lead["id"])["external_id"] == "crm-42"
    assert [r["external_id"] for r in anna.leads.list()] == ["crm-42"]
    assert anna.leads.rebuild(lead["id"]).comparable() == anna.leads.stored(lead["id"]).comparable()
    before = snapshot(team.url)
    with pytest.raises(InvalidInputError, match=f"external id 'crm-42' is already lead {lead['id']}'s"):
        anna.leads.add(process=PV, name="Ewa Lis", external_id="crm-42")
    with pytest.raises(InvalidInputError, match="external id 'crm-42' is already another lead's"):  # not theirs
        team.as_("piotr").leads.add(process=PV, name="Ewa Lis", external_id="crm-42")
    with pytest.raises(NotFoundError, match="no lead has the external id 'nope'"):
        anna.leads.find_external("nope")
    assert snapshot(team.url) == before
    plain = anna.leads.add(process=PV, name="Ewa Lis")
    assert plain["external_id"] is None


def test_a_company_is_one_client_with_its_people_and_its_leads(team: Team) -> None:
    anna, marta = team.as_("anna"), team.as_("marta")
    company = anna.clients.add_company("  Budimex   SA ", external_id="acc-7")
    assert (company["kind"], company["name"], company["external_id"], company["contacts"]) == (
        "company", "Budimex   SA", "acc-7", [])
    # a lead with a company and no person's name is the company's (found by its name, case and spaces aside)
    lead = anna.leads.add(process=PV, company="budimex sa", value="1000")
    other = anna.leads.add(process=PV, company="BUDIMEX  SA")
    assert lead["client_id"] == other["client_id"] == company["id"]
    shown = anna.clients.add_contact(company["id"], "Jan Kowalski", role="buyer", email="JAN@budimex.pl",
                                     phone="+48 601 200 300")
    shown = anna.clients.add_contact(company["id"], "Ewa Nowak", role="site manager")
    assert [(p["name"], p["role"], p["email"]) for p in shown["contacts"]] == [
        ("Jan Kowalski", "buyer", "JAN@budimex.pl"), ("Ewa Nowak", "site manager", None)]
    assert [x["id"] for x in shown["leads"]] == [lead["id"], other["id"]]
    before = snapshot(team.url)
    with pytest.raises(InvalidInputError, match=r"company .BUDIMEX sa. is already client"):
        marta.clients.add_company("BUDIMEX sa")
    with pytest.raises(InvalidInputError, match=r"external id 'acc-7' is already another client's"):
        marta.clients.add_company("Other", external_id="acc-7")
    with pytest.raises(InvalidInputError, match="a contact person needs a name"):
        anna.clients.add_contact(company["id"], "  ")
    with pytest.raises(InvalidInputError, match="e-mail"):
        anna.clients.add_contact(company["id"], "X", email="not-an-address")
    person = anna.leads.add(process=PV, name="Łukasz Żółć", company="Budimex SA")  # B2C as before
    with pytest.raises(InvalidInputError, match=f"client {person['client_id']} is a person, not a company"):
        anna.clients.add_contact(person["client_id"], "X")
    with pytest.raises(PermissionDenied):  # ioana (south) may not see the company's leads
        team.as_("ioana").clients.add_contact(company["id"], "Y")
    with pytest.raises(NotFoundError):
        anna.clients.add_contact(10_000, "Y")
    # the person's client is new and B2C as always
    after = {k: v for k, v in snapshot(team.url).items() if k not in ("leads", "lead_tasks", "events", "clients",
                                                                         "lead_stages", "lead_stays", "lead_spans",
                                                                         "stage_counts", "ownerships", "outbox")}
    assert after == {k: v for k, v in before.items() if k in after}
    assert anna.clients.get(person["client_id"])["kind"] == "person"


def test_the_cli_shows_a_lead_by_its_external_id_and_keeps_companies(team: Team) -> None:
    url = team.url
    ok(url, "anna", "lead add --process photovoltaics --name 'Jan Nowak' --external-id crm-9")
    shown = js(url, "anna", "lead show ext:crm-9 --json")
    assert shown["external_id"] == "crm-9"
    assert "Jan Nowak" in ok(url, "anna", "lead show ext:crm-9").output
    assert refused(url, "anna", "lead show ext:crm-10") == "Error: no lead has the external id 'crm-10'"
    company = js(url, "anna", "client company 'Orlen SA' --json")
    ok(url, "anna", "lead add --process photovoltaics --company 'orlen sa'")
    ok(url, "anna", f"client contact {company['id']} 'Anna Buyer' --role buyer --phone '+48 601 200 301'")
    text = ok(url, "anna", f"client show {company['id']}").output
    assert "Anna Buyer" in text and "company" in text
    assert refused(url, "anna", f"client contact {company['id']} ''") == "Error: a contact person needs a name"
