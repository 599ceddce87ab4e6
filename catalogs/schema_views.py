"""Screens for a catalog's fields and selections. Every write becomes a change request."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from catalogs import schema_selectors, schema_services, selectors
from catalogs.schema_forms import ConfirmNameForm, FieldAddForm, SelectionForm
from console.access import require_capability
from console.changes.models import ChangeRequest
from console.http import AuthenticatedRequest, htmx_targets
from console.roles import Capability


def _request_url(cr: ChangeRequest, fallback: str) -> str:
    from django.urls import NoReverseMatch

    try:
        return cr.get_absolute_url()
    except NoReverseMatch:
        return fallback


@require_http_methods(["GET", "POST"])
@require_capability(Capability.PROPOSE)
def field_add(request: AuthenticatedRequest, name: str) -> HttpResponse:
    catalog = selectors.catalog_get(name=name, workspace=request.workspace.key)
    form = FieldAddForm(request.POST or None, catalog=catalog)
    if request.method == "POST" and form.is_valid():
        requests = schema_services.catalog_fields_propose_create(
            actor=request.user, catalog=catalog, fields=form.new_fields()
        )
        if len(requests) == 1:
            messages.success(request, "Adding this field is waiting for review.")
            return redirect(_request_url(requests[0], catalog.get_absolute_url()))
        numbers = ", ".join(f"#{cr.pk}" for cr in requests)
        messages.success(
            request,
            f"Adding these {len(requests)} fields is waiting for review: change requests "
            f"{numbers}, each reviewed on its own.",
        )
        return redirect(f"{reverse('changes:list')}?view=mine")
    return render(request, "catalogs/field_add.html", {"catalog": catalog, "form": form})


@require_http_methods(["GET", "POST"])
@require_capability(Capability.PROPOSE)
def field_delete(request: AuthenticatedRequest, name: str, field_name: str) -> HttpResponse:
    catalog = selectors.catalog_get(name=name, workspace=request.workspace.key)
    dependents = schema_selectors.catalog_field_dependents(catalog=catalog, field_name=field_name)
    form = ConfirmNameForm(request.POST or None, expected=field_name)
    refusal: list[str] = []
    if request.method == "POST" and form.is_valid():
        try:
            cr = schema_services.catalog_field_propose_delete(
                actor=request.user, catalog=catalog, field_name=field_name
            )
        except schema_services.SchemaChangeRefused as refused:
            refusal = refused.errors
        else:
            messages.success(request, "Deleting this field is waiting for review.")
            return redirect(_request_url(cr, catalog.get_absolute_url()))
    ctx = {
        "catalog": catalog,
        "field_name": field_name,
        "dependents": dependents,
        "form": form,
        "refusal": refusal,
    }
    return render(request, "catalogs/field_delete.html", ctx)


@require_http_methods(["GET", "POST"])
@require_capability(Capability.PROPOSE)
def selection_create(request: AuthenticatedRequest, name: str) -> HttpResponse:
    catalog = selectors.catalog_get(name=name, workspace=request.workspace.key)
    preview_only = htmx_targets(request, "preview")
    data = request.POST if request.method == "POST" else None
    form = SelectionForm(data, catalog=catalog, initial={"results_limit": 10})
    preview: list[dict[str, object]] = []
    truncated = False
    if data is not None and form.is_valid():
        definition = form.definition()
        preview, truncated = schema_selectors.catalog_selection_preview(
            catalog=catalog, definition=definition
        )
        if not preview_only and "propose" in request.POST:
            cr = schema_services.catalog_selection_propose_create(
                actor=request.user, catalog=catalog, definition=definition
            )
            messages.success(request, "Your new selection is waiting for review.")
            return redirect(_request_url(cr, catalog.get_absolute_url()))
    columns = [str(f["name"]) for f in catalog.value_fields()][:6]
    ctx = {
        "catalog": catalog,
        "form": form,
        "preview": [(i["id"], [i.get(c) for c in columns]) for i in preview],
        "preview_columns": columns,
        "truncated": truncated,
        "previewed": data is not None,
    }
    template = "catalogs/selection_form.html"
    if preview_only:
        template += "#preview"
    return render(request, template, ctx)


@require_http_methods(["GET", "POST"])
@require_capability(Capability.PROPOSE)
def selection_delete(request: AuthenticatedRequest, name: str, selection_name: str) -> HttpResponse:
    catalog = selectors.catalog_get(name=name, workspace=request.workspace.key)
    selection = schema_selectors.catalog_selection_get(catalog=catalog, name=selection_name)
    dependents = schema_selectors.catalog_selection_dependents(
        catalog=catalog, selection_name=selection_name
    )
    form = ConfirmNameForm(request.POST or None, expected=selection_name)
    if request.method == "POST" and form.is_valid():
        cr = schema_services.catalog_selection_propose_delete(
            actor=request.user, selection=selection
        )
        messages.success(request, "Deleting this selection is waiting for review.")
        return redirect(_request_url(cr, catalog.get_absolute_url()))
    ctx = {"catalog": catalog, "selection": selection, "dependents": dependents, "form": form}
    return render(request, "catalogs/selection_delete.html", ctx)
