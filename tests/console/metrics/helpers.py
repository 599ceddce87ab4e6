"""Scraping /metrics as Prometheus would, and reading one sample back."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families
from pytest_django.fixtures import Settings

TOKEN = "metrics-test-token-0123456789"

type Samples = dict[str, list[tuple[dict[str, str], float]]]


@pytest.fixture
def metrics_settings(settings: Settings) -> Iterator[Settings]:
    """A token, and a private key prefix so counts start at zero for this test."""
    import uuid

    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_KEY_PREFIX = prefix = f"test-metrics:{uuid.uuid4().hex}"
    url = settings.REDIS_URL
    yield settings
    import redis

    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(f"{prefix}:*"))
    if keys:
        client.delete(*keys)
    client.close()


def parse(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return samples


def scrape(client: Client | None = None, token: str = TOKEN) -> Samples:
    response = (client or Client()).get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.status_code
    assert response["Content-Type"].startswith("text/plain; version=")
    return parse(response.content.decode())


def value(samples: Samples, name: str, **labels: str) -> float | None:
    """The sample of ``name`` whose labels include ``labels``; None when there is none."""
    found = [v for have, v in samples.get(name, []) if labels.items() <= have.items()]
    assert len(found) <= 1, f"{name}{labels} matches {len(found)} samples"
    return found[0] if found else None


def series(samples: Samples, name: str) -> Iterator[dict[str, str]]:
    return (labels for labels, _ in samples.get(name, []))
