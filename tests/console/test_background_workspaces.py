"""Background work runs in the workspace of what it works on: each task's message names the
workspace by key, and the task reads and writes that workspace only (its Braze client, its
mirror and history, its audit entries). The sandbox's request log, which names the sandbox
workspace each request reached, is the referee."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from pytest_django.fixtures import Settings

from catalog_bulk.models import BulkJob, JobState, ReadBackState
from catalog_bulk.services import bulk_job_propose, bulk_job_upload
from catalogs import freshness
from catalogs.models import Catalog, CatalogItem, CatalogSync
from catalogs.services import (
    _list_refresh_pending_key,
    catalog_list_refresh_request,
    catalog_mirror_refresh,
)
from console import celery
from console.audit import events
from console.audit.models import AuditEntry
from console.braze import close_client, get_client, get_limiter
from console.changes.models import ChangeState
from console.changes.services import change_request_approve
from console.roles import Role
from console.workspaces import workspace_override, workspaces_from_env
from templates_app.models import ContentVersion
from tests.factories import user_with_role
from tests.fixtures.canary import CANARIES
from tests.fixtures.sandbox import SandboxHandle

PRODUCTION = "demo-prod"  # the sandbox workspace the console's "production" reaches
STAGING = "demo"  # the sandbox's seeded workspace: the console's "staging" (the default)


@pytest.fixture
def two_workspaces(settings: Settings, braze_sandbox: SandboxHandle) -> Iterator[SandboxHandle]:
    """staging (default) and production, two sandbox workspaces, each with its own key;
    staging holds the seeded demo data (a ``products`` catalog among it), production none."""
    braze_sandbox.admin.reset(products=10)
    braze_sandbox.admin.create_key(["*"], workspace=PRODUCTION, key=CANARIES.production_api_key)
    settings.BRAZE_REST_ENDPOINT = braze_sandbox.url
    settings.BRAZE_API_KEY = braze_sandbox.api_key
    settings.BRAZE_RATE_LIMITS = {
        **settings.BRAZE_RATE_LIMITS,
        "workspace": f"test-{uuid.uuid4().hex}",
        "margin_seconds": 0.05,
    }
    settings.BRAZE_WORKSPACES_CONFIGURED = workspaces_from_env(
        {
            "BRAZE_WORKSPACES": "staging,production",
            "BRAZE_STAGING_REST_ENDPOINT": braze_sandbox.url,
            "BRAZE_PRODUCTION_REST_ENDPOINT": braze_sandbox.url,
            "BRAZE_PRODUCTION_API_KEY": CANARIES.production_api_key,
            "BRAZE_PRODUCTION_PRODUCTION": "1",
        }
    )
    close_client()
    yield braze_sandbox
    close_client()


def _production_products(braze: SandboxHandle) -> None:
    """A ``products`` catalog in production too (named as staging's), with two items."""
    client = get_client(workspace="production")
    client.catalog_create(
        name="products",
        description="Production",
        fields=[{"name": "id", "type": "string"}, {"name": "name", "type": "string"}],
    )
    client.catalog_items_bulk_create(
        catalog_name="products",
        items=[{"id": "prod-1", "name": "Mug"}, {"id": "prod-2", "name": "Cup"}],
    )
    braze.admin.flush_async()


def _log_mark(braze: SandboxHandle) -> int:
    """The id of the sandbox's last logged request (what comes after is the test's)."""
    entries = braze.admin.log()
    return int(entries[-1]["id"]) if entries else 0


def _requests(braze: SandboxHandle, after: int) -> list[dict[str, Any]]:
    return braze.admin.log(after_id=after)


def _workspaces_reached(braze: SandboxHandle, after: int) -> set[str]:
    return {entry["workspace"] for entry in _requests(braze, after)}


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    """(task name, message) of every task message sent to the broker (none is delivered)."""
    sent: list[tuple[str, Any]] = []
    monkeypatch.setattr(
        celery.app.amqp,
        "send_task_message",
        lambda producer, name, message, **kw: sent.append((name, message)),
    )
    return sent


def _work_off(published: list[tuple[str, Any]]) -> list[tuple[str, tuple[Any, ...]]]:
    """Run each queued message as a worker would: by itself, from its arguments alone (no
    workspace carried over from whoever queued it), until nothing more is queued. Returns
    (task name, arguments) of each, in order."""
    ran = []
    while published:
        name, message = published.pop(0)
        celery.app.tasks[name].apply(args=message.body[0], kwargs=message.body[1])
        ran.append((name, tuple(message.body[0])))
    return ran


# --- catalog syncs ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("eager_celery")
def test_production_s_catalog_sync_fills_production_s_mirror_with_production_s_client(
    two_workspaces: SandboxHandle,
) -> None:
    _production_products(two_workspaces)
    since = _log_mark(two_workspaces)

    celery.task_enqueue("catalogs.tasks.catalog_sync_schedule_task", "production")

    mirrored = Catalog.objects.get(workspace="production", name="products")
    assert mirrored.description == "Production"
    assert set(CatalogItem.objects.filter(catalog=mirrored).values_list("item_id", flat=True)) == {
        "prod-1",
        "prod-2",
    }
    # Staging's same-named catalog was neither listed nor synced: its mirror is untouched.
    assert not Catalog.objects.filter(workspace="staging").exists()
    assert _workspaces_reached(two_workspaces, since) == {PRODUCTION}
    synced = AuditEntry.objects.get(action=events.CATALOG_SYNCED)
    assert (synced.resource_id, synced.workspace) == ("products", "production")


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("eager_celery")
def test_a_staging_pass_queued_for_production_is_not_walked_with_production_s_client(
    two_workspaces: SandboxHandle,
) -> None:
    _production_products(two_workspaces)
    catalog_mirror_refresh(client=get_client(lane="background"), workspace="staging")
    staging = Catalog.objects.get(workspace="staging", name="products")
    sync = CatalogSync.objects.create(catalog=staging, trigger="manual")
    since = _log_mark(two_workspaces)

    celery.task_enqueue("catalogs.tasks.catalog_sync_task", sync.pk, "production")

    sync.refresh_from_db()
    assert sync.pages_done == 0
    assert not CatalogItem.objects.filter(catalog=staging).exists()
    assert _workspaces_reached(two_workspaces, since) == set()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("eager_celery")
def test_a_sync_message_queued_without_a_workspace_runs_in_the_default_one(
    two_workspaces: SandboxHandle,
) -> None:
    _production_products(two_workspaces)
    since = _log_mark(two_workspaces)

    # As the code before workspaces queued it: no argument.
    celery.app.tasks["catalogs.tasks.catalog_sync_schedule_task"].delay()

    assert Catalog.objects.filter(workspace="staging", name="products").exists()
    assert not Catalog.objects.filter(workspace="production").exists()
    assert _workspaces_reached(two_workspaces, since) == {STAGING}


# --- content history and drift -------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("eager_celery")
def test_production_s_content_sync_keeps_production_s_history_and_audits_its_drift(
    two_workspaces: SandboxHandle,
) -> None:
    client = get_client(workspace="production")
    block = client.content_block_create(name="prod_footer", content="Production footer")
    since = _log_mark(two_workspaces)

    celery.task_enqueue("templates_app.tasks.content_sync_task", "production")

    assert list(
        ContentVersion.objects.filter(workspace="production").values_list("name", "version")
    ) == [("prod_footer", 1)]
    # Staging's seeded templates and blocks were not read into any history.
    assert not ContentVersion.objects.exclude(workspace="production").exists()
    assert _workspaces_reached(two_workspaces, since) == {PRODUCTION}

    # Someone edits the block in production's dashboard: the next sync there notices.
    client.content_block_update(
        content_block_id=block.content_block_id, content="Production footer, edited"
    )
    celery.task_enqueue("templates_app.tasks.content_sync_task", "production")

    latest = ContentVersion.objects.filter(workspace="production").order_by("-version").first()
    assert latest is not None
    assert (latest.version, latest.snapshot["content"]) == (2, "Production footer, edited")
    drift = AuditEntry.objects.get(action=events.CONTENT_EXTERNAL_CHANGE)
    assert (drift.resource_id, drift.workspace) == (block.content_block_id, "production")


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("eager_celery")
def test_staging_s_content_sync_leaves_production_s_history_alone(
    two_workspaces: SandboxHandle,
) -> None:
    get_client(workspace="production").content_block_create(name="prod_footer", content="P")
    since = _log_mark(two_workspaces)

    celery.task_enqueue("templates_app.tasks.content_sync_task", "staging")

    assert ContentVersion.objects.filter(workspace="staging").exists()
    assert not ContentVersion.objects.filter(workspace="production").exists()
    assert not ContentVersion.objects.filter(name="prod_footer").exists()
    assert _workspaces_reached(two_workspaces, since) == {STAGING}


# --- bulk jobs ------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_bulk_job_opened_in_production_is_parsed_sent_and_read_back_in_production(
    two_workspaces: SandboxHandle,
    settings: Settings,
    tmp_path: Any,
    editor: User,
    reviewer: User,
    published: list[tuple[str, Any]],
) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.BULK_READBACK_DELAY_SECONDS = 0
    settings.BULK_SENDER_STEP_SECONDS = 30  # one sender step sends the whole job
    two_workspaces.admin.set_async_delay(0)
    _production_products(two_workspaces)
    for key in ("staging", "production"):
        catalog_mirror_refresh(client=get_client(workspace=key), workspace=key)
    production = Catalog.objects.get(workspace="production", name="products")
    since = _log_mark(two_workspaces)

    job = bulk_job_upload(
        actor=editor,
        catalog=production,
        operation="upsert",
        upload=SimpleUploadedFile("items.csv", b"id,name\nprod-1,Big mug\nprod-3,Plate\n"),
    )
    assert _work_off(published) == [("catalogs.bulk.tasks.bulk_parse_task", (job.pk, "production"))]
    job.refresh_from_db()
    assert (job.workspace, job.state, job.items_to_send) == ("production", JobState.READY, 2)
    cr = bulk_job_propose(actor=editor, job=job)
    assert cr.workspace == "production"  # reviewed where the job is, whoever proposes it
    change_request_approve(actor=reviewer, change_request=cr)
    ran = [name for name, _ in _work_off(published)]

    assert ran[0] == "console.changes.tasks.change_request_apply_task"
    assert "catalogs.bulk.tasks.bulk_send_task" in ran
    assert ran[-1] == "catalogs.bulk.tasks.bulk_readback_task"
    job.refresh_from_db()
    cr.refresh_from_db()
    assert cr.state == ChangeState.APPLIED
    assert job.state == JobState.DONE
    assert job.readback_state == ReadBackState.DONE
    requests = _requests(two_workspaces, since)
    sent = [e for e in requests if e["method"] != "GET" and e["item_ids"]]
    read_back = [
        e for e in requests if e["method"] == "GET" and "/catalogs/products/items/" in e["path"]
    ]
    assert sent
    assert read_back
    assert {e["workspace"] for e in sent + read_back} == {PRODUCTION}
    assert _workspaces_reached(two_workspaces, since) == {PRODUCTION}
    finished = AuditEntry.objects.get(action=events.CATALOG_BULK_FINISHED)
    assert finished.workspace == "production"


