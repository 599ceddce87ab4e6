import json

from django.contrib.auth.models import AbstractBaseUser
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from console.access import require_capability
from console.audit.exports import csv_stream, jsonl_stream
from console.audit.models import AuditEntry, AuditPersonal
from console.audit.selectors import AuditFilterForm, audit_entries
from console.audit.services import audit_append
from console.roles import Capability
from console.tables import Column, TablePage, cells_for, headers_for, list_template

PAGE_SIZE = 50


def _detail_url(entry: AuditEntry) -> str:
    from django.urls import reverse

    return reverse("audit:detail", args=[entry.seq])


COLUMNS: list[Column[AuditEntry]] = [
    Column("seq", "#", link=_detail_url, sortable=False, numeric=True),
    Column(
        "occurred_at",
        "Time (UTC)",
        value=lambda e: e.occurred_at.strftime("%Y-%m-%d %H:%M:%S"),
        sortable=False,
    ),
    Column("actor_name", "Actor", sortable=False),
    Column("action", "Action", sortable=False),
    Column(
        "resource",
        "Resource",
        value=lambda e: f"{e.resource_type} {e.resource_id}".strip() or None,
        sortable=False,
    ),
    Column("change_request_id", "Change", sortable=False),
    Column("outcome", "Outcome", sortable=False),
]


def _params_without(request: HttpRequest, key: str) -> str:
    query = request.GET.copy()
    query.pop(key, None)
    return query.urlencode()


def _actor(request: HttpRequest) -> AbstractBaseUser:
    # require_capability has already turned anonymous requests away.
    assert isinstance(request.user, AbstractBaseUser)
    return request.user


@require_GET
@require_capability(Capability.AUDIT)
def audit_list(request: HttpRequest) -> HttpResponse:
    form = AuditFilterForm(request.GET or None)
    filters = form.filters() if request.GET else {}
    entries = audit_entries(filters=filters)
    # Keyset pages (by seq): constant time at any depth of a million rows, no COUNT(*).
    before = request.GET.get("before", "")
    if before.isdigit():
        entries = entries.filter(seq__lt=int(before))
    rows = list(entries[: PAGE_SIZE + 1])
    base = _params_without(request, "before")
    next_url = None
    if len(rows) > PAGE_SIZE:
        rows = rows[:PAGE_SIZE]
        next_url = f"?{base}&before={rows[-1].seq}" if base else f"?before={rows[-1].seq}"
    table = TablePage(
        headers=headers_for(request, COLUMNS, None, False),
        rows=[cells_for(row, COLUMNS) for row in rows],
        empty_message="No audit entries match these filters.",
        previous_url=(f"?{base}" if base else "?") if before else None,
        next_url=next_url,
        summary=f"Entries {rows[0].seq}…{rows[-1].seq}" if rows else "",
    )
    return render(
        request,
        list_template(request, "console/audit/list.html"),
        {"form": form, "table": table, "export_params": request.GET},
    )


@require_GET
@require_capability(Capability.AUDIT)
def audit_detail(request: HttpRequest, seq: int) -> HttpResponse:
    entry = AuditEntry.objects.filter(seq=seq).first()
    if entry is None:
        raise Http404
    personal = AuditPersonal.objects.filter(entry=entry).first()
    return render(
        request,
        "console/audit/detail.html",
        {
            "entry": entry,
            "data_json": json.dumps(entry.data, indent=2, sort_keys=True, ensure_ascii=False),
            "diff_rows": entry.data.get("diff") if isinstance(entry.data, dict) else None,
            "personal": personal,
        },
    )


@require_POST
@require_capability(Capability.AUDIT)
def audit_export(request: HttpRequest) -> HttpResponse:
    """POST because exporting is itself audited (a GET must change nothing)."""
    form = AuditFilterForm(request.POST)
    filters = form.filters()
    fmt = "jsonl" if request.POST.get("format") == "jsonl" else "csv"
    # Recorded before streaming, so the export's own entry is outside what it exports.
    entry = audit_append(
        actor=_actor(request),
        action="audit.exported",
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
    return response  # type: ignore[return-value]  # streamed; the decorator type wants HttpResponse
