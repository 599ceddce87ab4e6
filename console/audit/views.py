import json
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import F
from django.http import (
    Http404,
    HttpResponse,
    HttpResponseBase,
    HttpResponseRedirect,
    StreamingHttpResponse,
)
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from console.access import require_capability
from console.audit import events
from console.audit.events import ERASABLE_FIELDS
from console.audit.exports import csv_stream, jsonl_stream
from console.audit.forms import PersonalErasureForm
from console.audit.models import AuditCheckpoint, AuditEntry, AuditPersonal
from console.audit.selectors import (
    AuditFilterForm,
    CheckpointCheck,
    FileCopy,
    Signature,
    audit_checkpoint_checks,
    audit_checkpoints,
    audit_entries,
    audit_entries_page,
    audit_personal_erasure_of,
    audit_personal_erasure_preview,
    audit_verification_pending,
    audit_verification_results,
    audit_verification_stalled,
)
from console.audit.sentences import Sentence, audit_sentence, audit_sentences
from console.audit.services import (
    audit_append,
    audit_checkpoint_request,
    audit_personal_erase,
    audit_personal_lookup_record,
    audit_verification_request,
)
from console.changes.erasure import ErasureRefused
from console.http import AuthenticatedRequest, htmx_targets
from console.navigation import AUDIT_TABS, tabs_for
from console.roles import Capability, user_capabilities
from console.tables import (
    Column,
    TablePage,
    cells_for,
    headers_for,
    list_template,
    sort_from_request,
)
from console.workspace_urls import workspace_reverse
from console.workspaces import workspace_get, workspaces_all

PAGE_SIZE = 50


def _detail_url(entry: AuditEntry) -> str:
    return reverse("audit:detail", args=[entry.seq])


def _workspace_text(entry: AuditEntry) -> str:
    if not entry.workspace:
        return "—"
    try:
        found = workspace_get(entry.workspace)
    except LookupError:  # no longer configured: the key is all the entry knows
        return entry.workspace
    return found.label + (" (production)" if found.production else "")


def _change_url(entry: AuditEntry) -> str:
    if not entry.change_request_id:
        return ""
    if not entry.workspace:
        return reverse("changes:detail", args=[entry.change_request_id])
    # The change request's page is in its own workspace, which may not be this one.
    return workspace_reverse(
        "changes:detail", workspace=entry.workspace, args=[entry.change_request_id]
    )


def _columns(sentences: dict[int, Sentence]) -> list[Column[AuditEntry]]:
    """The list's columns: the entry in words (actor, resource and change request named and
    linked), beside the raw action it was recorded under; the workspace when there are
    several (the list shows the one being worked in and the entries of none)."""
    workspace = [Column("workspace", "Workspace", value=_workspace_text, sortable=False)]
    return [
        Column("seq", "#", link=_detail_url, sortable=False, numeric=True),
        Column(
            "occurred_at",
            "Time (UTC)",
            value=lambda e: e.occurred_at.strftime("%Y-%m-%d %H:%M:%S"),
            sortable=False,
        ),
        Column("sentence", "What happened", value=lambda e: sentences[e.seq].html, sortable=False),
        Column("action", "Action", sortable=False),
        Column("outcome", "Outcome", sortable=False),
        *(workspace if len(workspaces_all()) > 1 else []),
    ]


def _params_without(request: AuthenticatedRequest, key: str) -> str:
    query = request.GET.copy()
    query.pop(key, None)
    return query.urlencode()


def _see_other(url_name: str) -> HttpResponse:
    # 303: the browser follows a POST's answer with a GET (django's redirect() is a 302).
    return HttpResponseRedirect(reverse(url_name), status=303)


@require_GET
@require_capability(Capability.AUDIT)
def audit_list(request: AuthenticatedRequest) -> HttpResponse:
    form = AuditFilterForm(request.GET or None)
    filters = form.filters() if request.GET else {}
    # Keyset pages (by seq): constant time at any depth of a million rows, no COUNT(*).
    before = request.GET.get("before", "")
    rows = audit_entries_page(
        filters=filters, before=int(before) if before.isdigit() else None, size=PAGE_SIZE + 1
    )
    base = _params_without(request, "before")
    next_url = None
    if len(rows) > PAGE_SIZE:
        rows = rows[:PAGE_SIZE]
        next_url = f"?{base}&before={rows[-1].seq}" if base else f"?before={rows[-1].seq}"
    columns = _columns(audit_sentences(rows))
    table = TablePage(
        headers=headers_for(request, columns, None, False),
        rows=[cells_for(row, columns) for row in rows],
        empty_message="No audit entries match these filters.",
        previous_url=(f"?{base}" if base else "?") if before else None,
        next_url=next_url,
        summary=f"Entries {rows[0].seq}…{rows[-1].seq}" if rows else "",
    )
    return render(
        request,
        list_template(request, "console/audit/list.html"),
        {
            "form": form,
            "table": table,
            "export_params": request.GET,
            "tabs": tabs_for(request, AUDIT_TABS),
        },
    )


