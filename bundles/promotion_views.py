"""The promotion screen: pick objects in the workspace being worked in, preview them against
another workspace, and open them there as one bundle change request."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from bundles.content import CONTENT_BLOCK, KIND_LABELS, DependencyCycle, Pick
from bundles.forms import PromotionForm
from bundles.selectors import (
    PROMOTABLE,
    Promotion,
    WorkspaceNotServed,
    promotion_read,
    workspace_names,
)
from bundles.services import promotion_propose
from console.access import require_capability
from console.braze import BrazeError, describe_error
from console.changes.services import ChangeRequestError
from console.http import AuthenticatedRequest, htmx_targets
from console.roles import Capability, workspaces_other_where
from console.workspace_urls import workspace_reverse
from console.workspaces import Workspace, workspaces_all
from templates_app.diff import snapshot_diff

PREVIEW_TARGET = "promotion-preview"
OBJECTS_TARGET = "promotion-objects"


def _targets(request: AuthenticatedRequest) -> list[Workspace]:
    """The other workspaces this person may propose changes in."""
    return workspaces_other_where(request.user, Capability.PROPOSE, besides=request.workspace.key)


def _picks(values: list[str]) -> list[Pick]:
    return [Pick(*value.split(":", 1)) for value in values]


def _objects(
    names: dict[str, list[str]], *, query: str, kind: str, picked: set[str]
) -> list[tuple[str, str, list[tuple[str, str, bool]]]]:
    """Per kind: its label and (value, name, picked) rows matching the filter; a picked
    object stays listed whatever the filter, so a search never drops a choice."""
    groups = []
    for each in PROMOTABLE:
        rows = [
            (f"{each}:{name}", name, f"{each}:{name}" in picked)
            for name in names.get(each, [])
            if f"{each}:{name}" in picked
            or ((not kind or kind == each) and query.casefold() in name.casefold())
        ]
        if rows:
            groups.append((each, KIND_LABELS[each], rows))
    return groups


def _preview_context(promotion: Promotion) -> dict[str, Any]:
    parts = promotion.preview.changes.parts
    return {
        "promotion": promotion,
        "created": [(p, snapshot_diff(None, p.after)) for p in parts if p.action == "create"],
        "changed": [(p, snapshot_diff(p.before, p.after)) for p in parts if p.action == "update"],
        "dependencies": [
            (name, name in promotion.preview.taken) for name in promotion.preview.dependency_names
        ],
        "parts": parts,
        "blocks_first": [p.name for p in parts if p.kind == CONTENT_BLOCK],
    }


def _read(
    source: Workspace, target: Workspace, form: PromotionForm
) -> tuple[Promotion | None, str, int]:
    """The promotion the form describes, or why it cannot be read (message and status)."""
    try:
        found = promotion_read(
            source=source,
            target=target,
            picks=_picks(form.cleaned_data["pick"]),
            declined=set(form.cleaned_data["offered"]) - set(form.cleaned_data["dependency"]),
        )
    except DependencyCycle as exc:
        return None, str(exc), 409
    except WorkspaceNotServed as exc:
        return None, str(exc), 502
    except BrazeError as exc:
        return None, f"Braze could not be read: {describe_error(exc)}", 502
    return found, "", 200


def _names(source: Workspace) -> tuple[dict[str, list[str]], str, int]:
    try:
        return workspace_names(workspace=source), "", 200
    except WorkspaceNotServed as exc:
        return {}, str(exc), 502
    except BrazeError as exc:
        return {}, f"Braze could not be read: {describe_error(exc)}", 502


@require_http_methods(["GET", "POST"])
@require_capability(Capability.PROPOSE)
def promotion(request: AuthenticatedRequest) -> HttpResponse:
    source = request.workspace
    targets = _targets(request)
    # Roles are per workspace: proposing into one needs PROPOSE there, whatever the source
    # grants (and change_request_propose checks it again).
    named = request.POST.get("target", "")
    others = {w.key for w in workspaces_all()} - {source.key}
    if named in others and named not in {w.key for w in targets}:
        raise PermissionDenied
    posted = request.method == "POST"
    form = PromotionForm(
        request.POST if posted else None, targets=[(w.key, w.label) for w in targets]
    )
    kind = request.GET.get("kind", "")
    context: dict[str, Any] = {
        "source": source,
        "targets": targets,
        "form": form,
        "query": request.GET.get("q", "").strip(),
        "kind": kind if kind in PROMOTABLE else "",
        "kinds": [(k, KIND_LABELS[k]) for k in PROMOTABLE],
        "errors": [],
        "previewed": posted,
    }
    status = 400 if posted and not form.is_valid() else 200
    if posted and form.is_valid():
        target = next(w for w in targets if w.key == form.cleaned_data["target"])
        found, error, status = _read(source, target, form)
        if found is None:
            context["errors"].append(error)
        else:
            context |= _preview_context(found)
        # A preview (htmx) never opens anything, whatever the form holds.
        proposing = "propose" in request.POST and not htmx_targets(request, PREVIEW_TARGET)
        if found is not None and proposing:
            try:
                cr = promotion_propose(
                    actor=request.user, promotion=found, digest=form.cleaned_data["digest"]
                )
            except ChangeRequestError as exc:
                context["errors"].append(str(exc))
                status = 409
            else:
                messages.success(
                    request,
                    f"Change request #{cr.pk} holds the promotion to {target.label}: it is "
                    "applied once approved there. Each part's outcome shows here.",
                )
                url = workspace_reverse("bundles:review", workspace=target, kwargs={"pk": cr.pk})
                return redirect(url)
    if htmx_targets(request, PREVIEW_TARGET):
        return render(request, "bundles/promotion.html#preview", context, status=status)
    names, error, names_status = _names(source)
    if error:
        context["errors"].append(error)
        status = names_status
    picked = set(request.POST.getlist("pick") or request.GET.getlist("pick"))
    context["groups"] = _objects(names, query=context["query"], kind=context["kind"], picked=picked)
    if htmx_targets(request, OBJECTS_TARGET):
        return render(request, "bundles/promotion.html#objects", context, status=status)
    return render(request, "bundles/promotion.html", context, status=status)