@pytest.mark.django_db(transaction=True)
def test_an_old_parse_message_of_a_production_job_is_left_to_production_s_sweep(
    two_workspaces: SandboxHandle,
    settings: Settings,
    tmp_path: Any,
    editor: User,
    published: list[tuple[str, Any]],
) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"
    _production_products(two_workspaces)
    catalog_mirror_refresh(client=get_client(workspace="production"), workspace="production")
    job = bulk_job_upload(
        actor=editor,
        catalog=Catalog.objects.get(workspace="production", name="products"),
        operation="upsert",
        upload=SimpleUploadedFile("items.csv", b"id,name\nprod-1,Big mug\n"),
    )
    published.clear()  # its message is lost; an old-format one arrives instead

    celery.app.tasks["catalogs.bulk.tasks.bulk_parse_task"].apply(args=(job.pk,))

    job.refresh_from_db()
    assert job.state == JobState.PARSING  # not diffed against staging's same-named catalog
    BulkJob.objects.filter(pk=job.pk).update(created_at=job.created_at - timedelta(hours=1))
    celery.task_enqueue("catalogs.bulk.tasks.bulk_sweep_task", "staging")
    assert [name for name, _ in _work_off(published)] == ["catalogs.bulk.tasks.bulk_sweep_task"]
    job.refresh_from_db()
    assert job.state == JobState.PARSING  # staging's sweep leaves production's jobs alone

    celery.task_enqueue("catalogs.bulk.tasks.bulk_sweep_task", "production")
    ran = _work_off(published)

    assert ran == [
        ("catalogs.bulk.tasks.bulk_sweep_task", ("production",)),
        ("catalogs.bulk.tasks.bulk_parse_task", (job.pk, "production")),
    ]
    job.refresh_from_db()
    assert (job.state, job.items_to_send) == (JobState.READY, 1)


