from dataclasses import replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django import forms
from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from console.access import require_capability
from console.changes import diff
from console.changes.models import ApprovalPolicy, ChangeAction, ChangeRequest, ChangeState
from console.changes.policy import approvals_required
from console.changes.resource_types import resource_type_find, resource_types_registered
from console.changes.selectors import (
    CHANGE_REQUEST_READERS,
    approvals_expired,
    change_request_get_visible,
    change_request_timeline,
    change_requests_awaiting_review,
    change_requests_of,
    change_requests_visible,
)
from console.changes.services import (
    SCHEDULABLE,
    ChangeRequestError,
    approval_policy_propose,
    approve_refusal,
    change_request_approve,
    change_request_cancel,
    change_request_comment,
    change_request_edit,
    change_request_reject,
    change_request_retry,
    change_request_schedule,
    change_request_submit,
    change_request_unschedule,
    live_approvals,
    may_take_part,
    review_refusal,
)
from console.http import AuthenticatedRequest
from console.roles import Capability, user_capabilities
from console.tables import Column, list_template, table_from_queryset

VIEWERS = tuple(CHANGE_REQUEST_READERS)

COLUMNS: list[Column[ChangeRequest]] = [
    Column("id", "#", link=lambda cr: cr.get_absolute_url(), numeric=True),
    Column("title", "Change", link=lambda cr: cr.get_absolute_url()),
    Column("resource_type", "Resource type"),
    Column("identifier", "Resource"),
    Column("action", "Action", value=lambda cr: cr.get_action_display()),
    Column("state", "State", value=lambda cr: cr.get_state_display()),
    Column(
        "author", "Author", value=lambda cr: cr.author.get_username(), order_by="author__username"
    ),
    Column("updated_at", "Updated", value=lambda cr: cr.updated_at.strftime("%Y-%m-%d %H:%M")),
]


def _columns_linked() -> list[Column[ChangeRequest]]:
    """COLUMNS, each row's address made from one reverse() per page (two reverse() calls a
    row cost about a tenth of the list's CPU): the same address get_absolute_url gives."""
    head = reverse("changes:detail", args=[0]).removesuffix("0/")

    def url(cr: ChangeRequest) -> str:
        return f"{head}{int(cr.pk)}/"

    return [replace(column, link=url) if column.link else column for column in COLUMNS]


def _resource_type_choices() -> list[tuple[str, str]]:
    # Read when the form is built: apps register their types once the registry is ready.
    return [("", "Any"), *((kind.key, kind.label) for kind in resource_types_registered())]


class StateFilterForm(forms.Form):
    state = forms.ChoiceField(
        label="State", required=False, choices=[("", "Any"), *ChangeState.choices]
    )
    resource_type = forms.ChoiceField(
        label="Resource type", required=False, choices=_resource_type_choices
    )


def _visible_or_404(request: AuthenticatedRequest, pk: int) -> ChangeRequest:
    """A request the user may not see answers like one that does not exist."""
    cr = change_request_get_visible(user=request.user, pk=pk, workspace=request.workspace.key)
    if cr is None:
        raise Http404("No such change request.")
    return cr


@require_GET
@require_capability(*VIEWERS)
def change_list(request: AuthenticatedRequest) -> HttpResponse:
    caps = user_capabilities(request.user, request.workspace.key)
    reviews = change_requests_awaiting_review(user=request.user, workspace=request.workspace.key)
    # Each type names who proposes and reviews it (Admins: dashboard users, console roles).
    kinds = resource_types_registered()
    may_review = any(kind.review in caps for kind in kinds)
    may_propose = any(kind.propose in caps for kind in kinds)
    default = "review" if may_review else "mine" if may_propose else "all"
    view = request.GET.get("view", default)
    if view not in {"review", "mine", "all"}:
        view = default
    if view == "review":
        queryset = reviews
    elif view == "mine":
        queryset = change_requests_of(user=request.user, workspace=request.workspace.key)
    else:
        queryset = change_requests_visible(user=request.user, workspace=request.workspace.key)
    form = StateFilterForm(request.GET or None)
    if form.is_valid():
        if form.cleaned_data["state"]:
            queryset = queryset.filter(state=form.cleaned_data["state"])
        if form.cleaned_data["resource_type"]:
            queryset = queryset.filter(resource_type=form.cleaned_data["resource_type"])
    table = table_from_queryset(
        request,
        queryset.select_related("author"),
        _columns_linked(),
        default_sort="-id",
        empty_message={
            "review": "Nothing awaits your review.",
            "mine": "You have not proposed any changes.",
        }.get(view, "No change requests match."),
    )
    tabs = [
        ("review", "Awaiting my review", may_review),
        ("mine", "My requests", may_propose),
        ("all", "All requests", True),
    ]
    return render(
        request,
        list_template(request, "console/changes/list.html"),
        {
            "table": table,
            "form": form,
            "view": view,
            "tabs": [t for t in tabs if t[2]],
            "can_manage_policy": Capability.MANAGE_USERS in caps,
        },
    )


