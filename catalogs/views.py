"""Catalog screens. Reads come from the local mirror; writes become change requests."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

from django.contrib import messages
from django.http import HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils.http import RFC3986_SUBDELIMS
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from catalogs import freshness, rules, schema_selectors, selectors, services
from catalogs.forms import (
    CatalogCreateForm,
    CatalogDeleteForm,
    FieldRowFormSet,
    ItemFilterForm,
    ItemForm,
    schema_errors,
    schema_fields,
)
from catalogs.models import Catalog, CatalogItem
from console.access import require_capability
from console.changes.models import OPEN_STATES, ChangeRequest
from console.changes.selectors import change_requests_visible
from console.http import AuthenticatedRequest, htmx_targets
from console.roles import Capability, user_capabilities, workspaces_other_where
from console.spreadsheet import cell_inert
from console.tables import (
    Column,
    TablePage,
    cells_for,
    headers_for,
    list_template,
    sort_from_request,
    table_from_queryset,
)


def _change_request_url(cr: ChangeRequest, fallback: str) -> str:
    try:
        return cr.get_absolute_url()
    except NoReverseMatch:
        return fallback


def _freshness(catalog: Catalog) -> str:
    if catalog.last_full_sync_at is None:
        return "Not mirrored yet"
    return f"Full pass {catalog.last_full_sync_at:%Y-%m-%d %H:%M} UTC"


CATALOG_COLUMNS: list[Column[Catalog]] = [
    Column("name", "Name", link=lambda c: c.get_absolute_url()),
    Column("description", "Description"),
    Column("braze_item_count", "Items (Braze)", numeric=True),
    Column("mirror_item_count", "Items (mirror)", numeric=True),
    Column("fields", "Fields", value=lambda c: len(c.fields), sortable=False, numeric=True),
    Column("braze_updated_at", "Updated in Braze"),
    Column("last_full_sync_at", "Mirror freshness", value=_freshness),
]


@require_GET
@require_capability(Capability.BROWSE)
def catalog_list(request: AuthenticatedRequest) -> HttpResponse:
    queryset = Catalog.objects.filter(workspace=request.workspace.key, present_in_braze=True)
    search = request.GET.get("q", "").strip()
    if search:
        queryset = queryset.filter(name__icontains=search)
    table = table_from_queryset(
        request,
        queryset,
        CATALOG_COLUMNS,
        default_sort="name",
        empty_message="No catalogs in the mirror match. “Refresh from Braze” lists them.",
    )
    can_propose = Capability.PROPOSE in user_capabilities(request.user)
    ctx = {"table": table, "q": search, "can_propose": can_propose}
    return render(request, list_template(request, "catalogs/catalog_list.html"), ctx)


@require_POST
@require_capability(Capability.BROWSE)
def catalog_list_refresh(request: AuthenticatedRequest) -> HttpResponse:
    if services.catalog_list_refresh_request(actor=request.user):
        messages.success(request, "The catalog list will be refreshed from Braze in a moment.")
    else:
        messages.info(
            request, "A refresh from Braze is already queued; the list updates when it has run."
        )
    return redirect("catalogs:list")


@require_GET
@require_capability(Capability.BROWSE)
def catalog_detail(request: AuthenticatedRequest, name: str) -> HttpResponse:
    catalog = selectors.catalog_get(name=name, workspace=request.workspace.key)
    sample_fields = [str(f["name"]) for f in catalog.value_fields()][:6]
    field_uses, content_uses = schema_selectors.catalog_schema_overview(catalog=catalog)
    sync = selectors.catalog_sync_latest(catalog=catalog)
    ctx = {
        "catalog": catalog,
        "field_uses": field_uses,
        "content_uses": content_uses,
        "selections": schema_selectors.catalog_selections(catalog=catalog),
        "sync": sync,
        "freshness": freshness.catalog_freshness(catalog=catalog, current=sync),
        "samples": [
            (item.item_id, [item.data.get(n) for n in sample_fields])
            for item in selectors.catalog_item_sample(catalog=catalog)
        ],
        "sample_fields": sample_fields,
        "can_propose": Capability.PROPOSE in user_capabilities(request.user, request.workspace.key),
        # Other workspaces this person may propose in: the items can be copied there.
        "copy_targets": workspaces_other_where(
            request.user, Capability.PROPOSE, besides=request.workspace.key
        )
        if catalog.mirror_item_count
        else [],
    }
    template = "catalogs/catalog_detail.html"
    if htmx_targets(request, "sync"):
        template += "#sync"
    return render(request, template, ctx)


@require_POST
@require_capability(Capability.BROWSE)
def catalog_refresh(request: AuthenticatedRequest, name: str) -> HttpResponse:
    catalog = selectors.catalog_get(name=name, workspace=request.workspace.key)
    sync = services.catalog_sync_request(catalog=catalog, actor=request.user)
    messages.success(request, f"Refreshing {catalog.name} from Braze (pass #{sync.pk}).")
    return redirect(catalog.get_absolute_url())


@require_http_methods(["GET", "POST"])
@require_capability(Capability.PROPOSE)
def catalog_create(request: AuthenticatedRequest) -> HttpResponse:
    initial_rows = [{"name": "id", "type": "string"}, {"name": "", "type": "string"}]
    form = CatalogCreateForm(request.POST or None)
    formset = (
        FieldRowFormSet(request.POST, prefix="fields")
        if request.method == "POST"
        else FieldRowFormSet(initial=initial_rows, prefix="fields")
    )
    errors: list[str] = []
    if request.method == "POST":
        if "add_field" in request.POST and formset.is_valid():
            # Rebuild with one more empty row; nothing the user typed is lost.
            rows = [f.cleaned_data for f in formset.forms] + [{"name": "", "type": "string"}]
            formset = FieldRowFormSet(initial=rows, prefix="fields")
            form = CatalogCreateForm(initial=request.POST.dict())
        elif form.is_valid() and formset.is_valid() and not (errors := schema_errors(formset)):
            cr = services.catalog_propose_create(
                actor=request.user,
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
                fields=schema_fields(formset),
            )
            messages.success(request, "Your new catalog is waiting for review.")
            return redirect(_change_request_url(cr, reverse("catalogs:list")))
    ctx = {"form": form, "formset": formset, "schema_errors": errors}
    return render(request, "catalogs/catalog_create.html", ctx)


@require_http_methods(["GET", "POST"])
@require_capability(Capability.PROPOSE)
def catalog_delete(request: AuthenticatedRequest, name: str) -> HttpResponse:
    catalog = selectors.catalog_get(name=name, workspace=request.workspace.key)
    form = CatalogDeleteForm(request.POST or None, catalog=catalog)
    if request.method == "POST" and form.is_valid():
        cr = services.catalog_propose_delete(actor=request.user, catalog=catalog)
        messages.success(request, "Deleting this catalog is waiting for review.")
        return redirect(_change_request_url(cr, catalog.get_absolute_url()))
    return render(request, "catalogs/catalog_delete.html", {"catalog": catalog, "form": form})


def _item_url(catalog: Catalog, item: CatalogItem) -> str:
    return reverse("catalogs:item_detail", args=[catalog.name, item.item_id])


def _item_urls(catalog: Catalog) -> Callable[[CatalogItem], str]:
    """Each item's page address as _item_url gives it, from one reverse() per page: a page
    lists 50 items, and a reverse() costs tens of microseconds, one a quoted id a fraction
    of one. Ids the URL pattern refuses (empty, or with a slash) still go to reverse()."""
    head = reverse("catalogs:item_detail", args=[catalog.name, "-"]).removesuffix("-/")

    def url(item: CatalogItem) -> str:
        if not item.item_id or "/" in item.item_id:
            return _item_url(catalog, item)
        # reverse()'s own quoting (django.urls.resolvers), of the id alone.
        return f"{head}{quote(item.item_id, safe=RFC3986_SUBDELIMS + '/~:@')}/"

    return url


def _item_table(request: AuthenticatedRequest, catalog: Catalog, form: ItemFilterForm) -> TablePage:
    shown = form.columns()
    columns: list[Column[CatalogItem]] = [
        Column("id", "ID", value=lambda i: i.item_id, link=_item_urls(catalog))
    ]
    types = catalog.field_types()
    for name in shown:
        columns.append(
            Column(
                name,
                name,
                value=lambda i, n=name: i.data.get(n),  # type: ignore[misc]
                numeric=types.get(name) == "number",
            )
        )
    # Every field sorts, shown or not (?sort=field); headers sort the shown ones.
    sortable = columns + [Column(str(f["name"]), str(f["name"])) for f in catalog.value_fields()]
    current, descending = sort_from_request(request, sortable, "id")
    sort = current.key if current else "id"
    query = form.item_query(sort=sort, descending=descending)
    page = selectors.catalog_item_page(
        catalog=catalog,
        query=query,
        after=request.GET.get("after") or None,
        before=request.GET.get("before") or None,
    )
    params = request.GET.copy()
    params.pop("after", None)
    params.pop("before", None)

    def link(**change: str) -> str:
        query_params = params.copy()
        for key, value in change.items():
            query_params[key] = value
        return "?" + query_params.urlencode()

    filtered = bool(query.search or query.filters)
    count = "" if filtered else f" of {catalog.mirror_item_count:,}"
    summary = f"{len(page.items)} items shown{count}" if page.items else ""
    return TablePage(
        headers=headers_for(request, columns, current, descending),
        rows=[cells_for(item, columns) for item in page.items],
        empty_message="No items match." if filtered else "No items in the mirror yet.",
        previous_url=link(before=page.previous_before) if page.previous_before else None,
        next_url=link(after=page.next_after) if page.next_after else None,
        summary=summary,
    )


@require_GET
@require_capability(Capability.BROWSE)
def item_list(request: AuthenticatedRequest, name: str) -> HttpResponse:
    catalog = selectors.catalog_get(name=name, workspace=request.workspace.key)
    form = ItemFilterForm(request.GET or None, catalog=catalog)
    table = _item_table(request, catalog, form)
    export_query = request.GET.copy()
    for key in ("after", "before"):
        export_query.pop(key, None)
    ctx = {
        "catalog": catalog,
        "form": form,
        "table": table,
        "export_url": reverse("catalogs:item_export", args=[catalog.name])
        + ("?" + export_query.urlencode() if export_query else ""),
        "can_propose": Capability.PROPOSE in user_capabilities(request.user),
    }
    return render(request, list_template(request, "catalogs/item_list.html"), ctx)


class _Echo:
    def write(self, value: str) -> str:
        return value


@require_GET
@require_capability(Capability.BROWSE)
def item_export(request: AuthenticatedRequest, name: str) -> HttpResponseBase:
    catalog = selectors.catalog_get(name=name, workspace=request.workspace.key)
    form = ItemFilterForm(request.GET or None, catalog=catalog)
    names = [str(f["name"]) for f in catalog.value_fields()]
    sort = request.GET.get("sort", "id")
    if sort.removeprefix("-") not in ("id", *names):
        # Only the catalog's own fields sort (each has an index); any other key would be a
        # sort of the whole mirror on an expression no index covers.
        messages.error(
            request, "The export can only be sorted by id or by a field of this catalog."
        )
        return redirect("catalogs:items", name=catalog.name)
    query = form.item_query(sort=sort.removeprefix("-"), descending=sort.startswith("-"))
    writer = csv.writer(_Echo())

    def rows() -> Iterator[Any]:
        yield writer.writerow([cell_inert(v) for v in ("id", *names)])
        for item in selectors.catalog_items_iter(catalog=catalog, query=query):
            values = (item.item_id, *(_csv_value(item.data.get(n)) for n in names))
            yield writer.writerow([cell_inert(v) for v in values])

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{catalog.name}.csv"'
    return response


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)  # as the upload reads object cells
    return value


@require_GET
@require_capability(Capability.BROWSE)
def item_detail(request: AuthenticatedRequest, name: str, item_id: str) -> HttpResponse:
    catalog = selectors.catalog_get(name=name, workspace=request.workspace.key)
    item = selectors.catalog_item_get(catalog=catalog, item_id=item_id)
    types = catalog.field_types()
    values = [
        (str(f["name"]), types[str(f["name"])], item.data.get(str(f["name"])))
        for f in catalog.value_fields()
    ]
    # Viewers browse content but not the change requests about it.
    pending = (
        change_requests_visible(user=request.user, workspace=request.workspace.key)
        .filter(
            resource_type=services.ITEM_RESOURCE,
            identifier=services.item_identifier(catalog, item_id),
            state__in=OPEN_STATES,
        )
        .order_by("-id")
    )
    ctx = {
        "catalog": catalog,
        "item": item,
        "values": values,
        "pending": list(pending),
        "can_propose": Capability.PROPOSE in user_capabilities(request.user),
    }
    return render(request, "catalogs/item_detail.html", ctx)


@require_http_methods(["GET", "POST"])
@require_capability(Capability.PROPOSE)
def item_create(request: AuthenticatedRequest, name: str) -> HttpResponse:
    catalog = selectors.catalog_get(name=name, workspace=request.workspace.key)
    form = ItemForm(request.POST or None, catalog=catalog, editing=False)
    if request.method == "POST" and form.is_valid():
        item_id = form.cleaned_data["item_id"]
        if selectors.catalog_item_exists(catalog=catalog, item_id=item_id):
            form.add_error(
                "item_id", "The item already exists in the catalog (item-already-exists)."
            )
        else:
            cr = services.catalog_item_propose(
                actor=request.user,
                catalog=catalog,
                action="create",
                item_id=item_id,
                values=form.cleaned_data["values"],
            )
            messages.success(request, f"Creating {item_id} is waiting for review.")
            return redirect(_change_request_url(cr, reverse("catalogs:items", args=[name])))
    ctx = {"catalog": catalog, "form": form, "item": None}
    return render(request, "catalogs/item_form.html", ctx)


@require_http_methods(["GET", "POST"])
@require_capability(Capability.PROPOSE)
def item_edit(request: AuthenticatedRequest, name: str, item_id: str) -> HttpResponse:
    catalog = selectors.catalog_get(name=name, workspace=request.workspace.key)
    item = selectors.catalog_item_get(catalog=catalog, item_id=item_id)
    form = ItemForm(
        request.POST or None,
        catalog=catalog,
        editing=True,
        initial=ItemForm.initial_for(catalog, item.data),
    )
    if request.method == "POST" and form.is_valid():
        values = form.cleaned_data["values"]
        types = catalog.field_types()
        if all(rules.same_value(types.get(k), item.data.get(k), v) for k, v in values.items()):
            form.add_error(None, "Nothing changed: edit at least one value.")
        else:
            cr = services.catalog_item_propose(
                actor=request.user,
                catalog=catalog,
                action="update",
                item_id=item_id,
                values=values,
            )
            messages.success(request, f"Your edit of {item_id} is waiting for review.")
            return redirect(_change_request_url(cr, _item_url(catalog, item)))
    ctx = {"catalog": catalog, "form": form, "item": item}
    return render(request, "catalogs/item_form.html", ctx)


@require_http_methods(["GET", "POST"])
@require_capability(Capability.PROPOSE)
def item_delete(request: AuthenticatedRequest, name: str, item_id: str) -> HttpResponse:
    catalog = selectors.catalog_get(name=name, workspace=request.workspace.key)
    item = selectors.catalog_item_get(catalog=catalog, item_id=item_id)
    if request.method == "POST":
        cr = services.catalog_item_propose(
            actor=request.user, catalog=catalog, action="delete", item_id=item_id, values={}
        )
        messages.success(request, f"Deleting {item_id} is waiting for review.")
        return redirect(_change_request_url(cr, _item_url(catalog, item)))
    return render(request, "catalogs/item_delete.html", {"catalog": catalog, "item": item})
