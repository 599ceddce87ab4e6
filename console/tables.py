"""The one list shape every resource screen shares: sortable columns, filters, a pager.

A screen declares its columns once; `table_from_queryset` (database rows, offset pages)
or `table_from_rows` (rows fetched from Braze) turns request parameters into a
`TablePage` that `console/_table.html` renders. Screens with their own paging (keyset
pagination over a million catalog items) build a `TablePage` directly.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.core.paginator import EmptyPage, PageNotAnInteger, Paginator
from django.db.models import F, QuerySet
from django.http import HttpRequest, QueryDict
from django.utils.formats import localize
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.timezone import is_aware, localtime

from console.http import htmx_targets

DEFAULT_PAGE_SIZE = 25


@dataclass(frozen=True, slots=True)
class Column[T]:
    key: str  # the sort parameter value, and by default the attribute read for the cell
    label: str
    value: Callable[[T], object] | None = None
    link: Callable[[T], str | None] | None = None
    order_by: str | None = None  # database field for sorting; defaults to key
    sortable: bool = True
    numeric: bool = False

    def cell_value(self, row: T) -> object:
        if self.value is not None:
            return self.value(row)
        if isinstance(row, dict):
            return row.get(self.key)
        return getattr(row, self.key, None)


@dataclass(frozen=True, slots=True)
class Cell:
    value: object
    url: str | None
    numeric: bool


@dataclass(frozen=True, slots=True)
class Header:
    label: str
    sort_url: str | None
    aria_sort: str | None  # "ascending", "descending", or None when not the sort column


@dataclass(slots=True)
class TablePage:
    headers: list[Header]
    rows: list[list[Cell]]
    empty_message: str
    previous_url: str | None = None
    next_url: str | None = None
    summary: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_empty(self) -> bool:
        return not self.rows

    @property
    def rows_html(self) -> list[SafeString]:
        """Each row's cells as `_table.html` showed them cell by cell: a page of a catalog's
        items is 50 rows of a dozen cells, which the template engine took longer to render
        than the database took to find."""
        # Safe: every part comes from format_html.
        return [mark_safe("".join(_cell_html(cell) for cell in row)) for row in self.rows]  # noqa: S308


def _cell_html(cell: Cell) -> str:
    # What {{ cell.value|default_if_none:"—" }} prints: local time, localised, escaped.
    value = "—" if cell.value is None else cell.value
    if isinstance(value, datetime) and is_aware(value):
        value = localtime(value)
    text = conditional_escape(str(localize(value)))
    inner = format_html('<a href="{}">{}</a>', cell.url, text) if cell.url else text
    return format_html('<td class="num">{}</td>' if cell.numeric else "<td>{}</td>", inner)


def _with(params: QueryDict, **changes: object) -> str:
    query = params.copy()
    for key, value in changes.items():
        if value is None or value == "":
            query.pop(key, None)
        else:
            query[key] = str(value)
    encoded = query.urlencode()
    return f"?{encoded}" if encoded else "?"


def sort_from_request[T](
    request: HttpRequest, columns: Sequence[Column[T]], default: str
) -> tuple[Column[T] | None, bool]:
    """The requested sort column (only a declared, sortable one) and its direction."""
    raw = request.GET.get("sort", default)
    descending = raw.startswith("-")
    key = raw.removeprefix("-")
    column = next((c for c in columns if c.key == key and c.sortable), None)
    if column is None:
        default_key = default.removeprefix("-")
        column = next((c for c in columns if c.key == default_key), None)
        descending = default.startswith("-")
    return column, descending


def headers_for[T](
    request: HttpRequest, columns: Sequence[Column[T]], current: Column[T] | None, descending: bool
) -> list[Header]:
    headers = []
    for column in columns:
        if not column.sortable:
            headers.append(Header(column.label, None, None))
            continue
        is_current = current is not None and column.key == current.key
        next_sort = f"-{column.key}" if is_current and not descending else column.key
        aria = ("descending" if descending else "ascending") if is_current else None
        # A new sort starts again at the first page.
        headers.append(Header(column.label, _with(request.GET, sort=next_sort, page=None), aria))
    return headers


def cells_for[T](row: T, columns: Sequence[Column[T]]) -> list[Cell]:
    return [
        Cell(column.cell_value(row), column.link(row) if column.link else None, column.numeric)
        for column in columns
    ]


def _page_number(request: HttpRequest) -> int:
    try:
        return max(1, int(request.GET.get("page", "1")))
    except ValueError:
        return 1


def table_from_queryset[T](
    request: HttpRequest,
    queryset: QuerySet[Any],
    columns: Sequence[Column[T]],
    *,
    default_sort: str,
    empty_message: str,
    page_size: int = DEFAULT_PAGE_SIZE,
) -> TablePage:
    column, descending = sort_from_request(request, columns, default_sort)
    if column is not None:
        expression = F(column.order_by or column.key)
        ordered = expression.desc(nulls_last=True) if descending else expression.asc()
        queryset = queryset.order_by(ordered, "-pk" if descending else "pk")
    paginator = Paginator(queryset, page_size)
    try:
        page = paginator.page(_page_number(request))
    except (EmptyPage, PageNotAnInteger):
        page = paginator.page(paginator.num_pages)
    return TablePage(
        headers=headers_for(request, columns, column, descending),
        rows=[cells_for(row, columns) for row in page.object_list],
        empty_message=empty_message,
        previous_url=_with(request.GET, page=page.previous_page_number())
        if page.has_previous()
        else None,
        next_url=_with(request.GET, page=page.next_page_number()) if page.has_next() else None,
        summary=f"{page.start_index()}–{page.end_index()} of {paginator.count}"
        if paginator.count
        else "",
    )


def _sort_key(value: object) -> tuple[int, object]:
    # None sorts last; mixed types compare by their text so sorting never raises.
    if value is None:
        return (2, "")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, value)
    return (1, str(value).lower())


def table_from_rows[T](
    request: HttpRequest,
    rows: Sequence[T],
    columns: Sequence[Column[T]],
    *,
    default_sort: str,
    empty_message: str,
    page_size: int = DEFAULT_PAGE_SIZE,
) -> TablePage:
    """For short lists already in memory (e.g. one Braze list call)."""
    column, descending = sort_from_request(request, columns, default_sort)
    ordered = list(rows)
    if column is not None:
        ordered.sort(key=lambda row: _sort_key(column.cell_value(row)), reverse=descending)
    total = len(ordered)
    pages = max(1, -(-total // page_size))
    number = min(_page_number(request), pages)
    start = (number - 1) * page_size
    chunk = ordered[start : start + page_size]
    return TablePage(
        headers=headers_for(request, columns, column, descending),
        rows=[cells_for(row, columns) for row in chunk],
        empty_message=empty_message,
        previous_url=_with(request.GET, page=number - 1) if number > 1 else None,
        next_url=_with(request.GET, page=number + 1) if number < pages else None,
        summary=f"{start + 1}–{start + len(chunk)} of {total}" if total else "",
    )


def list_template(request: HttpRequest, template: str) -> str:
    """htmx requests from the filter bar or pager get only the results partial."""
    if htmx_targets(request, "results"):
        return f"{template}#results"
    return template
