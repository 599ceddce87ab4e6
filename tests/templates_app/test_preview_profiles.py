"""Preview profiles: made-up people Editors keep to preview content as."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from console.audit.models import AuditEntry
from console.roles import Role
from templates_app.models import PreviewProfile
from templates_app.services import DEMO_PROFILES, preview_profile_save
from tests.factories import user_with_role

ANA = {
    "name": "Ana",
    "attributes": json.dumps({"first_name": "Ana", "custom_attributes": {"plan": "gold"}}),
    "language": "pt",
    "time_zone": "America/Sao_Paulo",
}


def _saved(name: str = "Ana") -> PreviewProfile:
    return preview_profile_save(
        actor=user_with_role(Role.EDITOR),
        profile=None,
        data={"name": name, "attributes": {"first_name": name}, "language": "", "time_zone": ""},
    )


def test_an_editor_creates_a_profile_and_it_is_audited(
    client_for: Callable[[Role | None], Client],
) -> None:
    response = client_for(Role.EDITOR).post(reverse("templates_app:preview_profile_create"), ANA)

    assert response.status_code == 302
    profile = PreviewProfile.objects.get(name="Ana")
    assert profile.attributes == {"first_name": "Ana", "custom_attributes": {"plan": "gold"}}
    assert (profile.language, profile.time_zone) == ("pt", "America/Sao_Paulo")
    entry = AuditEntry.objects.get(action="preview_profile.create")
    assert entry.resource_id == str(profile.pk)
    assert entry.data["name"] == "Ana"


def test_an_edit_is_audited_with_the_fields_it_changed(
    client_for: Callable[[Role | None], Client],
) -> None:
    profile = _saved()

    client_for(Role.EDITOR).post(
        reverse("templates_app:preview_profile_edit", args=[profile.pk]),
        {**ANA, "attributes": json.dumps({"first_name": "Ana"})},
    )

    entry = AuditEntry.objects.get(action="preview_profile.update")
    assert entry.data["changed"] == ["language", "time_zone"]


def test_the_form_refuses_attributes_that_are_not_one_json_object(
    client_for: Callable[[Role | None], Client],
) -> None:
    client = client_for(Role.EDITOR)
    url = reverse("templates_app:preview_profile_create")

    not_json = client.post(url, {**ANA, "attributes": "{first_name: Ana"})
    a_list = client.post(url, {**ANA, "attributes": "[1, 2]"})

    assert "This is not JSON" in not_json.content.decode()
    assert "Attributes are one JSON object" in a_list.content.decode()
    assert not PreviewProfile.objects.exists()


def test_the_form_refuses_an_unknown_time_zone_and_a_taken_name(
    client_for: Callable[[Role | None], Client],
) -> None:
    _saved("Ana")

    response = client_for(Role.EDITOR).post(
        reverse("templates_app:preview_profile_create"), {**ANA, "time_zone": "Mars/Olympus"}
    )

    body = response.content.decode()
    assert "Mars/Olympus is not a time zone name" in body
    assert "Another profile has this name." in body
    assert PreviewProfile.objects.count() == 1


def test_an_editor_deletes_a_profile_and_it_is_audited(
    client_for: Callable[[Role | None], Client],
) -> None:
    profile = _saved()

    client_for(Role.EDITOR).post(reverse("templates_app:preview_profile_delete", args=[profile.pk]))

    assert not PreviewProfile.objects.exists()
    assert AuditEntry.objects.get(action="preview_profile.delete").data == {"name": "Ana"}


def test_a_viewer_sees_the_profiles_but_cannot_change_them(
    client_for: Callable[[Role | None], Client],
) -> None:
    profile = _saved()
    client = client_for(Role.VIEWER)

    listing = client.get(reverse("templates_app:preview_profiles"))
    edit = client.post(reverse("templates_app:preview_profile_edit", args=[profile.pk]), ANA)

    assert "Ana" in listing.content.decode()
    assert reverse("templates_app:preview_profile_edit", args=[profile.pk]) not in (
        listing.content.decode()
    )
    assert edit.status_code == 403
    assert PreviewProfile.objects.get().attributes == {"first_name": "Ana"}


def test_the_seed_command_creates_the_demo_profiles_once(db: None) -> None:
    call_command("seed_preview_profiles")
    call_command("seed_preview_profiles")

    names = set(PreviewProfile.objects.values_list("name", flat=True))
    assert names == {demo["name"] for demo in DEMO_PROFILES}
    assert AuditEntry.objects.filter(action="preview_profile.create").count() == len(DEMO_PROFILES)


def test_an_editor_saves_connected_content_samples_and_previews_use_them(
    client_for: Callable[[Role | None], Client],
) -> None:
    client = client_for(Role.EDITOR)
    samples = {"https://api.example.com/users/*": {"tier": "gold"}}

    saved = client.post(reverse("templates_app:preview_settings"), {"samples": json.dumps(samples)})
    preview = client.post(
        reverse("templates_app:preview_as"),
        {
            "source": "content",
            "content": "{% connected_content https://api.example.com/users/1 :save r %}{{r.tier}}",
        },
    )

    assert saved.status_code == 302
    frame = re.search(r'sandbox src="([^"]+)"', preview.content.decode())
    assert frame is not None
    assert client.get(frame.group(1)).content.decode() == "gold"
    assert "https://api.example.com/users/1" in preview.content.decode()
    entry = AuditEntry.objects.get(action="preview_settings.update")
    assert entry.data["added"] == ["https://api.example.com/users/*"]


def test_samples_must_be_one_json_object(client_for: Callable[[Role | None], Client]) -> None:
    response = client_for(Role.EDITOR).post(
        reverse("templates_app:preview_settings"), {"samples": '["https://x/*"]'}
    )

    assert "Samples are one JSON object" in response.content.decode()
    assert not AuditEntry.objects.filter(action="preview_settings.update").exists()