# --- the messages ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_catalog_list_refresh_is_queued_once_per_workspace_naming_it(
    settings: Settings,
    published: list[tuple[str, Any]],
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.BRAZE_WORKSPACES_CONFIGURED = workspaces_from_env(
        {
            "BRAZE_WORKSPACES": "staging,production",
            "BRAZE_STAGING_REST_ENDPOINT": "http://127.0.0.1:9",
            "BRAZE_PRODUCTION_REST_ENDPOINT": "http://127.0.0.1:9",
        }
    )
    viewer = user_with_role(Role.VIEWER)
    for key in ("staging", "production"):
        with workspace_override(key):
            cache.delete(_list_refresh_pending_key())
    asked = []
    for key in ("staging", "production", "production"):
        with workspace_override(key), django_capture_on_commit_callbacks(execute=True):
            asked.append(catalog_list_refresh_request(actor=viewer))

    # Staging's queued refresh does not hold production's back; production's second waits.
    assert asked == [True, True, False]
    assert [(name, message.body[0]) for name, message in published] == [
        ("catalogs.tasks.catalog_list_refresh_task", ("staging",)),
        ("catalogs.tasks.catalog_list_refresh_task", ("production",)),
    ]


@pytest.mark.django_db
def test_each_workspace_s_catalog_schedule_paces_by_its_own_learned_read_limit(
    settings: Settings,
) -> None:
    settings.BRAZE_RATE_LIMITS = {
        **settings.BRAZE_RATE_LIMITS,
        "workspace": f"test-{uuid.uuid4().hex}",
    }
    settings.BRAZE_WORKSPACES_CONFIGURED = workspaces_from_env(
        {
            "BRAZE_WORKSPACES": "staging,production",
            "BRAZE_STAGING_REST_ENDPOINT": "http://127.0.0.1:9",
            "BRAZE_PRODUCTION_REST_ENDPOINT": "http://127.0.0.1:9",
        }
    )
    close_client()
    # Braze announced a raised item read limit to production only.
    get_limiter(workspace="production").learn(
        group=freshness.READ_GROUP, permit=None, limit="500", remaining="500", reset_at=None
    )
    large = Catalog(name="products", braze_item_count=1_000_000)
    budgets = {}
    for key in ("staging", "production"):
        with workspace_override(key):
            budgets[key] = freshness.read_budget()

    assert budgets["production"].requests > budgets["staging"].requests
    assert freshness.sync_interval(
        catalog=large, budget=budgets["production"]
    ) < freshness.sync_interval(catalog=large, budget=budgets["staging"])
    close_client()


