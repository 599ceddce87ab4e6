"""Bulk item screens: upload, preview, submit for review, live progress, downloads."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from catalog_bulk import selectors, services
from catalog_bulk.forms import BulkControlForm, BulkJobFilterForm, BulkUploadForm
from catalog_bulk.models import BulkJob, JobState, ReadBackState
from catalog_bulk.uploads import UploadLimitHandler, too_large_message
from catalogs import selectors as catalog_selectors
from catalogs.models import Catalog
from console.access import require_capability
from console.changes.models import ChangeState
from console.http import AuthenticatedRequest, htmx_targets
from console.roles import Capability, user_capabilities, workspaces_other_where
from console.spreadsheet import cell_inert
from console.tables import Column, list_template, table_from_queryset
from console.workspace_urls import workspace_reverse
from console.workspaces import workspace_override

# The job page polls while something is still changing: often while the job moves or its
# approved request is about to start it, and slowly while it waits for a reviewer, or its
# read-back waits (minutes) or reads (50 items a minute at most).
LIVE_STATES = (JobState.PARSING, JobState.WAITING, JobState.RUNNING)
POLL_LIVE, POLL_SLOW = "2s", "15s"
STARTING = (ChangeState.APPROVED, ChangeState.APPLYING)


def _job_url(job: BulkJob) -> str:
    return reverse("catalog_bulk:job", args=[job.catalog.name, job.pk])


def _eta_text(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = round(seconds)
    if seconds < 60:
        return f"about {seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"about {minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"about {hours} h {minutes:02d} min"


@require_POST
@require_capability(Capability.BROWSE)
def bulk_copy(request: AuthenticatedRequest, name: str) -> HttpResponse:
    """This catalog's mirrored items, as an upsert job in the catalog of the same name in
    another workspace: proposing there needs PROPOSE there, whatever the role here."""
    source = catalog_selectors.catalog_get(name=name, workspace=request.workspace.key)
    key = request.POST.get("workspace", "")
    allowed = workspaces_other_where(
        request.user, Capability.PROPOSE, besides=request.workspace.key
    )
    target = next((w for w in allowed if w.key == key), None)
    if target is None:
        raise PermissionDenied
    there = Catalog.objects.filter(workspace=target.key, name=name, present_in_braze=True).first()
    if there is None:
        messages.error(
            request,
            f"{target.label} has no catalog named {name} yet: promote its schema first "
            "(Promote), then copy its items.",
        )
        return redirect("catalogs:detail", name=name)
    try:
        with workspace_override(target):
            job = services.bulk_job_copy_items(actor=request.user, source=source, target=there)
    except services.BulkError as exc:
        messages.error(request, str(exc))
        return redirect("catalogs:detail", name=name)
    messages.success(
        request,
        f"Copying {name}'s items from {request.workspace.label}: every row is being checked "
        f"against {target.label}'s fields; preview and propose the job here.",
    )
    return redirect(workspace_reverse("catalog_bulk:job", workspace=target, args=[name, job.pk]))


# The size limit applies while the body streams in, so the upload handler must be in place
# before anything reads request.POST; the CSRF check therefore runs inside, not before.
@csrf_exempt
@require_http_methods(["GET", "POST"])
@require_capability(Capability.PROPOSE)
def bulk_upload(request: AuthenticatedRequest, name: str) -> HttpResponse:
    limit = UploadLimitHandler(request, limit=settings.BULK_MAX_UPLOAD_BYTES)
    request.upload_handlers.insert(0, limit)
    return _bulk_upload(request, name, limit)


@csrf_protect
def _bulk_upload(
    request: AuthenticatedRequest, name: str, limit: UploadLimitHandler
) -> HttpResponse:
    catalog = catalog_selectors.catalog_get(name=name, workspace=request.workspace.key)
    form = BulkUploadForm(request.POST or None, request.FILES or None)
    if limit.refused:
        form.is_valid()
        form.errors["file"] = form.error_class([too_large_message(limit.limit)])
        response = render(request, "catalog_bulk/upload.html", {"catalog": catalog, "form": form})
        response["Connection"] = "close"  # the rest of the body was never read
        return response
    if request.method == "POST" and form.is_valid():
        try:
            job = services.bulk_job_upload(
                actor=request.user,
                catalog=catalog,
                operation=form.cleaned_data["operation"],
                upload=form.cleaned_data["file"],
            )
        except services.BulkError as exc:
            form.add_error("file", str(exc))
        else:
            messages.success(request, f"Uploaded {job.file_name}; checking every row now.")
            return redirect(_job_url(job))
    ctx = {"catalog": catalog, "form": form}
    return render(request, "catalog_bulk/upload.html", ctx)


def _job_link(job: BulkJob) -> str:
    return _job_url(job)


JOB_COLUMNS: list[Column[BulkJob]] = [
    Column("id", "Job", value=lambda j: f"#{j.pk}", link=_job_link),
    Column("file_name", "File"),
    Column("operation", "Operation", value=lambda j: j.get_operation_display()),
    Column("state", "State", value=lambda j: j.get_state_display()),
    Column("rows_read", "Rows", numeric=True),
    Column("n_error", "Errors", numeric=True),
    Column("created_by", "By", value=lambda j: j.created_by.get_username(), sortable=False),
    Column("created_at", "Uploaded"),
]


@require_GET
@require_capability(Capability.BROWSE)
def bulk_job_list(request: AuthenticatedRequest, name: str) -> HttpResponse:
    catalog = catalog_selectors.catalog_get(name=name, workspace=request.workspace.key)
    form = BulkJobFilterForm(request.GET or None)
    queryset = selectors.bulk_jobs_for_catalog(catalog=catalog)
    if form.is_valid() and form.cleaned_data["state"]:
        queryset = queryset.filter(state=form.cleaned_data["state"])
    table = table_from_queryset(
        request,
        queryset,
        JOB_COLUMNS,
        default_sort="-id",
        empty_message="No bulk jobs for this catalog yet.",
    )
    can_propose = Capability.PROPOSE in user_capabilities(request.user)
    ctx = {"catalog": catalog, "table": table, "form": form, "can_propose": can_propose}
    return render(request, list_template(request, "catalog_bulk/jobs.html"), ctx)


def _job_context(request: AuthenticatedRequest, catalog: Catalog, job: BulkJob) -> dict[str, Any]:
    capabilities = user_capabilities(request.user)
    ctx: dict[str, Any] = {
        "catalog": catalog,
        "job": job,
        "poll_every": POLL_LIVE if job.state in LIVE_STATES else None,
        "can_propose": Capability.PROPOSE in capabilities,
        "can_control": bool(capabilities & {Capability.PROPOSE, Capability.REVIEW}),
        "can_withdraw": selectors.bulk_job_may_withdraw(job=job, user=request.user),
    }
    request_state = job.change_request.state if job.change_request else None
    ctx["starting"] = job.state == JobState.REVIEW and request_state in STARTING
    if ctx["starting"]:
        ctx["poll_every"] = POLL_LIVE
    elif job.state == JobState.REVIEW and request_state == ChangeState.PENDING:
        ctx["poll_every"] = POLL_SLOW
    if job.state in (JobState.READY, JobState.REVIEW):
        ctx["samples"] = selectors.bulk_job_samples(job=job)
        ctx["error_rows"] = selectors.bulk_job_error_rows(job=job, limit=20)
    if job.state in (
        JobState.WAITING,
        JobState.RUNNING,
        JobState.PAUSED,
        JobState.DONE,
        JobState.CANCELLED,
    ):
        progress = selectors.bulk_job_progress(job=job)
        ctx["progress"] = progress
        ctx["eta"] = _eta_text(progress.eta_seconds)
        ctx["problems"] = selectors.bulk_job_problem_batches(job=job)
        ctx["retry"] = selectors.bulk_job_retry_request(job=job)
        ctx["storage_pause"] = selectors.bulk_job_storage_pause(job=job)
        ctx["readback"] = selectors.bulk_job_read_back_summary(job=job)
        if ctx["readback"] and ctx["readback"].state in (
            ReadBackState.SCHEDULED,
            ReadBackState.READING,
        ):
            ctx["poll_every"] = ctx["poll_every"] or POLL_SLOW
    return ctx


@require_GET
@require_capability(Capability.BROWSE)
def bulk_job_detail(request: AuthenticatedRequest, name: str, job_id: int) -> HttpResponse:
    catalog = catalog_selectors.catalog_get(name=name, workspace=request.workspace.key)
    job = selectors.bulk_job_get(catalog=catalog, job_id=job_id)
    template = "catalog_bulk/job.html"
    if htmx_targets(request, "job-live"):
        template += "#live"
    return render(request, template, _job_context(request, catalog, job))


@require_POST
@require_capability(Capability.PROPOSE)
def bulk_job_propose(request: AuthenticatedRequest, name: str, job_id: int) -> HttpResponse:
    catalog = catalog_selectors.catalog_get(name=name, workspace=request.workspace.key)
    job = selectors.bulk_job_get(catalog=catalog, job_id=job_id)
    try:
        cr = services.bulk_job_propose(actor=request.user, job=job)
    except services.BulkError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Change request #{cr.pk} asks a reviewer to approve this job.")
    return redirect(_job_url(job))


@require_POST
@require_capability(Capability.PROPOSE, Capability.REVIEW)
def bulk_job_control(request: AuthenticatedRequest, name: str, job_id: int) -> HttpResponse:
    catalog = catalog_selectors.catalog_get(name=name, workspace=request.workspace.key)
    job = selectors.bulk_job_get(catalog=catalog, job_id=job_id)
    form = BulkControlForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose pause, resume, cancel or retry.")
        return redirect(_job_url(job))
    action = form.cleaned_data["action"]
    service = {
        "pause": services.bulk_job_pause,
        "resume": services.bulk_job_resume,
        "cancel": services.bulk_job_cancel,
        "retry": services.bulk_job_retry_failed,
    }[action]
    try:
        job = service(actor=request.user, job=job)
    except services.BulkError as exc:
        messages.error(request, str(exc))
    else:
        retry = selectors.bulk_job_retry_request(job=job) if action == "retry" else None
        if retry is not None:
            messages.warning(
                request,
                f"{retry.changed_items:,} of the failed items changed since the preview, so "
                f"nothing was sent: change request #{retry.change_request.pk} asks another "
                "person to approve sending them again.",
            )
        else:
            done = {
                "pause": "Paused",
                "resume": "Resumed",
                "cancel": "Cancelled",
                "retry": "Sending the failed batches again",
            }[action]
            messages.success(request, f"{done}: job #{job.pk}.")
    return redirect(_job_url(job))


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv_response(rows: Iterable[list[Any]], filename: str) -> StreamingHttpResponse:
    writer = csv.writer(_Echo())

    def lines() -> Iterator[str]:
        for row in rows:
            yield writer.writerow([cell_inert(v) for v in row])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@require_GET
@require_capability(Capability.BROWSE)
def bulk_job_errors_csv(
    request: AuthenticatedRequest, name: str, job_id: int
) -> StreamingHttpResponse:
    catalog = catalog_selectors.catalog_get(name=name, workspace=request.workspace.key)
    job = selectors.bulk_job_get(catalog=catalog, job_id=job_id)
    rows = selectors.bulk_job_error_csv_rows(job=job)
    return _csv_response(rows, f"{catalog.name}-job-{job.pk}-errors.csv")


@require_GET
@require_capability(Capability.BROWSE)
def bulk_job_report_csv(
    request: AuthenticatedRequest, name: str, job_id: int
) -> StreamingHttpResponse:
    catalog = catalog_selectors.catalog_get(name=name, workspace=request.workspace.key)
    job = selectors.bulk_job_get(catalog=catalog, job_id=job_id)

    def rows() -> Iterator[list[Any]]:
        yield selectors.REPORT_HEADER
        yield from selectors.bulk_job_report_rows(job=job)

    return _csv_response(rows(), f"{catalog.name}-job-{job.pk}-report.csv")
