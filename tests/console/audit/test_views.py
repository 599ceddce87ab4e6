import csv
import io
import json
from collections.abc import Iterator
from typing import cast

from django.contrib.auth.models import User
from django.db import connection
from django.http import HttpResponseBase, StreamingHttpResponse
from django.test import Client
from django.urls import reverse

from console.audit.models import AuditEntry
from console.audit.selectors import SEARCHED_COLUMNS, SEARCHED_DATA_KEYS, audit_entries
from console.audit.services import SYSTEM, audit_append
from console.roles import Role
from tests.factories import user_with_role


def _auditor() -> Client:
    client = Client()
    client.force_login(user_with_role(Role.AUDITOR))
    return client


def test_it_filters_by_action_and_outcome(db: None, editor: User) -> None:
    audit_append(actor=editor, action="change_request.proposed", resource_id="shoe-1")
    audit_append(actor=editor, action="braze.write", outcome="failure", resource_id="shoe-1")
    client = _auditor()
    page = client.get(reverse("audit:list"), {"action": "braze", "outcome": "failure"})
    body = page.content.decode()
    assert "braze.write" in body
    assert "change_request.proposed" not in body


def test_the_list_pages_by_sequence(db: None) -> None:
    for i in range(60):
        audit_append(actor=SYSTEM, action="test.page", data={"i": i})
    client = _auditor()
    first = client.get(reverse("audit:list"), {"action": "test.page"}).content.decode()
    assert "before=" in first
    last = AuditEntry.objects.filter(action="test.page").order_by("seq")[9].seq
    params: dict[str, str | int] = {"action": "test.page", "before": last + 1}
    second = client.get(reverse("audit:list"), params)
    assert second.status_code == 200


def test_the_detail_shows_the_entry(db: None, editor: User) -> None:
    entry = audit_append(
        actor=editor,
        action="test.detail",
        data={"diff": [{"field": "price", "before": 1, "after": 2, "change": "changed"}]},
    )
    page = _auditor().get(reverse("audit:detail", args=[entry.seq])).content.decode()
    assert entry.hash in page
    assert "price" in page


def _streamed(response: HttpResponseBase) -> Iterator[bytes]:
    """A streamed response's chunks: the test client answers with a StreamingHttpResponse."""
    return cast(Iterator[bytes], cast(StreamingHttpResponse, response).streaming_content)


def test_csv_export_is_streamed_neutralised_and_audited(db: None, editor: User) -> None:
    audit_append(actor=editor, action="test.export", resource_id="=HYPERLINK(evil)")
    response = _auditor().post(reverse("audit:export"), {"action": "test.export"})
    assert response.streaming
    rows = list(csv.reader(io.StringIO(b"".join(_streamed(response)).decode())))
    assert rows[0][0] == "seq"
    assert len(rows) == 2
    assert rows[1][10] == "'=HYPERLINK(evil)"
    exported = AuditEntry.objects.get(action="audit.exported")
    assert exported.data["format"] == "csv"


def test_jsonl_export(db: None, editor: User) -> None:
    audit_append(actor=editor, action="test.jsonl", data={"x": 1})
    response = _auditor().post(reverse("audit:export"), {"action": "test.jsonl", "format": "jsonl"})
    lines = b"".join(_streamed(response)).decode().splitlines()
    assert [json.loads(line)["data"] for line in lines] == [{"x": 1}]


def test_free_text_search_can_be_answered_by_the_trigram_indexes(db: None, editor: User) -> None:
    """At millions of entries a search for a rare term must not read the whole table: each
    searched column's UPPER(...) LIKE matches an index's expression exactly."""
    audit_append(actor=editor, action="test.search", resource_id="products/sku-004242")
    queryset = audit_entries(filters={"q": "sku-0042"})
    assert [e.resource_id for e in queryset] == ["products/sku-004242"]
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        # Walking the primary key and filtering is what PostgreSQL may do for common
        # terms; forbidding it (and the full scan) shows the indexes fit the query.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    for column in SEARCHED_COLUMNS:
        assert f"audit_{column}_trgm" in plan, plan
    for key in SEARCHED_DATA_KEYS:
        assert f"audit_data_{key}_trgm" in plan, plan


def test_an_auditor_finds_a_content_blocks_events_by_its_name(db: None, editor: User) -> None:
    """Entries about a Content Block carry its Braze id; the name they kept finds them."""
    audit_append(
        actor=editor,
        action="change_request.proposed",
        resource_type="content_block",
        resource_id="5f1c-block-id",
        data={
            "resource_name": "spring_sale_banner",
            "title": "Edit Content Block spring_sale_banner",
        },
    )
    audit_append(
        actor=SYSTEM,
        action="content.external_change",
        resource_type="content_block",
        resource_id="5f1c-block-id",
        data={"name": "spring_sale_banner"},
    )
    audit_append(actor=editor, action="change_request.proposed", resource_id="other-block")
    body = _auditor().get(reverse("audit:list"), {"q": "SALE_banner"}).content.decode()
    assert body.lower().count("content block spring_sale_banner") == 2
    assert "other-block" not in body


def test_changes_made_outside_the_console_after_an_entry_are_one_filter(
    db: None, editor: User
) -> None:
    block, item = "content_block", "catalog_item"
    seen = audit_append(
        actor=SYSTEM, action="content.external_change", resource_type=block, resource_id="b-1"
    )
    audit_append(
        actor=SYSTEM,
        action="catalog_item.external_changed",
        resource_type=item,
        resource_id="c/i-2",
    )
    audit_append(
        actor=editor, action="change_request.proposed", resource_type=block, resource_id="b-3"
    )
    found = audit_entries(filters={"outside": True, "after": seen.seq})
    assert [e.resource_id for e in found] == ["c/i-2"]
    body = (
        _auditor()
        .get(reverse("audit:list"), {"outside": "on", "after": str(seen.seq)})
        .content.decode()
    )
    assert "c/i-2" in body
    assert "b-1" not in body
    assert "b-3" not in body
