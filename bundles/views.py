"""Content as files: the export as a zip, the upload that opens a bundle change request,
and a bundle's page of parts (its review URL)."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from bundles.appliers import RESOURCE_TYPE
from bundles.archive import TreeRefused, content_zip, files_from_zip
from bundles.content import unflat_state
from bundles.forms import ImportForm
from bundles.selectors import WorkspaceNotServed, bundle_part_views, workspace_files
from bundles.services import content_import
from console.access import require_capability
from console.braze import BrazeError, describe_error
from console.changes.selectors import change_request_get_visible
from console.changes.services import ChangeRequestError
from console.http import AuthenticatedRequest
from console.roles import Capability, user_has_any
from console.workspaces import Workspace, workspace_active, workspace_get
from templates_app.diff import snapshot_diff


def _workspace(key: str) -> Workspace:
    if not key:
        return workspace_active()
    try:
        return workspace_get(key)
    except LookupError:
        raise Http404("No such workspace.") from None


def _page(
    request: AuthenticatedRequest,
    *,
    workspace: Workspace,
    form: ImportForm | None = None,
    errors: list[str] | None = None,
    notices: list[str] | None = None,
    status: int = 200,
) -> HttpResponse:
    may_import = user_has_any(request.user, [Capability.PROPOSE])
    context = {
        "workspace": workspace,
        "form": form or (ImportForm(initial={"workspace": workspace.key}) if may_import else None),
        "errors": errors or [],
        "notices": notices or [],
    }
    return render(request, "bundles/content_files.html", context, status=status)


@require_GET
@require_capability(Capability.BROWSE)
def content_files(request: AuthenticatedRequest) -> HttpResponse:
    return _page(request, workspace=_workspace(request.GET.get("workspace", "")))


@require_GET
@require_capability(Capability.BROWSE)
def content_files_export(request: AuthenticatedRequest) -> HttpResponse:
    workspace = _workspace(request.GET.get("workspace", ""))
    try:
        files, _ = workspace_files(workspace=workspace)
    except WorkspaceNotServed as exc:
        # A workspace configured without its key: Braze cannot be read, as with any refusal.
        return _page(request, workspace=workspace, errors=[str(exc)], status=502)
    except BrazeError as exc:
        message = f"Braze could not be read: {describe_error(exc)}"
        return _page(request, workspace=workspace, errors=[message], status=502)
    response = HttpResponse(content_zip(files), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="content-{workspace.key}.zip"'
    return response


@require_POST
@require_capability(Capability.PROPOSE)
def content_files_import(request: AuthenticatedRequest) -> HttpResponse:
    form = ImportForm(request.POST, request.FILES)
    if not form.is_valid():
        workspace = _workspace(request.POST.get("workspace", ""))
        return _page(request, workspace=workspace, form=form, status=400)
    workspace = workspace_get(form.cleaned_data["workspace"])
    try:
        files = files_from_zip(form.cleaned_data["tree"].read())
        # A draft: its author reads the parts on the request's page, then submits them.
        result = content_import(actor=request.user, workspace=workspace, files=files, submit=False)
    except TreeRefused as exc:
        errors = [str(e) for e in exc.errors]
        return _page(request, workspace=workspace, form=form, errors=errors, status=400)
    except WorkspaceNotServed as exc:
        return _page(request, workspace=workspace, form=form, errors=[str(exc)], status=502)
    except ChangeRequestError as exc:
        return _page(request, workspace=workspace, form=form, errors=[str(exc)], status=409)
    except BrazeError as exc:
        message = f"Braze could not be read: {describe_error(exc)}"
        return _page(request, workspace=workspace, form=form, errors=[message], status=502)
    if result.change_request is None:
        return _page(request, workspace=workspace, notices=result.messages)
    for message in result.messages:
        messages.warning(request, message)
    messages.success(
        request,
        f"Draft change request #{result.change_request.pk} holds "
        f"{len(result.changes.parts)} changes: read them, then submit it for review.",
    )
    return redirect("bundles:review", pk=result.change_request.pk)


@require_GET
@require_capability(Capability.PROPOSE, Capability.REVIEW, Capability.AUDIT)
def bundle_review(request: AuthenticatedRequest, pk: int) -> HttpResponse:
    """Each part of a bundle: its diff, and its outcome once applied."""
    # The roles checked are the URL's workspace's: a bundle of another workspace is not here.
    cr = change_request_get_visible(user=request.user, pk=pk, workspace=request.workspace.key)
    if cr is None or cr.resource_type != RESOURCE_TYPE:
        raise Http404("Not a content bundle.")
    current = cr.current_snapshot or {}
    parts = []
    for view in bundle_part_views(change_request=cr):
        # On a conflict, the parts whose object Braze changed since the preview.
        conflicted = bool(current) and unflat_state(view.kind, view.name, current) != view.before
        parts.append((view, snapshot_diff(view.before, view.after), conflicted))
    return render(
        request,
        "bundles/review.html",
        {"cr": cr, "parts": parts, "workspace": cr.payload.get("workspace", "")},
    )
