"""Bulk screens: upload, preview, submit for review, control, downloads."""

from collections.abc import Callable
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils.timezone import now

from catalog_bulk.models import BulkJob, JobState, ReadBackState
from catalogs.models import Catalog
from console.changes.models import ChangeRequest, ChangeState
from console.roles import Role
from tests.catalog_bulk.conftest import MakeJob

pytestmark = pytest.mark.django_db

type ClientFor = Callable[[Role | None], Client]


def _upload(client: Client, catalog: Catalog, content: bytes, **data: str) -> Any:
    url = reverse("catalog_bulk:upload", args=[catalog.name])
    return client.post(
        url, {"operation": "upsert", **data, "file": SimpleUploadedFile("items.csv", content)}
    )


def test_an_upload_is_checked_and_the_preview_shows_counts_samples_and_errors(
    client_for: ClientFor,
    catalog: Catalog,
    eager_celery: None,
    django_capture_on_commit_callbacks: Callable[..., object],
) -> None:
    client = client_for(Role.EDITOR)
    with django_capture_on_commit_callbacks(execute=True):  # type: ignore[attr-defined]
        response = _upload(
            client, catalog, b"id,name,price\nsku-2,Cup,6\nsku-3,Bowl,2\nbad id,x,1\n"
        )
    job = BulkJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("catalog_bulk:job", args=[catalog.name, job.pk])
    page = client.get(response["Location"]).content.decode()
    assert "Preview ready" in page
    assert "Submit 2 changes for review" in page
    assert "invalid-ids" in page  # the error rows, with the reason
    assert "sku-2" in page
    assert "sku-3" in page


def test_it_refuses_a_file_over_the_size_limit_and_keeps_the_choice(
    client_for: ClientFor, catalog: Catalog, settings: object
) -> None:
    settings.BULK_MAX_UPLOAD_BYTES = 10  # type: ignore[attr-defined]
    response = _upload(client_for(Role.EDITOR), catalog, b"id,name\nsku-9,x\n", operation="delete")
    assert response.status_code == 200
    page = response.content.decode()
    assert "larger than 0 MB" in page
    assert '<option value="delete" selected>' in page
    assert not BulkJob.objects.exists()


def test_the_error_csv_downloads_the_refused_rows(
    client_for: ClientFor, catalog: Catalog, make_job: MakeJob
) -> None:
    job = make_job(b"id,name,price\nsku-5,a,cheap\nsku-6,b,1\n")
    response = client_for(Role.VIEWER).get(
        reverse("catalog_bulk:errors", args=[catalog.name, job.pk])
    )
    body = b"".join(response.streaming_content).decode()  # type: ignore[attr-defined]
    assert body.splitlines()[0] == "id,name,price,_console_errors"
    assert body.splitlines()[1].startswith("sku-5,a,cheap,line 2: Column “price”")
    assert len(body.splitlines()) == 2


def test_submitting_opens_a_bulk_change_request_a_reviewer_sees_the_summary(
    client_for: ClientFor, catalog: Catalog, make_job: MakeJob
) -> None:
    job = make_job(b"id,name,price\nsku-2,Cup,6\nsku-3,Bowl,2\n")
    editor = client_for(Role.EDITOR)
    response = editor.post(reverse("catalog_bulk:propose", args=[catalog.name, job.pk]))
    assert response.status_code == 302
    job.refresh_from_db()
    cr = ChangeRequest.objects.get()
    assert (job.state, job.change_request_id) == (JobState.REVIEW, cr.pk)
    assert (cr.resource_type, cr.action) == ("catalog_bulk", "bulk")
    assert cr.payload["plan_hash"] == job.plan_hash
    page = client_for(Role.REVIEWER).get(cr.get_absolute_url()).content.decode()
    assert "sample update line 2 (sku-2)" in page
    assert "price: 5 → 6" in page


