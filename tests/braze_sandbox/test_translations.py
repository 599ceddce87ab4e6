"""GET translations of email templates and Content Blocks (Braze's early-access translation
endpoints, _docs/_api/endpoints/translations/)."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from braze_sandbox.app import Sandbox

pytestmark = pytest.mark.usefixtures("unlimited")

SPANISH = {
    "locale": {
        "uuid": "c7c12345-te35-1234-5678-abcdefa99r3f",
        "name": "es-MX",
        "country": "MX",
        "language": "es",
        "locale_key": "es-mx",
    },
    "translation_map": {"greeting": "¡Hola!"},
}


def test_a_block_with_translations_answers_them_by_locale(client: TestClient) -> None:
    block_id = str(
        client.get("/content_blocks/list").json()["content_blocks"][0]["content_block_id"]
    )
    stored = client.put(
        "/_sandbox/translations",
        json={"kind": "content_block", "id": block_id, "translations": [SPANISH]},
    )
    assert stored.status_code == 200

    answer = client.get("/content_blocks/translations", params={"content_block_id": block_id})
    by_locale = client.get(
        "/content_blocks/translations",
        params={"content_block_id": block_id, "locale_id": "no-such-locale"},
    )

    assert answer.status_code == 200
    assert answer.json() == {"translations": [SPANISH]}
    assert by_locale.status_code == 400


def test_a_template_without_translations_is_not_multi_language(client: TestClient) -> None:
    templates = client.get("/templates/email/list").json()["templates"]
    template_id = templates[0]["email_template_id"]

    answer = client.get("/templates/email/translations/", params={"template_id": template_id})

    assert answer.status_code == 400
    assert answer.json() == {
        "errors": [{"message": "This message does not support multi-language."}]
    }


def test_an_unknown_template_is_refused(client: TestClient) -> None:
    answer = client.get("/templates/email/translations/", params={"template_id": "nope"})

    assert answer.status_code == 400
    assert "invalid" in answer.json()["message"]


def test_the_translation_endpoints_have_their_own_limit_group(sandbox: Sandbox) -> None:
    assert sandbox.config.limits["translations"].limit == 250_000
