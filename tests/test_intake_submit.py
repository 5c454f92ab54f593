"""The HTTP intake's engine API on SQLite and PostgreSQL: tokens, ``submit_lead`` and the intake role."""

from __future__ import annotations

import pytest

from engine.errors import AuthenticationError, PermissionDenied
from engine.intake import InquiryErrors
from tests.conftest import Team, at_once, snapshot

PV = "photovoltaics"


def test_a_submitted_lead_is_added_by_its_source_to_the_same_client(team: Team) -> None:
    made = team.admin.add_token("website", process=PV)
    who = team.admin.authenticate(made["token"])
    assert who == {"id": made["id"], "source": "website", "process": PV, "read": False}
    site = team.as_("website")
    first = site.submit_lead({"name": "Ioana Popescu", "Telefon": "+40 721 000 111", "Budget": "45 000"},
                             process=who["process"])
    again = site.submit_lead({"name": "I. Popescu", "phone": "0040 (721) 000-111", "process": "mortgage"})
    assert (first["client_existed"], again["client_existed"]) == (False, True)
    assert again["lead"]["client_id"] == first["lead"]["client_id"]
    lead = first["lead"]
    assert (lead["owner"], lead["team"], lead["source"], lead["fields"]) == (None, None, "website",
                                                                              {"budget": "45000.00"})
    assert [(e["kind"], e["actor"]) for e in team.admin.history(lead["id"])] == [("created", "website")]
    with pytest.raises(PermissionDenied, match="may not advance lead"):
        site.advance(lead["id"])


def test_every_bad_value_is_reported_and_nothing_is_written(team: Team) -> None:
    team.admin.add_token("website", process=PV)
    before = snapshot(team.url)
    with pytest.raises(InquiryErrors) as refused:
        team.as_("website").submit_lead({"name": "Jan", "email": "x", "roof_type": "tiles", "owner": "anna",
                                         "fields": {"roof_area_m2": 0}}, process=PV)
    assert [(e.field, e.message) for e in refused.value.errors] == [
        ("owner", "the owner of a new lead is chosen by the assignment rules, not by a form"),
        ("email", "e-mail 'x' is not an address such as name@example.com"),
        ("roof_type", "field 'roof_type' (choice) must be one of: pitched, flat, ground; got 'tiles'"),
        ("fields.roof_area_m2", "field 'roof_area_m2' (number) must be at least 1, got 0"),
    ]
    assert snapshot(team.url) == before


def test_tokens_authenticate_without_writing_and_revoked_ones_fail(team: Team) -> None:
    made = team.admin.add_token("crm", read=True)
    before = snapshot(team.url)
    assert team.admin.authenticate(made["token"], read=True)["source"] == "crm"
    for bad, message in ((None, "no API token"), ("", "no API token"), ("lf_x", "the API token is not valid"),
                         (made["token"] + "x", "the API token is not valid")):
        with pytest.raises(AuthenticationError, match=message):
            team.admin.authenticate(bad)
    assert snapshot(team.url) == before
    team.admin.revoke_token(made["id"])
    with pytest.raises(AuthenticationError, match="unknown or revoked"):
        team.admin.authenticate(made["token"])
    plain = team.admin.add_token("website")
    with pytest.raises(PermissionDenied, match="may send leads but not read them"):
        team.admin.authenticate(plain["token"], read=True)
    assert [t["source"] for t in team.admin.list_tokens()] == ["crm", "website"]
    with pytest.raises(PermissionDenied, match="only an admin may"):
        team.as_("marta").list_tokens()


def test_the_same_person_posted_from_many_requests_at_once_is_one_client(team: Team) -> None:
    """Eight requests for one person at the same moment (a double-clicked form, a partner retrying): eight
    leads of ONE client, on PostgreSQL (requests run side by side) as on SQLite (writers take turns)."""
    team.admin.add_token("website", process=PV)
    results = at_once(team.url, "website", lambda site, i: site.submit_lead(
        {"name": "Łukasz Żółć", "email": f"Lukasz@Example.PL{' ' * i}", "phone": "+48 600 100 200"}, process=PV), 8)
    assert len({r["lead"]["id"] for r in results}) == 8
    assert len({r["lead"]["client_id"] for r in results}) == 1
    assert sorted(r["client_existed"] for r in results) == [False] + [True] * 7
