"""`make bench-web`'s simulated staff (scripts/bench_web_locust.py) work against a running
console: signed in by session, their pages and htmx fragments answer, nothing fails. The
benchmark's figures themselves are measured by the command, not here."""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, cast

import pytest
from django.test import Client

from catalogs.models import Catalog
from console.roles import Role
from tests.factories import CatalogFactory, catalog_item_create, user_with_role

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_simulated_staff_browse_filter_and_review_without_errors(
    transactional_db: None, live_server: Any, tmp_path: Path
) -> None:
    catalog = cast(Catalog, CatalogFactory(name="products"))
    for i in range(5):
        catalog_item_create(catalog, f"sku-{i}", name=f"Item {i}", price=i + 1)

    def session(role: Role) -> str:
        client = Client()
        client.force_login(user_with_role(role))
        return client.cookies["sessionid"].value

    plan = tmp_path / "plan.json"
    plan.write_text(
        json.dumps(
            {
                "editor": [session(Role.EDITOR)],
                "reviewer": [session(Role.REVIEWER)],
                "catalog": "products",
                "items": [f"sku-{i}" for i in range(5)],
                "field": "",  # no proposals: they would need Braze's answer to apply
            }
        )
    )
    samples = tmp_path / "samples.json"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(ROOT / "scripts/bench_web_locust.py"),
            "--headless",
            "--users",
            "4",
            "--spawn-rate",
            "4",
            "--run-time",
            "5s",
            "--host",
            live_server.url,
            "--only-summary",
            "--loglevel",
            "WARNING",
        ],
        cwd=ROOT,
        env={
            "BENCH_WEB_PLAN": str(plan),
            "BENCH_WEB_SAMPLES": str(samples),
            "PATH": "/usr/bin:/bin",
        },
        check=False,
        timeout=60,
        capture_output=True,
    )
    result = json.loads(samples.read_text())
    assert result["errors"] == []
    assert result["samples"]["page"], result
    assert result["samples"]["fragment"], result
