"""The audit list's free-text search: its pages are the plain query's, and finding them
never depends on PostgreSQL's estimate of how many entries a term matches."""

import json
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from console.audit import selectors
from console.audit.models import AuditEntry
from console.audit.selectors import audit_entries, audit_entries_page
from console.roles import Role
from tests.factories import user_with_role

ACTIONS = ["auth.sign_in", "change_request.proposed", "braze.write", "drift.detected"]


def _insert(rows: list[dict[str, Any]]) -> None:
    """Entries straight into the table, as the benchmark loads them: the search reads
    columns, not the chain, and a few thousand go in at once."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(max(seq), 0) FROM audit_entry")
        first = cursor.fetchone()[0] + 1
        cursor.executemany(
            "INSERT INTO audit_entry (seq, occurred_at, actor_name, actor_roles, user_agent,"
            " via, action, resource_type, resource_id, outcome, data, personal_digest,"
            " prev_hash, hash) VALUES (%s, now(), %s, '', '', '', %s, %s, %s, %s, %s, '', %s, %s)",
            [
                (
                    seq,
                    row.get("actor_name", f"user{seq % 7}"),
                    row.get("action", ACTIONS[seq % len(ACTIONS)]),
                    row.get("resource_type", ""),
                    row.get("resource_id", ""),
                    row.get("outcome", "failure" if seq % 5 == 0 else "success"),
                    json.dumps(row.get("data", {})),
                    f"p{seq:063d}",
                    f"h{seq:063d}",
                )
                for seq, row in enumerate(rows, start=first)
            ],
        )


def _trail(n: int) -> None:
    """n entries: common words in every few, a rare resource id among the oldest and one
    recent, names kept in data for some."""
    rows: list[dict[str, Any]] = []
    for i in range(n):
        row: dict[str, Any] = {"resource_id": f"products/sku-{(i * 7919) % 500:06d}"}
        if i in (3, 40, n - 30):
            row["resource_id"] = "products/rare-item"
        if i % 11 == 0:
            row["data"] = {"resource_name": f"Banner {i % 3}", "title": f"Edit banner {i}"}
        rows.append(row)
    _insert(rows)


def _pages(filters: dict[str, Any], size: int) -> list[list[int]]:
    """Every page, following the keyset as the list does, until one is short."""
    pages: list[list[int]] = []
    before = None
    while True:
        page = [e.seq for e in audit_entries_page(filters=filters, before=before, size=size)]
        pages.append(page)
        if len(page) < size:
            return pages
        before = page[-1]


def _plain_pages(filters: dict[str, Any], size: int) -> list[list[int]]:
    pages: list[list[int]] = []
    before = None
    while True:
        entries = audit_entries(filters=filters)
        if before is not None:
            entries = entries.filter(seq__lt=before)
        page = list(entries.values_list("seq", flat=True)[:size])
        pages.append(page)
        if len(page) < size:
            return pages
        before = page[-1]


SEARCHES = [
    {"q": "USER"},  # every entry: the first window fills the page
    {"q": "sign_in"},  # every fourth
    {"q": "SKU-0000"},  # a few in every window: the wider window
    {"q": "rare-item"},  # three, two among the oldest: the trigram indexes
    {"q": "absent"},  # none
    {"q": "banner 2"},  # a name kept in data
    {"q": "%"},  # LIKE's own characters are searched for, not interpreted
    {"q": "sign_in", "actor": "user3"},
    {"q": "sku", "outcome": "failure", "action": "braze"},
    {"q": "rare-item", "resource": "products/rare-item"},
    {"q": "sku-000", "after": 150},
]


@pytest.mark.parametrize(
    "filters", SEARCHES, ids=lambda f: "&".join(f"{k}={v}" for k, v in f.items())
)
def test_every_page_of_a_search_is_the_plain_querys(
    db: None, monkeypatch: pytest.MonkeyPatch, filters: dict[str, Any]
) -> None:
    """Windows small beside the trail, so each way of finding a page is taken."""
    monkeypatch.setattr(selectors, "SEARCH_WINDOW", 20)
    monkeypatch.setattr(selectors, "SEARCH_WINDOW_MAX", 80)
    _trail(600)
    for size in (1, 7, 51):
        assert _pages(filters, size) == _plain_pages(filters, size), size


def test_a_page_holds_the_entries_themselves(db: None) -> None:
    _trail(60)
    page = audit_entries_page(filters={"q": "rare-item"}, size=51)
    plain = list(audit_entries(filters={"q": "rare-item"}))
    assert [(e.seq, e.resource_id, e.data, e.hash) for e in page] == [
        (e.seq, e.resource_id, e.data, e.hash) for e in plain
    ]


def test_each_way_of_finding_a_page_is_taken(db: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The equality above would hold trivially if every search went one way."""
    monkeypatch.setattr(selectors, "SEARCH_WINDOW", 20)
    monkeypatch.setattr(selectors, "SEARCH_WINDOW_MAX", 80)
    _trail(600)
    gathered: list[str] = []
    original = selectors._matching_by_index

    def by_index(*args: Any, **kwargs: Any) -> Any:
        gathered.append("index")
        return original(*args, **kwargs)

    monkeypatch.setattr(selectors, "_matching_by_index", by_index)
    for q in ("user", "SKU-0000"):
        with CaptureQueriesContext(connection) as queries:
            audit_entries_page(filters={"q": q}, size=7)
        assert not gathered, q
        windows = [s["sql"] for s in queries.captured_queries if "row_number()" in s["sql"]]
        assert len(windows) == (1 if q == "user" else 2), q
    audit_entries_page(filters={"q": "rare-item"}, size=7)
    assert gathered == ["index"]


