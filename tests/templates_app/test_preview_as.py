"""Previewing content as a person: the edit form, content pages and the review page."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse

from console.roles import Role
from templates_app import kinds, services
from templates_app.models import PreviewProfile, ResourceType, VersionSource
from tests.factories import user_with_role
from tests.fixtures.sandbox import SandboxHandle

GREETING = "<p>Hello {{${first_name} | default: 'friend'}}</p>"


def _profile(name: str, attributes: dict[str, object]) -> PreviewProfile:
    return services.preview_profile_save(
        actor=user_with_role(Role.EDITOR),
        profile=None,
        data={"name": name, "attributes": attributes, "language": "", "time_zone": ""},
    )


def _frames(client: Client, body: str) -> list[str]:
    """What each sandboxed frame of a fragment or page shows."""
    urls = re.findall(r'<iframe class="preview-frame" sandbox src="([^"]+)"', body)
    return [client.get(url).content.decode() for url in urls]


def test_the_edit_form_previews_what_is_typed_as_the_chosen_profile(
    client_for: Callable[[Role | None], Client],
) -> None:
    ana = _profile("Ana", {"first_name": "Ana"})
    nameless = _profile("Nameless", {})
    client = client_for(Role.EDITOR)
    url = reverse("templates_app:preview_as")

    as_ana = client.post(url, {"source": "content", "content": GREETING, "profile": ana.pk})
    as_nameless = client.post(
        url, {"source": "content", "content": GREETING, "profile": nameless.pk}
    )

    assert _frames(client, as_ana.content.decode())[0] == "<p>Hello Ana</p>"
    assert _frames(client, as_nameless.content.decode())[0] == "<p>Hello friend</p>"
    assert "As Nameless" in as_nameless.content.decode()


def test_rendered_html_appears_only_inside_the_sandboxed_frames(
    client_for: Callable[[Role | None], Client],
) -> None:
    ana = _profile("Ana", {"first_name": "<script>alert(1)</script>"})
    client = client_for(Role.EDITOR)

    response = client.post(
        reverse("templates_app:preview_as"),
        {"source": "content", "content": "{{${first_name}}}", "profile": ana.pk},
    )

    body = response.content.decode()
    assert "<script>" not in body
    assert body.count(" sandbox ") == 2
    assert _frames(client, body)[0] == "<script>alert(1)</script>"


def test_an_aborted_message_and_warnings_are_said_in_words(
    client_for: Callable[[Role | None], Client],
) -> None:
    response = client_for(Role.EDITOR).post(
        reverse("templates_app:preview_as"),
        {
            "source": "content",
            "content": "{% if ${first_name} %}Hi{% else %}{% abort_message('no name') %}"
            "{% endif %}",
        },
    )
    marker = client_for(Role.EDITOR).post(
        reverse("templates_app:preview_as"),
        {"source": "content", "content": "{{ 'x' | pluralize }}{% promotion('spring') %}"},
    )

    assert "this message would not be sent to this person: no name" in response.content.decode()
    assert "<iframe" not in response.content.decode()
    assert "the filter pluralize is not previewed" in marker.content.decode()
    assert "{% promotion %} is not previewed" in marker.content.decode()


@pytest.mark.usefixtures("braze")
def test_the_edit_form_offers_the_saved_profiles(
    client_for: Callable[[Role | None], Client],
) -> None:
    _profile("Ana", {"first_name": "Ana"})

    response = client_for(Role.EDITOR).get(reverse("templates_app:content_block_create"))

    body = response.content.decode()
    assert 'hx-post="' + reverse("templates_app:preview_as") + '"' in body
    assert ">Ana</option>" in body


@pytest.mark.usefixtures("braze")
def test_a_content_page_previews_the_item_as_braze_holds_it(
    client_for: Callable[[Role | None], Client], braze: SandboxHandle
) -> None:
    ana = _profile("Ana", {"first_name": "Ana"})
    with braze.client() as http:
        blocks = http.get("/content_blocks/list").json()["content_blocks"]
    block_id = next(b["content_block_id"] for b in blocks if b["name"] == "greeting")
    braze.admin.edit_content_block(block_id, content=GREETING)
    client = client_for(Role.VIEWER)

    page = client.get(reverse("templates_app:content_block_detail", args=[block_id]))
    response = client.get(
        reverse("templates_app:preview_as_item", args=["content_block", block_id]),
        {"profile": ana.pk},
    )

    assert "Preview as" in page.content.decode()
    assert _frames(client, response.content.decode()) == ["<p>Hello Ana</p>"]


@pytest.mark.usefixtures("braze")
def test_a_content_pages_preview_as_is_a_page_without_htmx_and_the_frames_alone_with_it(
    client_for: Callable[[Role | None], Client], braze: SandboxHandle
) -> None:
    """The picker is a GET form: without JavaScript it opens the result as a page of its own
    (title, language, landmarks); htmx gets only the frames to put under the picker."""
    ana = _profile("Ana", {"first_name": "Ana"})
    with braze.client() as http:
        blocks = http.get("/content_blocks/list").json()["content_blocks"]
    block_id = next(b["content_block_id"] for b in blocks if b["name"] == "greeting")
    client = client_for(Role.VIEWER)
    url = reverse("templates_app:preview_as_item", args=["content_block", block_id])

    page = client.get(url, {"profile": ana.pk}).content.decode()
    fragment = client.get(url, {"profile": ana.pk}, headers={"HX-Request": "true"})

    assert '<html lang="en">' in page
    assert "<title>greeting as Ana" in page
    assert '<main id="main"' in page
    assert "<html" not in fragment.content.decode()
    assert _frames(client, page) == _frames(client, fragment.content.decode())


def test_blocks_included_render_from_the_content_history(
    client_for: Callable[[Role | None], Client],
) -> None:
    services.version_record(
        resource_type=ResourceType.CONTENT_BLOCK,
        braze_id="cb-footer",
        snapshot={"name": "footer", "content": "Bye {{${first_name}}}"},
        source=VersionSource.SYNCED,
    )
    ana = _profile("Ana", {"first_name": "Ana"})
    client = client_for(Role.EDITOR)

    response = client.post(
        reverse("templates_app:preview_as"),
        {"source": "body", "body": "Hi. {{content_blocks.${footer}}}", "profile": ana.pk},
    )

    assert _frames(client, response.content.decode()) == ["Hi. Bye Ana"]


def test_the_reviewer_sees_the_same_person_before_and_after_with_a_text_diff(
    client_for: Callable[[Role | None], Client],
) -> None:
    ana = _profile("Ana", {"first_name": "Ana"})
    cr = services.content_propose(
        actor=user_with_role(Role.EDITOR),
        kind=kinds.CONTENT_BLOCKS,
        braze_id="cb-1",
        data={"name": "greeting", "content": "<p>Welcome back, {{${first_name}}}</p>"},
        base_snapshot={"name": "greeting", "content": GREETING, "state": "active"},
    )
    client = client_for(Role.REVIEWER)

    page = client.get(reverse("templates_app:change_preview", args=[cr.pk]), {"profile": ana.pk})

    body = page.content.decode()
    assert "Content, as Ana" in body
    assert _frames(client, body)[-2:] == ["<p>Hello Ana</p>", "<p>Welcome back, Ana</p>"]
    assert "-<p>Hello Ana</p>" in body.replace("&lt;", "<").replace("&gt;", ">")
    assert "+<p>Welcome back, Ana</p>" in body.replace("&lt;", "<").replace("&gt;", ">")


@pytest.mark.usefixtures("braze")
def test_a_content_page_previews_translation_tags_in_the_profiles_language(
    client_for: Callable[[Role | None], Client], braze: SandboxHandle
) -> None:
    spanish = services.preview_profile_save(
        actor=user_with_role(Role.EDITOR),
        profile=None,
        data={
            "name": "Lucía",
            "attributes": {"first_name": "Lucía"},
            "language": "es",
            "time_zone": "",
        },
    )
    english = _profile("Ann", {"first_name": "Ann"})
    with braze.client() as http:
        blocks = http.get("/content_blocks/list").json()["content_blocks"]
    block_id = next(b["content_block_id"] for b in blocks if b["name"] == "greeting")
    braze.admin.edit_content_block(
        block_id, content="{% translation hi %}Hello, {{${first_name}}}{% endtranslation %}"
    )
    braze.admin.set_translations(
        "content_block",
        block_id,
        [
            {
                "locale": {"uuid": "u-es", "name": "es", "language": "es", "country": ""},
                "translation_map": {"hi": "Hola, {{${first_name}}}"},
            }
        ],
    )
    client = client_for(Role.VIEWER)
    url = reverse("templates_app:preview_as_item", args=["content_block", block_id])

    as_spanish = client.get(url, {"profile": spanish.pk})
    as_english = client.get(url, {"profile": english.pk})

    assert _frames(client, as_spanish.content.decode()) == ["Hola, Lucía"]
    assert _frames(client, as_english.content.decode()) == ["Hello, Ann"]
    assert "data-preview-warnings" not in as_spanish.content.decode()
