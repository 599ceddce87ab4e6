"""Each kind of content is served whole by its spec: the shared screens and the propose
service take every name, URL and rule they need from it."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from console.roles import Role
from templates_app.forms import ContentForm
from templates_app.kinds import KINDS, ContentKind
from templates_app.services import content_propose
from tests.fixtures.sandbox import SandboxHandle

EACH_KIND = pytest.mark.parametrize("kind", KINDS.values(), ids=lambda kind: kind.key)


@EACH_KIND
def test_a_kinds_urls_live_under_its_path_and_name_its_id(kind: ContentKind) -> None:
    assert reverse(kind.list_url) == f"/content/{kind.path}/"
    assert reverse(kind.create_url) == f"/content/{kind.path}/new/"
    item = {kind.id_param: "abc"}
    assert reverse(kind.detail_url, kwargs=item) == f"/content/{kind.path}/abc/"
    assert reverse(kind.edit_url, kwargs=item) == f"/content/{kind.path}/abc/edit/"


@EACH_KIND
def test_a_kinds_form_edits_its_name_and_every_html_field_it_proposes(kind: ContentKind) -> None:
    assert issubclass(kind.form, ContentForm)
    fields = kind.form.base_fields
    data = {name: "" for name in fields} | {kind.name_field: "spring"}
    payload = kind.payload(data)
    assert payload[kind.name_field] == "spring"
    for field, _label in kind.html_fields:
        assert field in fields
        assert field in payload


@EACH_KIND
def test_the_shared_screens_show_each_kinds_labels_and_live_previews(
    kind: ContentKind, braze: SandboxHandle, client_for: Callable[[Role | None], Client]
) -> None:
    client = client_for(Role.EDITOR)
    listed = client.get(reverse(kind.list_url)).content.decode()
    assert f"<h1>{kind.plural}</h1>" in listed
    assert f"New {kind.noun}</a>" in listed
    form = client.get(reverse(kind.create_url)).content.decode()
    assert f"<h1>New {kind.noun}</h1>" in form
    for field, _label in kind.html_fields:
        assert f'id="preview-{field}"' in form


@pytest.mark.parametrize(
    ("key", "data", "identifier", "title"),
    [
        (
            "email_template",
            {"template_name": " Spring ", "subject": "Hi", "body": "<p>Hi</p>"},
            "new:",  # template names need not be unique: a token until Braze assigns an id
            "Create email template Spring",
        ),
        (
            "content_block",
            {"name": "spring", "content": "<p>Hi</p>"},
            "name:spring",
            "Create Content Block spring",
        ),
        (
            "preference_center",
            {"name": "spring", "preference_center_page_html": "", "confirmation_page_html": ""},
            "name:spring",
            "Create preference center spring",
        ),
    ],
)
def test_a_create_is_proposed_under_the_kinds_identifier_rule(
    editor: User, key: str, data: dict[str, str], identifier: str, title: str
) -> None:
    cr = content_propose(
        actor=editor, kind=KINDS[key], braze_id=None, data=data, base_snapshot={"ignored": 1}
    )
    assert (cr.resource_type, cr.action, cr.title) == (key, "create", title)
    assert cr.identifier.startswith(identifier)
    assert cr.base_snapshot is None
    assert cr.payload == KINDS[key].payload(data)


def test_an_edit_is_proposed_under_the_braze_id_against_the_base(editor: User) -> None:
    base = {"name": "spring", "content": "<p>Old</p>"}
    cr = content_propose(
        actor=editor,
        kind=KINDS["content_block"],
        braze_id="block-1",
        data={"name": "spring", "content": "<p>New</p>", "state": "draft"},
        base_snapshot=base,
    )
    assert (cr.identifier, cr.action, cr.title) == (
        "block-1",
        "update",
        "Edit Content Block spring",
    )
    assert cr.base_snapshot == base
    assert cr.payload["state"] == "draft"