def test_a_search_inside_a_transaction_leaves_the_planner_as_it_was(db: None) -> None:
    _trail(60)
    audit_entries_page(filters={"q": "rare-item"}, before=30, size=51)
    with connection.cursor() as cursor:
        cursor.execute("SHOW enable_seqscan")
        assert cursor.fetchone()[0] == "on"


def _plans(queries: list[dict[str, str]]) -> list[dict[str, Any]]:
    """The plans of the captured statements that search the audit trail, each EXPLAINed in
    the planner settings it ran with (the SET statements are replayed in order)."""
    plans = []
    with connection.cursor() as cursor:
        cursor.execute("SAVEPOINT replay")
        for query in queries:
            sql = query["sql"]
            if sql.startswith("SET "):
                cursor.execute(sql)
            elif "audit_entry" in sql and " LIKE " in sql:
                cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}")
                plans.append(cursor.fetchone()[0][0]["Plan"])
        cursor.execute("ROLLBACK TO SAVEPOINT replay")
    return plans


def _nodes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    return [plan, *(n for child in plan.get("Plans", []) for n in _nodes(child))]


def test_a_rare_term_is_looked_up_in_the_trigram_indexes_whatever_the_estimate(
    db: None,
) -> None:
    """PostgreSQL is told (truly) that a term is common, but below the page asked for it is
    rare: three of thousands of older entries. Trusting the estimate it walks the primary
    key from there, testing every entry, as it did at ten million entries for a term it
    guessed at 570 matches. No scan of the table may test the term entry by entry without
    a bound; the trigram indexes find it."""
    _insert(
        [{"resource_id": "products/rare-item" if i in (5, 900, 2500) else "x"} for i in range(4000)]
    )
    _insert([{"resource_id": f"hot/rare-item-{i}"} for i in range(6000)])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE audit_entry")
        cursor.execute("SELECT min(seq) FROM audit_entry WHERE resource_id LIKE 'hot/%%'")
        below = cursor.fetchone()[0]
    client = Client()
    client.force_login(user_with_role(Role.AUDITOR))
    with CaptureQueriesContext(connection) as queries:
        page = client.get(reverse("audit:list"), {"q": "rare-item", "before": below})
    rare = AuditEntry.objects.filter(resource_id="products/rare-item").values_list("seq", flat=True)
    body = page.content.decode()
    assert all(f'href="{reverse("audit:detail", args=[seq])}"' in body for seq in rare), body
    plans = _plans(queries.captured_queries)
    assert plans
    for plan in plans:
        for node in _nodes(plan):
            if node.get("Relation Name") == "audit_entry" and "Bitmap" not in node["Node Type"]:
                assert "~~" not in node.get("Filter", ""), json.dumps(plan, indent=1)
    used = {n.get("Index Name") for plan in plans for n in _nodes(plan)}
    assert "audit_resource_id_trgm" in used, used
