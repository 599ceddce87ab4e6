"""Every entry names its workspace, and the workspace is part of what its hash covers; entries
written before workspaces (no workspace) verify exactly as they did."""

import csv
import io
import json
from typing import Any

import psycopg
import pytest
from django.db import transaction
from django.test import Client

from console.audit import hashing
from console.audit.context import Origin, audit_origin
from console.audit.exports import csv_stream, jsonl_stream
from console.audit.selectors import audit_entries
from console.audit.services import SYSTEM, audit_append
from console.audit.verify import audit_verify
from console.roles import Role
from tests.factories import user_with_role

pytestmark = pytest.mark.django_db(transaction=True)

FIELDS: dict[str, Any] = {
    "seq": 1,
    "occurred_at": "2026-12-03T12:00:00.000000+00:00",
    "actor_id": None,
    "actor_name": "system",
    "actor_roles": "",
    "ip": None,
    "user_agent": "",
    "via": "internal",
    "action": "test.entry",
    "resource_type": "",
    "resource_id": "",
    "change_request_id": None,
    "outcome": "success",
    "data": {},
    "personal_digest": "",
}


def test_an_entry_without_a_workspace_hashes_as_before_workspaces() -> None:
    before = hashing.canonical_json(list(FIELDS.values()))

    assert hashing.entry_content(**FIELDS) == before
    assert hashing.entry_content(**FIELDS, workspace="") == before
    assert hashing.entry_content(**FIELDS, workspace="production") != before


def _append(workspace: str | None = None, origin: str = "") -> int:
    with audit_origin(Origin(via="web", workspace=origin)), transaction.atomic():
        return audit_append(actor=SYSTEM, action="test.entry", workspace=workspace).seq


def test_entries_name_the_workspace_of_their_request_or_the_one_given() -> None:
    from_request = _append(origin="production")
    given = _append(workspace="staging", origin="production")
    neither = _append()

    stored = dict(audit_entries(filters={}).values_list("seq", "workspace"))
    assert (stored[from_request], stored[given], stored[neither]) == ("production", "staging", "")


def test_a_trail_mixing_entries_with_and_without_a_workspace_verifies() -> None:
    for origin in ("", "staging", "", "production"):
        _append(origin=origin)

    report = audit_verify()

    assert (report.entries, report.first_bad_seq, report.problems) == (4, None, [])


def test_moving_an_entry_to_another_workspace_breaks_its_hash(
    owner_tamper: psycopg.Connection,
) -> None:
    _append(origin="staging")
    moved = _append(origin="staging")

    owner_tamper.execute("UPDATE audit_entry SET workspace = 'production' WHERE seq = %s", [moved])

    assert audit_verify().first_bad_seq == moved


def test_the_workspace_filter_keeps_entries_of_no_workspace() -> None:
    staging, production, none = _append(origin="staging"), _append(origin="production"), _append()

    shown = set(audit_entries(filters={"workspace": "staging"}).values_list("seq", flat=True))

    assert shown == {staging, none}
    assert production not in shown


def test_exports_name_each_entrys_workspace() -> None:
    production, none = _append(origin="production"), _append()
    entries = audit_entries(filters={}).order_by("seq")

    csv_rows = list(csv.DictReader(io.StringIO("".join(csv_stream(entries)))))
    jsonl_rows = [json.loads(line) for line in "".join(jsonl_stream(entries)).splitlines()]

    for rows in (csv_rows, jsonl_rows):
        workspaces = {int(row["seq"]): row["workspace"] for row in rows}
        assert (workspaces[production], workspaces[none]) == ("production", "")


@pytest.mark.usefixtures("two_workspaces")
def test_an_entrys_page_names_its_workspace_and_links_its_change_in_that_workspace() -> None:
    with audit_origin(Origin(via="web", workspace="production")), transaction.atomic():
        seq = audit_append(actor=SYSTEM, action="test.entry", change_request_id=12).seq
    client = Client()
    client.force_login(user_with_role(Role.AUDITOR))

    page = client.get(f"/w/staging/audit/{seq}/").content.decode()
    listed = client.get("/w/production/audit/").content.decode()

    assert "Production (production)" in page
    assert 'href="/w/production/changes/12/"' in page
    assert "Production (production)" in listed
