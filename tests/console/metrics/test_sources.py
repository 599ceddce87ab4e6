from collections.abc import Iterator

import pytest
from prometheus_client.core import GaugeMetricFamily, Metric
from pytest_django.fixtures import Settings

from console.metrics import sources
from console.metrics.sources import metrics_source_register, metrics_sources_registered
from tests.console.metrics.helpers import metrics_settings, scrape, value

__all__ = ["metrics_settings"]


def _widgets() -> Iterator[Metric]:
    yield GaugeMetricFamily("console_test_widgets", "Widgets, for this test.", value=3.0)


def test_the_apps_register_their_gauges_from_ready() -> None:
    registered = metrics_sources_registered()
    assert registered["catalogs"].__module__ == "catalogs.metrics"
    assert registered["bulk"].__module__ == "catalog_bulk.metrics"


def test_a_name_taken_by_another_source_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sources, "_SOURCES", {})
    metrics_source_register("widgets", _widgets)
    metrics_source_register("widgets", _widgets)  # an app's ready() run again
    with pytest.raises(ValueError, match="widgets"):
        metrics_source_register("widgets", lambda: iter(()))
    assert metrics_sources_registered() == {"widgets": _widgets}


@pytest.mark.django_db
def test_a_registered_source_is_read_at_each_scrape(
    metrics_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sources._SOURCES, "widgets", _widgets)
    samples = scrape()
    assert value(samples, "console_test_widgets") == 3
    assert value(samples, "console_metrics_source_up", source="widgets") == 1
    assert value(samples, "console_metrics_source_up", source="bulk") == 1


def test_sources_are_read_in_the_order_of_their_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sources, "_SOURCES", {})
    metrics_source_register("widgets", _widgets)
    metrics_source_register("bulk", _widgets)
    assert list(metrics_sources_registered()) == ["bulk", "widgets"]
