from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.template import Context, Template
from django.template.loader import render_to_string
from django.test import RequestFactory
from django.utils.safestring import mark_safe

from console.tables import (
    Cell,
    Column,
    TablePage,
    list_template,
    table_from_queryset,
    table_from_rows,
)
from tests.factories import UserFactory


@dataclass
class Row:
    name: str
    size: int | None


COLUMNS = [
    Column[Row]("name", "Name", link=lambda r: f"/things/{r.name}/"),
    Column[Row]("size", "Size", numeric=True),
]
ROWS = [Row("beta", 2), Row("alpha", 10), Row("gamma", None)]


def test_it_sorts_in_memory_rows_by_the_requested_column_with_none_last() -> None:
    request = RequestFactory().get("/things/", {"sort": "size"})
    table = table_from_rows(request, ROWS, COLUMNS, default_sort="name", empty_message="none")
    assert [row[0].value for row in table.rows] == ["beta", "alpha", "gamma"]
    size_header = table.headers[1]
    assert size_header.aria_sort == "ascending"
    assert size_header.sort_url == "?sort=-size"  # clicking again reverses


def test_it_ignores_an_unknown_sort_column_and_uses_the_default() -> None:
    request = RequestFactory().get("/things/", {"sort": "password"})
    table = table_from_rows(request, ROWS, COLUMNS, default_sort="-name", empty_message="none")
    assert [row[0].value for row in table.rows] == ["gamma", "beta", "alpha"]


def test_it_pages_rows_and_keeps_filters_in_the_pager_links() -> None:
    rows = [Row(f"r{i:02}", i) for i in range(30)]
    request = RequestFactory().get("/things/", {"q": "r", "page": "2"})
    table = table_from_rows(
        request, rows, COLUMNS, default_sort="name", empty_message="none", page_size=25
    )
    assert len(table.rows) == 5
    assert table.summary == "26–30 of 30"
    assert table.previous_url == "?q=r&page=1"
    assert table.next_url is None


@pytest.mark.django_db
def test_it_pages_and_sorts_a_queryset_on_declared_columns_only() -> None:
    for name in ["carol", "alice", "bob"]:
        UserFactory(username=name)
    columns = [Column[User]("username", "User")]
    request = RequestFactory().get("/u/", {"sort": "-username"})
    table = table_from_queryset(
        request, User.objects.all(), columns, default_sort="username", empty_message="none"
    )
    assert [row[0].value for row in table.rows] == ["carol", "bob", "alice"]


def test_the_shared_template_shows_the_empty_message_when_there_are_no_rows() -> None:
    request = RequestFactory().get("/things/")
    table = table_from_rows(
        request, [], COLUMNS, default_sort="name", empty_message="No things yet."
    )
    html = render_to_string("console/_table.html", {"table": table})
    assert "No things yet." in html
    assert "<table>" not in html


def test_the_shared_template_renders_sort_links_that_target_the_results_partial() -> None:
    request = RequestFactory().get("/things/")
    table = table_from_rows(request, ROWS, COLUMNS, default_sort="name", empty_message="none")
    html = render_to_string("console/_table.html", {"table": table})
    assert 'aria-sort="ascending"' in html
    assert 'hx-target="#results"' in html
    assert '<a href="/things/alpha/">alpha</a>' in html


def test_only_htmx_requests_aimed_at_the_results_get_the_partial() -> None:
    factory = RequestFactory()
    plain = factory.get("/things/")
    plain.htmx = False  # type: ignore[attr-defined]
    assert list_template(plain, "x.html") == "x.html"
    aimed = factory.get("/things/", headers={"HX-Request": "true", "HX-Target": "results"})
    aimed.htmx = True  # type: ignore[attr-defined]
    assert list_template(aimed, "x.html") == "x.html#results"


def test_rows_render_each_cell_as_the_template_showed_it(settings: Any) -> None:
    """The rows are built in Python for speed; each cell reads exactly as the template's
    `{{ cell.value|default_if_none:"—" }}` in a `<td>` (a link when the column links)."""
    settings.TIME_ZONE = "Europe/Paris"
    values: list[object] = [
        None,
        0,
        12345,
        2.5,
        "<b>bold</b> & 'quoted'",
        mark_safe("<mark>kept</mark>"),  # a sentence's own markup, as the audit list has
        datetime(2026, 12, 3, 17, 0, tzinfo=UTC),
        date(2026, 12, 3),
        True,
        ["a", "b"],
    ]
    rows = [
        [Cell(value, url, numeric) for value in values]
        for url in (None, "/things/?a=1&b=<2>")
        for numeric in (False, True)
    ]
    table = TablePage(headers=[], rows=rows, empty_message="")
    cell_template = Template(
        '{% for cell in row %}<td{% if cell.numeric %} class="num"{% endif %}>'
        '{% if cell.url %}<a href="{{ cell.url }}">{{ cell.value|default_if_none:"—" }}</a>'
        '{% else %}{{ cell.value|default_if_none:"—" }}{% endif %}</td>{% endfor %}'
    )

    for row, html in zip(rows, table.rows_html, strict=True):
        assert html == cell_template.render(Context({"row": row}))