def _diff_rows(cr: ChangeRequest) -> list[dict[str, Any]]:
    rows = []
    for row in cr.diff:
        long = diff.is_long_text(row["before"]) or diff.is_long_text(row["after"])
        rows.append({**row, "lines": diff.line_diff(row["before"], row["after"]) if long else None})
    return rows


def _detail_context(request: AuthenticatedRequest, cr: ChangeRequest) -> dict[str, Any]:
    user = request.user
    caps = user_capabilities(user, cr.workspace)
    is_author = user.pk in (cr.author_id, cr.last_editor_id)
    kind = resource_type_find(cr.resource_type)
    pending = cr.state == ChangeState.PENDING
    may_review = pending and review_refusal(user, cr) is None
    review_url: str | None = None
    notes: list[str] = []
    if kind is None:
        proposer, proposed, label = None, cr.payload, cr.resource_type
    else:
        proposer, label = kind.propose, kind.label
        proposed = kind.applier.proposed_state(cr.base_snapshot, cr.action, cr.payload)
        # Resources with HTML offer a rendered before/after page of their own.
        if kind.review_url is not None:
            review_url = reverse(kind.review_url, args=[cr.pk])
        if kind.review_notes is not None:
            notes = kind.review_notes(cr)
    takes_part = may_take_part(user, cr.resource_type, cr.workspace)
    approvals = live_approvals(cr)
    approved_already = any(a.reviewer_id == user.pk for a in approvals)
    approve_blocked = approve_refusal(user, cr) if may_review and not approved_already else None
    return {
        "cr": cr,
        "resource_label": label,
        "review_url": review_url,
        "review_notes": notes,
        "diff_rows": _diff_rows(cr),
        "three_way": diff.three_way(cr.base_snapshot, cr.current_snapshot, proposed)
        if cr.state == ChangeState.CONFLICT
        else None,
        "timeline": change_request_timeline(change_request=cr),
        "approvals": approvals,
        # Shown while they could still have counted: the request asks for review again.
        "expired_approvals": approvals_expired(change_request=cr)
        if cr.state in {ChangeState.PENDING, ChangeState.APPROVED, ChangeState.FAILED}
        else [],
        "approval_max_age_days": settings.APPROVAL_MAX_AGE_DAYS,
        "required": approvals_required(
            resource_type=cr.resource_type, action=cr.action, workspace=cr.workspace
        ),
        "comments": cr.comments.select_related("author"),
        "decisions": cr.reviews.select_related("reviewer").order_by("created_at"),
        "can_review": may_review and not approved_already,
        "can_approve": may_review and not approved_already and approve_blocked is None,
        "approve_blocked": approve_blocked,
        "is_author": is_author,
        "can_cancel": is_author
        and cr.state
        in {
            ChangeState.DRAFT,
            ChangeState.PENDING,
            ChangeState.APPROVED,
            ChangeState.FAILED,
            ChangeState.CONFLICT,
        },
        "can_retry": cr.state == ChangeState.FAILED and takes_part,
        "can_submit": is_author and cr.state == ChangeState.DRAFT,
        "can_rebase": proposer in caps and cr.state == ChangeState.CONFLICT,
        "can_comment": takes_part,
        "offers_full_rate_limit": kind is not None and kind.full_rate_limit,
        "time_zone": settings.CONSOLE_TIME_ZONE,
        # Formatted here: the template's date filter would show it in UTC.
        "apply_at_local": f"{cr.apply_at.astimezone(_workspace_zone()):%Y-%m-%d %H:%M}"
        if cr.apply_at
        else "",
        "apply_at_input": f"{cr.apply_at.astimezone(_workspace_zone()):%Y-%m-%dT%H:%M}"
        if cr.apply_at
        else "",
        "can_schedule": is_author and cr.state in SCHEDULABLE,
        "can_unschedule": cr.apply_at is not None
        and cr.state in SCHEDULABLE
        and (is_author or review_refusal(user, cr) is None),
    }


def _workspace_zone() -> ZoneInfo:
    return ZoneInfo(settings.CONSOLE_TIME_ZONE)


