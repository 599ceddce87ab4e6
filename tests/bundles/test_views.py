"""The content-files screens: who may export, upload and read a bundle (checked on the
server), and an upload that is refused before anything is read or proposed."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from bundles.appliers import RESOURCE_TYPE
from bundles.archive import MAX_FILE_BYTES, content_zip
from bundles.selectors import workspace_files
from console.changes.models import ChangeRequest, ChangeState
from console.roles import Role
from console.workspaces import workspace_default
from tests.fixtures.sandbox import SandboxHandle

pytestmark = pytest.mark.django_db

READERS = [Role.VIEWER, Role.EDITOR, Role.REVIEWER, Role.AUDITOR, Role.ADMIN]


def _zip(files: dict[str, bytes]) -> io.BytesIO:
    upload = io.BytesIO(content_zip(files))
    upload.name = "content.zip"
    return upload


def _upload(client: Client, upload: io.BytesIO) -> Any:
    return client.post(
        reverse("bundles:import"), {"workspace": workspace_default().key, "tree": upload}
    )


@pytest.mark.parametrize("role", READERS)
def test_everyone_who_reads_content_downloads_the_same_tree_as_a_zip(
    braze: SandboxHandle, client_for: Callable[[Role | None], Client], role: Role
) -> None:
    response = client_for(role).get(reverse("bundles:export"))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    expected, _ = workspace_files(workspace=workspace_default())
    assert response.content == content_zip(expected)
    names = zipfile.ZipFile(io.BytesIO(response.content)).namelist()
    assert "content_blocks/greeting.liquid" in names


def test_a_person_without_a_role_neither_exports_nor_sees_the_page(
    client_for: Callable[[Role | None], Client],
) -> None:
    client = client_for(None)
    assert client.get(reverse("bundles:export")).status_code == 403
    assert client.get(reverse("bundles:files")).status_code == 403


@pytest.mark.parametrize("role", [Role.VIEWER, Role.REVIEWER, Role.AUDITOR, Role.ADMIN, None])
def test_only_editors_may_upload(
    braze: SandboxHandle, client_for: Callable[[Role | None], Client], role: Role | None
) -> None:
    files, _ = workspace_files(workspace=workspace_default())
    files["content_blocks/greeting.liquid"] = b"Changed"
    response = _upload(client_for(role), _zip(files))
    assert response.status_code == 403
    assert not ChangeRequest.objects.exists()
    if role is not None:
        page = client_for(role).get(reverse("bundles:files")).content.decode()
        assert "Download the files" in page
        assert 'enctype="multipart/form-data"' not in page


def test_an_upload_opens_a_draft_by_the_uploader_and_shows_its_parts(
    braze: SandboxHandle, client_for: Callable[[Role | None], Client]
) -> None:
    editor = client_for(Role.EDITOR)
    files, _ = workspace_files(workspace=workspace_default())
    files["content_blocks/greeting.liquid"] = b"Hello there,"

    response = editor.post(
        reverse("bundles:import"), {"workspace": workspace_default().key, "tree": _zip(files)}
    )

    cr = ChangeRequest.objects.get(resource_type=RESOURCE_TYPE)
    assert response.status_code == 302
    assert response["Location"] == reverse("bundles:review", args=[cr.pk])
    assert cr.state == ChangeState.DRAFT
    page = editor.get(response["Location"]).content.decode()
    assert "Update Content Block “greeting”" in page
    assert "Hello there," in page
    assert "Not applied yet." in page
    detail = editor.get(cr.get_absolute_url()).content.decode()
    assert "1. Update Content Block" in detail  # each part's outcome, on the request's page
    # The console never set this block's state, so Braze's update will publish it.
    assert "Content Block &quot;greeting&quot;: Braze will publish this block" in detail


def test_an_unchanged_upload_opens_nothing_and_says_so(
    braze: SandboxHandle, client_for: Callable[[Role | None], Client]
) -> None:
    files, _ = workspace_files(workspace=workspace_default())
    response = _upload(client_for(Role.EDITOR), _zip(files))
    assert response.status_code == 200
    assert "no change request was opened" in response.content.decode()
    assert not ChangeRequest.objects.exists()


def _raw_zip(members: dict[str, bytes]) -> io.BytesIO:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(zipfile.ZipInfo(name), data)
    buffer.seek(0)
    buffer.name = "content.zip"
    return buffer


@pytest.mark.parametrize(
    "member",
    ["../escape.json", "/etc/cron.d/job.json", "content_blocks/../../x.liquid", "a\\..\\b.json"],
)
def test_a_zip_reaching_outside_the_tree_is_refused_whole(
    braze: SandboxHandle, client_for: Callable[[Role | None], Client], member: str
) -> None:
    files, _ = workspace_files(workspace=workspace_default())
    files["content_blocks/greeting.liquid"] = b"Changed"
    response = _upload(client_for(Role.EDITOR), _raw_zip({**files, member: b"{}"}))

    assert response.status_code == 400
    assert "lies outside the tree; nothing was read" in response.content.decode()
    assert not ChangeRequest.objects.exists()


def test_malformed_files_are_listed_each_and_nothing_is_proposed(
    braze: SandboxHandle, client_for: Callable[[Role | None], Client]
) -> None:
    files, _ = workspace_files(workspace=workspace_default())
    files["content_blocks/greeting.liquid"] = b"Changed"
    files["content_blocks/greeting.json"] = json.dumps({"name": "greeting"}).encode()
    files["email_templates/Welcome.exe"] = b"MZ"
    response = _upload(client_for(Role.EDITOR), _raw_zip(files))

    page = response.content.decode()
    assert response.status_code == 400
    assert "email_templates/Welcome.exe: is not a kind of file the export writes" in page
    assert not ChangeRequest.objects.exists()
    files.pop("email_templates/Welcome.exe")
    response = _upload(client_for(Role.EDITOR), _raw_zip(files))
    page = response.content.decode()
    assert "content_blocks/greeting.json: lacks &quot;description&quot;, &quot;tags&quot;" in page
    assert not ChangeRequest.objects.exists()


def test_a_zip_whose_member_says_it_is_smaller_than_it_is_is_refused(
    braze: SandboxHandle, client_for: Callable[[Role | None], Client], settings: object
) -> None:
    files, _ = workspace_files(workspace=workspace_default())
    files["content_blocks/greeting.liquid"] = b"x" * (MAX_FILE_BYTES + 1)
    response = _upload(client_for(Role.EDITOR), _raw_zip(files))
    assert response.status_code == 400
    assert "content_blocks/greeting.liquid: is larger than" in response.content.decode()


def test_something_that_is_not_a_zip_is_refused(
    braze: SandboxHandle, client_for: Callable[[Role | None], Client]
) -> None:
    upload = io.BytesIO(b"not a zip")
    upload.name = "content.zip"
    response = _upload(client_for(Role.EDITOR), upload)
    assert response.status_code == 400
    assert "(upload): is not a zip file" in response.content.decode()


@pytest.mark.parametrize("role", [*READERS, None])
def test_a_bundles_page_opens_for_those_who_see_change_requests(
    braze: SandboxHandle, client_for: Callable[[Role | None], Client], role: Role | None
) -> None:
    files, _ = workspace_files(workspace=workspace_default())
    files["content_blocks/greeting.liquid"] = b"Changed"
    _upload(client_for(Role.EDITOR), _zip(files))
    cr = ChangeRequest.objects.get()

    response = client_for(role).get(reverse("bundles:review", args=[cr.pk]))

    # Viewers browse content but never change requests.
    expected = 403 if role in (None, Role.VIEWER) else 200
    assert response.status_code == expected