@require_GET
@require_capability(Capability.AUDIT)
def audit_detail(request: AuthenticatedRequest, seq: int) -> HttpResponse:
    entry = AuditEntry.objects.filter(seq=seq).first()
    if entry is None:
        raise Http404
    personal = AuditPersonal.objects.filter(entry=entry).first()
    return render(
        request,
        "console/audit/detail.html",
        {
            "entry": entry,
            "sentence": audit_sentence(entry),
            "data_json": json.dumps(entry.data, indent=2, sort_keys=True, ensure_ascii=False),
            "diff_rows": entry.data.get("diff") if isinstance(entry.data, dict) else None,
            "personal": personal,
            "erasure": audit_personal_erasure_of(entry=entry) if personal is None else None,
            "workspace": _workspace_text(entry),
            "change_url": _change_url(entry),
        },
    )


@require_POST
@require_capability(Capability.AUDIT)
def audit_export(request: AuthenticatedRequest) -> HttpResponseBase:
    """POST because exporting is itself audited (a GET must change nothing)."""
    form = AuditFilterForm(request.POST)
    filters = form.filters()
    fmt = "jsonl" if request.POST.get("format") == "jsonl" else "csv"
    # Recorded before streaming, so the export's own entry is outside what it exports.
    entry = audit_append(
        actor=request.user,
        action=events.AUDIT_EXPORTED,
        resource_type="audit",
        data={"format": fmt, "filters": {k: str(v) for k, v in filters.items()}},
    )
    entries = audit_entries(filters=filters).filter(seq__lt=entry.seq)
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    if fmt == "jsonl":
        response = StreamingHttpResponse(jsonl_stream(entries), content_type="application/jsonl")
    else:
        response = StreamingHttpResponse(csv_stream(entries), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="audit-{stamp}.{fmt}"'
    return response


# Integrity: signed checkpoints and verification runs -------------------------------------


@dataclass(frozen=True, slots=True)
class _CheckpointRow:
    checkpoint: AuditCheckpoint
    check: CheckpointCheck


def _head_hash(row: _CheckpointRow) -> SafeString:
    full = row.checkpoint.head_hash
    return format_html(
        '<details class="hash"><summary><code>{}…</code></summary><code>{}</code></details>',
        full[:12],
        full,
    )


_COPY_BADGES = {FileCopy.MATCHES: "badge-ok", FileCopy.DIFFERS: "badge-danger"}
_SIGNATURE_BADGES = {Signature.VERIFIES: "badge-ok", Signature.FAILS: "badge-danger"}


def _badge(text: str, style: str) -> SafeString:
    return format_html('<span class="badge {}">{}</span>', style, text)


def _checkpoint_entry_url(row: _CheckpointRow) -> str | None:
    seq = row.checkpoint.last_seq
    return reverse("audit:detail", args=[seq]) if seq > 0 else None


CHECKPOINT_COLUMNS: list[Column[_CheckpointRow]] = [
    Column("id", "#", value=lambda r: r.checkpoint.pk, numeric=True),
    Column(
        "last_seq",
        "Up to entry",
        value=lambda r: r.checkpoint.last_seq,
        link=_checkpoint_entry_url,
        numeric=True,
    ),
    Column("head_hash", "Head hash", value=_head_hash, sortable=False),
    Column(
        "created_at",
        "Issued (UTC)",
        value=lambda r: r.checkpoint.created_at.strftime("%Y-%m-%d %H:%M:%S"),
    ),
    Column("key_id", "Key id", value=lambda r: r.checkpoint.key_id, sortable=False),
    Column(
        "file_copy",
        "File copy",
        value=lambda r: _badge(
            r.check.file_copy, _COPY_BADGES.get(r.check.file_copy, "badge-warn")
        ),
        sortable=False,
    ),
    Column(
        "signature",
        "Signature",
        value=lambda r: _badge(
            r.check.signature, _SIGNATURE_BADGES.get(r.check.signature, "badge-warn")
        ),
        sortable=False,
    ),
]
CHECKPOINT_PAGE_SIZE = 25


def _page_url(request: AuthenticatedRequest, page: int | None) -> str:
    query = request.GET.copy()
    query.pop("page", None)
    if page is not None and page > 1:
        query["page"] = str(page)
    return f"?{query.urlencode()}"


def _checkpoint_table(request: AuthenticatedRequest) -> TablePage:
    """Built here rather than by table_from_queryset: the checks need the page's rows
    first, so the checkpoint file is read once per page for those rows only."""
    column, descending = sort_from_request(request, CHECKPOINT_COLUMNS, "-id")
    queryset = audit_checkpoints()
    if column is not None:
        field = F(column.order_by or column.key)
        queryset = queryset.order_by(
            field.desc() if descending else field.asc(), "-pk" if descending else "pk"
        )
    page = Paginator(queryset, CHECKPOINT_PAGE_SIZE).get_page(request.GET.get("page"))
    checkpoints = list(page.object_list)
    checks = audit_checkpoint_checks(checkpoints=checkpoints)
    return TablePage(
        headers=headers_for(request, CHECKPOINT_COLUMNS, column, descending),
        rows=[
            cells_for(_CheckpointRow(cp, checks[cp.pk]), CHECKPOINT_COLUMNS) for cp in checkpoints
        ],
        empty_message="No checkpoint has been signed yet. The signer signs one every few minutes.",
        previous_url=_page_url(request, page.number - 1) if page.has_previous() else None,
        next_url=_page_url(request, page.number + 1) if page.has_next() else None,
        summary=(
            f"{page.start_index()}–{page.end_index()} of {page.paginator.count}"
            if page.paginator.count
            else ""
        ),
    )


def _verification_context() -> dict[str, Any]:
    return {
        "pending": audit_verification_pending(),
        "stalled": audit_verification_stalled(),
        "results": audit_verification_results(),
    }


def _integrity_template(request: AuthenticatedRequest) -> str:
    template = "console/audit/integrity.html"
    if htmx_targets(request, "verify-status"):
        return f"{template}#status"
    return list_template(request, template)


@require_GET
@require_capability(Capability.AUDIT)
def audit_integrity(request: AuthenticatedRequest) -> HttpResponse:
    template = _integrity_template(request)
    context = _verification_context()
    if not template.endswith("#status"):
        context["table"] = _checkpoint_table(request)
        context["tabs"] = tabs_for(request, AUDIT_TABS)
        context["can_issue_checkpoint"] = Capability.MANAGE_USERS in user_capabilities(request.user)
    return render(request, template, context)


@require_POST
@require_capability(Capability.AUDIT)
def audit_integrity_verify(request: AuthenticatedRequest) -> HttpResponse:
    _, queued = audit_verification_request(actor=request.user)
    if request.htmx:
        return render(request, "console/audit/integrity.html#status", _verification_context())
    if queued:
        messages.success(request, "Verification queued: the result appears here when it ends.")
    else:
        messages.info(request, "A verification is already queued or running.")
    return _see_other("audit:integrity")


@require_POST
@require_capability(Capability.MANAGE_USERS)
def audit_checkpoint_issue(request: AuthenticatedRequest) -> HttpResponse:
    audit_checkpoint_request()
    messages.success(
        request, "A checkpoint will be signed in a moment; reload to see it in the list."
    )
    return _see_other("audit:integrity")


# Erasure of personal data ------------------------------------------------------------------


def _erasure_page(
    request: AuthenticatedRequest, form: PersonalErasureForm, *, preview: Any = None
) -> HttpResponse:
    kind = ERASABLE_FIELDS.get(form.cleaned_data.get("field", "")) if form.is_bound else None
    return render(
        request,
        "console/audit/erasure.html",
        {
            "form": form,
            "preview": preview,
            "kind": (kind or "value").lower(),
            "tabs": tabs_for(request, AUDIT_TABS),
        },
        status=400 if form.is_bound and not form.is_valid() else 200,
    )


@require_http_methods(["GET", "POST"])
@require_capability(Capability.MANAGE_USERS)
def audit_erasure(request: AuthenticatedRequest) -> HttpResponse:
    """GET: the form. POST: a preview (POST so the value stays out of URLs and logs)."""
    form = PersonalErasureForm(request.POST if request.method == "POST" else None)
    if not form.is_bound or not form.is_valid():
        return _erasure_page(request, form)
    field, value = form.cleaned_data["field"], form.cleaned_data["value"]
    preview = audit_personal_erasure_preview(field=field, value=value)
    audit_personal_lookup_record(
        actor=request.user, field=field, value=value, entries=preview.count
    )
    return _erasure_page(request, form, preview=preview)


@require_POST
@require_capability(Capability.MANAGE_USERS)
def audit_erasure_confirm(request: AuthenticatedRequest) -> HttpResponse:
    form = PersonalErasureForm(request.POST)
    if not form.is_valid():
        return _erasure_page(request, form)
    kind = ERASABLE_FIELDS[form.cleaned_data["field"]].lower()
    try:
        entry = audit_personal_erase(
            actor=request.user,
            field=form.cleaned_data["field"],
            value=form.cleaned_data["value"],
            reason=form.cleaned_data["reason"],
        )
    except ErasureRefused as exc:
        messages.error(request, str(exc))
        return _see_other("audit:erasure")
    # The messages never repeat the value: they travel in the session.
    count = int(entry.data["entries"])
    requests = len(entry.data.get("change_requests") or [])
    also = (
        f" and from {requests:,} change request{'' if requests == 1 else 's'}" if requests else ""
    )
    if count or requests:
        messages.success(
            request,
            f"Erased the {kind} from {count:,} audit entr{'y' if count == 1 else 'ies'}{also}; "
            f"every entry still verifies. The erasure is recorded as entry #{entry.seq}.",
        )
    else:
        messages.info(
            request,
            f"No audit entry held this {kind}: nothing was erased. "
            f"The request is recorded as entry #{entry.seq}.",
        )
    return _see_other("audit:erasure")