def test_a_job_in_review_polls_slowly_then_often_once_approved(
    client_for: ClientFor, catalog: Catalog, make_job: MakeJob
) -> None:
    # Whoever watches the job page sees the approval start the job without reloading.
    job = make_job(b"id,name,price\nsku-2,Cup,6\n")
    client_for(Role.EDITOR).post(reverse("catalog_bulk:propose", args=[catalog.name, job.pk]))
    url = reverse("catalog_bulk:job", args=[catalog.name, job.pk])
    viewer = client_for(Role.VIEWER)
    assert 'hx-trigger="every 15s"' in viewer.get(url).content.decode()
    ChangeRequest.objects.update(state=ChangeState.APPROVED)
    text = viewer.get(url).content.decode()
    assert 'hx-trigger="every 2s"' in text
    assert "is approved: the job starts in a moment" in text
    ChangeRequest.objects.update(state=ChangeState.REJECTED)
    assert (
        "hx-trigger" not in viewer.get(url).content.decode().split('id="job-live"')[1].split(">")[0]
    )


def test_a_job_with_nothing_to_send_cannot_be_submitted(
    client_for: ClientFor, catalog: Catalog, make_job: MakeJob
) -> None:
    job = make_job(b"id,name,price\nsku-1,Mug,10\n")
    client = client_for(Role.EDITOR)
    response = client.post(
        reverse("catalog_bulk:propose", args=[catalog.name, job.pk]), follow=True
    )
    assert "Nothing to send" in response.content.decode()
    assert not ChangeRequest.objects.exists()


def test_the_job_page_polls_only_while_the_job_is_live(
    client_for: ClientFor, catalog: Catalog, make_job: MakeJob
) -> None:
    job = make_job(b"id,name\nsku-9,x\n")
    url = reverse("catalog_bulk:job", args=[catalog.name, job.pk])
    client = client_for(Role.VIEWER)
    assert 'hx-trigger="every 2s"' not in client.get(url).content.decode()
    BulkJob.objects.filter(pk=job.pk).update(state=JobState.PARSING)
    fragment = client.get(url, headers={"HX-Request": "true", "HX-Target": "job-live"})
    text = fragment.content.decode()
    assert text.lstrip().startswith('<div id="job-live"')
    assert 'hx-trigger="every 2s"' in text


def test_the_poll_that_finds_the_preview_ready_brings_its_samples_and_error_rows(
    client_for: ClientFor, catalog: Catalog, make_job: MakeJob
) -> None:
    # The page was first drawn while parsing; the samples and errors must arrive by htmx.
    job = make_job(b"id,name\nsku-1,Big mug\nbad id!,x\n")
    url = reverse("catalog_bulk:job", args=[catalog.name, job.pk])
    fragment = client_for(Role.VIEWER).get(
        url, headers={"HX-Request": "true", "HX-Target": "job-live"}
    )
    text = fragment.content.decode()
    assert "Sample changes" in text
    assert "Big mug" in text
    assert "Rows with errors" in text
    assert "bad id!" in text


def test_the_job_page_polls_slowly_while_the_read_back_is_pending_and_stops_after(
    client_for: ClientFor, catalog: Catalog, make_job: MakeJob
) -> None:
    job = make_job(b"id,name\nsku-9,x\n")
    url = reverse("catalog_bulk:job", args=[catalog.name, job.pk])
    client = client_for(Role.VIEWER)
    BulkJob.objects.filter(pk=job.pk).update(
        state=JobState.DONE, readback_state=ReadBackState.SCHEDULED, readback_due_at=now()
    )
    text = client.get(url).content.decode()
    assert 'hx-trigger="every 15s"' in text
    assert "This page shows the result when it is in." in text
    BulkJob.objects.filter(pk=job.pk).update(readback_state=ReadBackState.DONE)
    opening_tag = client.get(url).content.decode().split('id="job-live"')[1].split(">")[0]
    assert "hx-trigger" not in opening_tag


def test_the_list_shows_jobs_in_the_shared_table(
    client_for: ClientFor, catalog: Catalog, make_job: MakeJob
) -> None:
    job = make_job(b"id,name\nsku-9,x\n")
    page = client_for(Role.VIEWER).get(reverse("catalog_bulk:jobs", args=[catalog.name]))
    assert f"#{job.pk}" in page.content.decode()
    assert "items.csv" in page.content.decode()


