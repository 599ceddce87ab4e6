"""/metrics: refused without the bearer token; requests, Braze calls and task outcomes counted."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from django.test import Client
from pytest_django.fixtures import Settings

from console.braze.client import BrazeClient, RetryPolicy
from console.braze.errors import BrazeNotFound, BrazeRateLimited, BrazeUnavailable
from console.roles import Role
from tests.console.braze.helpers import make_limiter, make_limits
from tests.console.metrics.helpers import TOKEN, metrics_settings, scrape, series, value

__all__ = ["metrics_settings"]

pytestmark = pytest.mark.django_db


def test_without_a_token_configured_there_is_no_endpoint(settings: Settings) -> None:
    settings.METRICS_TOKEN = ""
    response = Client().get("/metrics", headers={"Authorization": "Bearer "})
    assert response.status_code == 404


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer ", "Bearer wrong-token", f"Basic {TOKEN}", TOKEN, f"Bearer {TOKEN}x"],
)
def test_a_scrape_without_the_right_bearer_token_is_refused(
    metrics_settings: Settings, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    response = Client().get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert b"console_" not in response.content


def test_a_signed_in_admin_without_the_token_is_refused_too(
    metrics_settings: Settings, client_for: Callable[[Role | None], Client]
) -> None:
    assert client_for(Role.ADMIN).get("/metrics").status_code == 401


def test_the_token_is_never_in_a_log(
    metrics_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    Client().get("/metrics", headers={"Authorization": f"Bearer {TOKEN}-wrong"})
    scrape()
    assert TOKEN not in caplog.text


def test_requests_are_counted_per_view_name_never_per_path(
    metrics_settings: Settings, client_for: Callable[[Role | None], Client]
) -> None:
    client = client_for(Role.VIEWER)
    for _ in range(3):
        assert client.get("/").status_code == 200
    assert client.get("/catalogs/no-such-catalog/").status_code == 404
    assert client.post("/").status_code == 405
    Client().get("/audit/")  # anonymous: sent to sign in

    samples = scrape()
    count = "console_http_request_duration_seconds_count"
    assert value(samples, count, view="home", method="GET", status="2xx") == 3
    assert value(samples, count, view="home", method="POST", status="4xx") == 1
    assert value(samples, count, view="catalogs:detail", method="GET", status="4xx") == 1
    assert value(samples, count, view="audit:list", method="GET", status="3xx") == 1
    assert (
        value(
            samples,
            "console_http_request_duration_seconds_bucket",
            view="home",
            method="GET",
            status="2xx",
            le="+Inf",
        )
        == 3
    )
    assert (
        value(
            samples,
            "console_http_request_duration_seconds_sum",
            view="home",
            method="GET",
            status="2xx",
        )
        or 0
    ) > 0
    views = {labels["view"] for labels in series(samples, count)}
    assert not any("/" in view or "no-such-catalog" in view for view in views), views


def _client(handler: Callable[[httpx.Request], httpx.Response], prefix: str) -> BrazeClient:
    limits = make_limits(groups={"catalogs_sync": (2, 60.0)})
    return BrazeClient(
        http=httpx.Client(base_url="https://rest.test", transport=httpx.MockTransport(handler)),
        limiter=make_limiter(limits=limits, prefix=prefix),
        api_key="metrics-test-key",
        max_wait=0.0,
        retry=RetryPolicy(attempts=1, backoff_base=0.01, backoff_cap=0.01),
    )


def test_braze_calls_are_counted_by_limit_group_and_status_with_waits_and_refusals(
    metrics_settings: Settings,
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/catalogs":
            return httpx.Response(200, json={"catalogs": [], "message": "success"})
        if request.url.path.endswith("/broken"):
            raise httpx.ConnectError("refused")
        return httpx.Response(404, json={"errors": [{"id": "item-not-found"}]})

    prefix = f"{metrics_settings.METRICS_KEY_PREFIX}:limiter"
    client = _client(handler, prefix)
    client.catalog_list()
    client.catalog_list()
    with pytest.raises(BrazeRateLimited):  # the group's 2 a minute are spent
        client.catalog_list()
    with pytest.raises(BrazeNotFound):
        client.catalog_item_get(catalog_name="shop", item_id="nope")
    with pytest.raises(BrazeUnavailable):
        client.catalog_item_get(catalog_name="shop", item_id="broken")

    samples = scrape()
    count = "console_braze_request_duration_seconds_count"
    assert value(samples, count, group="catalogs_sync", status="200") == 2
    assert value(samples, count, group="catalog_items_sync", status="404") == 1
    assert value(samples, count, group="catalog_items_sync", status="no_answer") == 1
    waits = "console_braze_limiter_wait_seconds_count"
    assert value(samples, waits, group="catalogs_sync", lane="interactive") == 2
    refusals = "console_braze_limiter_refusals_total"
    assert value(samples, refusals, group="catalogs_sync", lane="interactive") == 1


def test_task_outcomes_are_counted(metrics_settings: Settings) -> None:
    from celery import signals

    class Task:
        name = "catalogs.tasks.example"

    signals.task_success.send(sender=Task())
    signals.task_success.send(sender=Task())
    signals.task_failure.send(sender=Task(), task_id="1", exception=ValueError("x"))
    signals.task_retry.send(sender=Task(), request=None, reason="later")

    samples = scrape()
    name = "console_celery_tasks_total"
    assert value(samples, name, task="catalogs.tasks.example", outcome="success") == 2
    assert value(samples, name, task="catalogs.tasks.example", outcome="failure") == 1
    assert value(samples, name, task="catalogs.tasks.example", outcome="retry") == 1


def test_a_broken_source_is_reported_and_the_others_still_answer(
    metrics_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from console.metrics import collect

    def broken() -> None:
        raise RuntimeError("database away")

    monkeypatch.setattr(collect, "_audit", broken)
    samples = scrape()
    assert value(samples, "console_metrics_source_up", source="audit") == 0
    assert value(samples, "console_metrics_source_up", source="bulk") == 1
    assert value(samples, "console_bulk_jobs", state="running") == 0
    assert "console_audit_head_seq" not in samples


def test_recording_never_fails_the_request_when_redis_is_down(
    metrics_settings: Settings, client_for: Callable[[Role | None], Client]
) -> None:
    from console import metrics

    metrics_settings.REDIS_URL = "redis://127.0.0.1:1/0"
    try:
        assert client_for(Role.VIEWER).get("/healthz").status_code in {200, 503}
    finally:
        metrics._paused_until = 0.0


def test_sync_lag_per_catalog_and_the_audit_chain_are_read_at_scrape_time(
    metrics_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import timedelta
    from types import SimpleNamespace

    from django.utils import timezone

    from catalogs import metrics as catalog_metrics
    from console.audit.services import SYSTEM, audit_append, audit_checkpoint_issue
    from console.metrics import collect
    from tests.factories import CatalogFactory

    CatalogFactory(name="fresh", last_full_sync_at=timezone.now() - timedelta(hours=2))
    # Another workspace's catalog of the same name is a series of its own.
    CatalogFactory(
        name="fresh", workspace="production", last_full_sync_at=timezone.now() - timedelta(hours=1)
    )
    CatalogFactory(name="never", last_full_sync_at=None)
    CatalogFactory(name="gone", last_full_sync_at=timezone.now(), present_in_braze=False)
    audit_append(actor=SYSTEM, action="test.metrics")
    checkpoint = audit_checkpoint_issue(key="metrics-test-checkpoint-key")
    head = audit_append(actor=SYSTEM, action="test.metrics").seq
    # The scrape runs seven minutes later (the trail is append-only: no checkpoint is aged).
    later = checkpoint.created_at + timedelta(minutes=7)
    monkeypatch.setattr(collect, "timezone", SimpleNamespace(now=lambda: later))
    monkeypatch.setattr(catalog_metrics, "timezone", SimpleNamespace(now=lambda: later))

    samples = scrape()
    age = value(samples, "console_catalog_sync_age_seconds", workspace="default", catalog="fresh")
    assert 2 * 3600 + 7 * 60 <= (age or 0) < 2 * 3600 + 8 * 60
    other = value(samples, "console_catalog_sync_age_seconds", workspace="production")
    assert 3600 + 7 * 60 <= (other or 0) < 3600 + 8 * 60
    assert value(samples, "console_catalog_sync_age_seconds", catalog="never") is None
    assert value(samples, "console_catalog_sync_age_seconds", catalog="gone") is None
    assert value(samples, "console_catalog_never_synced") == 1
    assert value(samples, "console_audit_head_seq") == head
    assert value(samples, "console_audit_checkpoint_seq") == head - 1
    assert value(samples, "console_audit_checkpoint_age_seconds") == 7 * 60


@pytest.mark.parametrize(
    ("broker", "expected"),
    [
        ("redis://localhost:6379/0", "redis://localhost:6379/0"),
        ("unix:///run/redis.sock?db=2", "unix:///run/redis.sock?db=2"),
        ("redis+socket:///run/redis.sock", "unix:///run/redis.sock?db=0"),
        ("redis+socket:///run/redis.sock?virtual_host=3", "unix:///run/redis.sock?db=3"),
        ("amqp://guest@localhost//", None),
    ],
)
def test_queue_depths_are_read_from_the_broker_kombu_names(broker: str, expected: str) -> None:
    from console.metrics.collect import broker_redis_url

    assert broker_redis_url(broker) == expected


def test_only_the_web_process_is_given_the_metrics_token() -> None:
    from console.processes import KINDS, process_environment

    given = {
        kind
        for kind in KINDS
        if "METRICS_TOKEN" in process_environment(kind, {"METRICS_TOKEN": TOKEN})
    }
    assert given == {"web"}


def test_the_grafana_dashboard_shows_every_family_and_only_families_that_exist(
    metrics_settings: Settings,
) -> None:
    import json
    import re
    from pathlib import Path

    from prometheus_client.parser import text_string_to_metric_families

    from console.audit.services import audit_checkpoint_issue

    audit_checkpoint_issue(key="metrics-test-checkpoint-key")
    response = Client().get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    families = {f.name: f.type for f in text_string_to_metric_families(response.content.decode())}
    dashboard = json.loads(
        (Path(__file__).parents[3] / "docs" / "grafana-dashboard.json").read_text()
    )
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    named = set()
    for expr in exprs:
        for name in re.findall(r"\bconsole_[a-z_]+", expr):
            family = re.sub(r"_(bucket|count|sum|total)$", "", name)
            assert family in families, f"{name} in the dashboard is not exposed"
            if families[family] == "histogram":
                assert name != family, f"{name}: a histogram is read through _bucket or _count"
            named.add(family)
    assert set(families) - named == set(), "families without a panel"


def test_the_limiter_series_per_group_leave_out_what_the_limiter_does_not_know(
    metrics_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from console.braze import limiter

    row = {
        "group": "scim",
        "limit": 5000,
        "configured": 5000,
        "learned": None,
        "used": 3,
        "background_limit": 4000,
        "window_seconds": 86400.5,
        "blocked_seconds": 0.0,
        "aligned": False,
        "requests_per_second": 0.06,
    }
    monkeypatch.setattr(
        limiter,
        "limiter_state",
        lambda **_: [
            row,
            {**row, "group": "default", "learned": 250, "others": 7, "aligned": True},
        ],
    )

    samples = scrape()
    assert value(samples, "console_braze_limit", group="scim") == 5000
    assert value(samples, "console_braze_limiter_used", group="scim") == 3
    assert value(samples, "console_braze_limiter_aligned", group="scim") == 0
    assert value(samples, "console_braze_limit_learned", group="scim") is None
    assert value(samples, "console_braze_limiter_others", group="scim") is None
    assert value(samples, "console_braze_limit_learned", group="default") == 250
    assert value(samples, "console_braze_limiter_others", group="default") == 7
    assert value(samples, "console_braze_limiter_aligned", group="default") == 1


@pytest.mark.usefixtures("two_workspaces")
def test_each_workspace_reports_its_own_limits(
    metrics_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from console.braze import get_limiter, limiter

    production = get_limiter(workspace="production")
    monkeypatch.setattr(
        limiter,
        "limiter_state",
        lambda *, limiter: [
            {"group": "catalog_items_sync", "limit": 16000 if limiter is production else 50}
        ],
    )

    samples = scrape()
    assert value(samples, "console_braze_limit", workspace="production") == 16000
    assert value(samples, "console_braze_limit", workspace="staging") == 50