def _apply_at(value: str) -> datetime:
    """A `datetime-local` value, read in the workspace's time zone."""
    try:
        naive = datetime.fromisoformat(value)
    except ValueError:
        raise ChangeRequestError("Give the time as a date and a time of day.") from None
    if naive.tzinfo is not None:
        raise ChangeRequestError("Give the time as a date and a time of day.")
    return naive.replace(tzinfo=_workspace_zone())


@require_GET
@require_capability(*VIEWERS)
def change_detail(request: AuthenticatedRequest, pk: int) -> HttpResponse:
    cr = _visible_or_404(request, pk)
    return render(request, "console/changes/detail.html", _detail_context(request, cr))


@require_POST
@require_capability(Capability.PROPOSE, Capability.REVIEW, Capability.MANAGE_USERS)
def change_act(request: AuthenticatedRequest, pk: int) -> HttpResponse:
    """Every decision on a request, told apart by the submit button's `op`. The services
    enforce who may do what; this view only translates their refusals into messages."""
    cr = _visible_or_404(request, pk)
    op = request.POST.get("op", "")
    comment = request.POST.get("comment", "")[:5000]
    done = {
        "approve": "Approved.",
        "reject": "Rejected.",
        "cancel": "Withdrawn.",
        "retry": "Sent to Braze again.",
        "comment": "Comment added.",
        "submit": "Submitted for review.",
        "rebase": "Updated to Braze's current version; it needs fresh approval.",
        "schedule": "Scheduled.",
        "unschedule": "Unscheduled: the change waits in review.",
    }
    try:
        if op == "approve":
            change_request_approve(
                actor=request.user,
                change_request=cr,
                comment=comment,
                full_rate_limit=request.POST.get("full_rate_limit") == "1",
            )
        elif op == "reject":
            change_request_reject(actor=request.user, change_request=cr, comment=comment)
        elif op == "cancel":
            change_request_cancel(actor=request.user, change_request=cr, comment=comment)
        elif op == "retry":
            change_request_retry(actor=request.user, change_request=cr)
        elif op == "comment":
            change_request_comment(actor=request.user, change_request=cr, body=comment)
        elif op == "submit":
            change_request_submit(actor=request.user, change_request=cr)
        elif op == "rebase":
            change_request_edit(
                actor=request.user,
                change_request=cr,
                payload=cr.payload,
                base_snapshot=cr.current_snapshot,
                rebase=True,
            )
        elif op == "schedule":
            change_request_schedule(
                actor=request.user,
                change_request=cr,
                apply_at=_apply_at(request.POST.get("apply_at", "")[:40]),
            )
        elif op == "unschedule":
            change_request_unschedule(actor=request.user, change_request=cr)
        else:
            messages.error(request, "Unknown action.")
            return redirect(reverse("changes:detail", args=[cr.pk]))
    except ChangeRequestError as exc:
        messages.error(request, str(exc))
        return redirect(reverse("changes:detail", args=[cr.pk]))
    messages.success(request, done[op])
    return redirect(reverse("changes:detail", args=[cr.pk]))


class PolicyForm(forms.Form):
    resource_type = forms.CharField(label="Resource type", max_length=80)
    action = forms.ChoiceField(label="Action", choices=ChangeAction.choices)
    required_approvals = forms.IntegerField(label="Approvals needed", min_value=1, max_value=5)


@require_http_methods(["GET", "POST"])
@require_capability(Capability.MANAGE_USERS)
def approval_policy(request: AuthenticatedRequest) -> HttpResponse:
    """Admins propose how many reviewers each resource type and action needs; another
    Admin approves the change request before it takes effect."""
    form = PolicyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            cr = approval_policy_propose(
                actor=request.user, workspace=request.workspace.key, **form.cleaned_data
            )
        except ChangeRequestError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(
                request,
                f"Proposed as change request #{cr.pk}: it takes effect once another Admin "
                "approves it.",
            )
            return redirect(cr.get_absolute_url())
    types = {rt.key for rt in resource_types_registered()} | set(
        ApprovalPolicy.objects.values_list("resource_type", flat=True)
    )
    rules = [
        {
            "resource_type": rt,
            "action": action.label,
            "required": approvals_required(
                resource_type=rt, action=action, workspace=request.workspace.key
            ),
            "custom": ApprovalPolicy.objects.filter(
                resource_type=rt, action=action, workspace__in=[request.workspace.key, ""]
            ).exists(),
        }
        for rt in sorted(types)
        for action in ChangeAction
    ]
    return render(request, "console/changes/policy.html", {"form": form, "rules": rules})