def test_cancel_before_approval_sends_nothing(
    client_for: ClientFor, catalog: Catalog, make_job: MakeJob
) -> None:
    job = make_job(b"id,name\nsku-9,x\n")
    client = client_for(Role.EDITOR)
    url = reverse("catalog_bulk:control", args=[catalog.name, job.pk])
    client.post(url, {"action": "cancel"})
    job.refresh_from_db()
    assert job.state == JobState.CANCELLED
    assert set(job.rows.values_list("outcome", flat=True)) == {"cancelled"}


def test_the_author_withdraws_the_request_and_cancels_from_the_job_page(
    client_for: ClientFor, catalog: Catalog, make_job: MakeJob
) -> None:
    job = make_job(b"id,name,price\nsku-2,Cup,6\n")
    author = client_for(Role.EDITOR)
    author.post(reverse("catalog_bulk:propose", args=[catalog.name, job.pk]))
    url = reverse("catalog_bulk:job", args=[catalog.name, job.pk])
    assert "Withdraw the request and cancel the job" in author.get(url).content.decode()
    assert "Only the request's author can withdraw it" in (
        client_for(Role.REVIEWER).get(url).content.decode()
    )

    author.post(reverse("catalog_bulk:control", args=[catalog.name, job.pk]), {"action": "cancel"})

    job.refresh_from_db()
    assert job.state == JobState.CANCELLED
    assert ChangeRequest.objects.get().state == "cancelled"


def test_after_a_rejection_the_job_page_says_the_job_will_not_run(
    client_for: ClientFor, catalog: Catalog, make_job: MakeJob
) -> None:
    job = make_job(b"id,name,price\nsku-2,Cup,6\n")
    client_for(Role.EDITOR).post(reverse("catalog_bulk:propose", args=[catalog.name, job.pk]))
    ChangeRequest.objects.update(state="rejected")  # the sweeper has not closed the job yet
    page = client_for(Role.VIEWER).get(reverse("catalog_bulk:job", args=[catalog.name, job.pk]))
    text = page.content.decode()
    assert "was rejected: this job will not run, and nothing was sent." in text
    assert "Waiting for a reviewer" not in text


def test_the_approver_alone_may_let_a_job_use_the_whole_rate_limit_and_it_is_recorded(
    client_for: ClientFor, catalog: Catalog, make_job: MakeJob
) -> None:
    from console.audit.models import AuditEntry

    job = make_job(b"id,name,price\nsku-2,Cup,6\n")
    editor = client_for(Role.EDITOR)
    editor.post(reverse("catalog_bulk:propose", args=[catalog.name, job.pk]))
    cr = ChangeRequest.objects.get()
    # The author's page has no such choice; the reviewer's approval form has.
    assert 'name="full_rate_limit"' not in editor.get(cr.get_absolute_url()).content.decode()
    reviewer = client_for(Role.REVIEWER)
    page = reviewer.get(cr.get_absolute_url()).content.decode()
    assert 'name="full_rate_limit"' in page
    assert "Background work's share" in page
    act = reverse("changes:act", args=[cr.pk])
    # Only an approval carries it: a comment with the box ticked changes nothing.
    reviewer.post(act, {"op": "comment", "comment": "looks fine", "full_rate_limit": "1"})
    cr.refresh_from_db()
    assert cr.full_rate_limit is False
    reviewer.post(act, {"op": "approve", "full_rate_limit": "1"})
    cr.refresh_from_db()
    assert (cr.state, cr.full_rate_limit) == (ChangeState.APPROVED, True)
    entry = AuditEntry.objects.get(action="change_request.approved", change_request_id=cr.pk)
    assert entry.data["full_rate_limit_allowed"] is True
    assert entry.data["full_rate_limit"] is True
    page = reviewer.get(cr.get_absolute_url()).content.decode()
    assert "May use the whole rate limit (allowed by an approver)" in page
