"""The web-form intake's refused values in the reader's language (docs/i18n.md, issue 17): each of a 422's
``errors[]`` has its ``message`` in the language the request asks for (``Accept-Language``; one leadflow does not
speak gives the form's process's language), its ``field``, ``message_id`` and ``params`` the same in every
language, on a real server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from engine import i18n
from tests.conftest import Team
from tests.server_fixtures import Served, serving

PV = "photovoltaics"
#: A form a person filled badly: no name, an unknown key, a wrong e-mail, a roof type that is not an option.
BAD_FORM = {"process": PV, "name": "", "colour": "red", "email": "not-an-address", "roof_type": "thatched"}
#: The first words of each error's message, by language, in the order of ``errors[]``.
EXPECTED = {
    "en": ["'colour' is not a lead attribute", "a lead needs the client's name", "e-mail 'not-an-address' is not",
           "field 'roof_type' (choice) must be one of"],
    "pl": ["„colour” nie jest atrybutem leada", "lead wymaga nazwy klienta", "e-mail 'not-an-address' nie jest",
           "pole „roof_type” (choice) musi być jednym z"],
    "ro": ["„colour” nu este un atribut al lead-ului", "un lead are nevoie de numele clientului",
           "e-mail 'not-an-address' nu este",
           "câmpul „roof_type” (choice) trebuie să fie unul dintre"],
    "ru": ["«colour» не является атрибутом лида", "лиду нужно имя клиента", "e-mail 'not-an-address' не является",
           "поле «roof_type» (choice) должно быть одним из"],
}


@pytest.fixture
def served(team: Team) -> Iterator[Served]:
    token = team.admin.add_token("website", process=PV)["token"]
    with serving(team.admin) as server:
        server.client.headers["Authorization"] = f"Bearer {token}"
        yield server


def refused(served: Served, accept: str | None) -> Any:
    headers = {"Accept-Language": accept} if accept is not None else {}
    answer = served.client.post("/v1/leads", data=BAD_FORM, headers=headers)
    assert answer.status_code == 422, answer.text
    return answer


@pytest.mark.parametrize("code", ["pl", "ro", "ru"])
def test_a_refused_form_names_its_fields_in_the_readers_language(served: Served, code: str) -> None:
    english, answer = refused(served, None), refused(served, f"{code}-{code.upper()},en;q=0.5")
    assert answer.headers["content-language"] == code
    errors = answer.json()["errors"]
    assert [e["field"] for e in errors] == ["colour", "name", "email", "roof_type"]
    for error, start in zip(errors, EXPECTED[code], strict=True):
        assert error["message"].startswith(start), error
    # the machine part is the same in every language; the message is the template filled in the reader's language
    machine = [{k: e[k] for k in ("field", "message_id", "params")} for e in errors]
    assert machine == [{k: e[k] for k in ("field", "message_id", "params")} for e in english.json()["errors"]]
    assert machine[1] == {"field": "name", "message_id": "a lead needs the client's name", "params": {}}
    assert machine[0]["params"]["key"] == "colour"
    for error in errors:
        assert error["message"] == i18n.message_text(error, code)
    assert answer.json()["detail"] == "; ".join(e["message"] for e in errors)
    assert answer.json()["error"] == english.json()["detail"]  # English for the 0.1 clients


def test_english_and_a_language_leadflow_does_not_speak(served: Served) -> None:
    english = refused(served, "en-GB")
    assert english.headers["content-language"] == "en"
    assert [e["message"][:len(s)] for e, s in zip(english.json()["errors"], EXPECTED["en"], strict=True)] == \
        EXPECTED["en"]
    # a browser asking only for German reads the form's process's language (photovoltaics: Polish)
    german = refused(served, "de-DE,de;q=0.9")
    assert german.headers["content-language"] == "pl"
    assert german.json()["errors"][1]["message"].startswith(EXPECTED["pl"][1])