def test_each_workspace_has_its_own_sender_slots_and_the_default_keeps_its_old_keys(
    settings: Settings,
) -> None:
    from catalog_bulk import senders

    settings.BRAZE_WORKSPACES_CONFIGURED = workspaces_from_env(
        {
            "BRAZE_WORKSPACES": "staging,production",
            "BRAZE_STAGING_REST_ENDPOINT": "http://127.0.0.1:9",
            "BRAZE_PRODUCTION_REST_ENDPOINT": "http://127.0.0.1:9",
        }
    )
    with workspace_override("staging"):
        # A sender running across the upgrade (an old-format message) still holds its slot.
        assert senders._slot_key(0) == "catalogs:bulk:sender:0"
    with workspace_override("production"):
        assert senders._slot_key(0) == "catalogs:bulk:sender:production:0"


@pytest.mark.django_db
def test_task_messages_name_the_workspace_by_key_and_carry_no_secret(
    two_workspaces: SandboxHandle, published: list[tuple[str, Any]]
) -> None:
    celery.task_enqueue("catalogs.tasks.catalog_sync_task", 7, "production")
    celery.task_enqueue("catalogs.bulk.tasks.bulk_readback_task", 8, "production", countdown=1)

    assert [(name, message.body[0]) for name, message in published] == [
        ("catalogs.tasks.catalog_sync_task", (7, "production")),
        ("catalogs.bulk.tasks.bulk_readback_task", (8, "production")),
    ]
    for _, message in published:
        assert CANARIES.production_api_key not in repr(message)
        assert CANARIES.api_key not in repr(message)


def test_beat_queues_each_sync_and_sweep_once_per_workspace_naming_it() -> None:
    """Settings read in a process configured with two workspaces."""
    code = (
        "import django; django.setup(); from django.conf import settings; "
        "import json; print(json.dumps(sorted([n, e['task'], list(e['args'])] "
        "for n, e in settings.CELERY_BEAT_SCHEDULE.items() if e.get('args'))))"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SETTINGS_MODULE": "console.settings",
        "DEBUG": "1",
        "BRAZE_WORKSPACES": "staging,production",
        "BRAZE_STAGING_REST_ENDPOINT": "http://127.0.0.1:9",
        "BRAZE_PRODUCTION_REST_ENDPOINT": "http://127.0.0.1:9",
    }
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout

    entries = json.loads(out)
    sync, catalogs, sweep = (
        "templates_app.tasks.content_sync_task",
        "catalogs.tasks.catalog_sync_schedule_task",
        "catalogs.bulk.tasks.bulk_sweep_task",
    )
    assert entries == [
        ["catalog-bulk-sweep:production", sweep, ["production"]],
        ["catalog-bulk-sweep:staging", sweep, ["staging"]],
        ["catalog-sync:production", catalogs, ["production"]],
        ["catalog-sync:staging", catalogs, ["staging"]],
        ["content-sync:production", sync, ["production"]],
        ["content-sync:staging", sync, ["staging"]],
    ]
