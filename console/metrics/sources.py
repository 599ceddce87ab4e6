"""The gauges apps add to /metrics: each app registers its sources from ``AppConfig.ready()``,
so the core's collector (``console/metrics/collect.py``) reads them without importing an app.

A source is a function called at scrape time that yields metric families; the name labels
``console_metrics_source_up``, which reports 0 for that scrape when the source fails.
"""

from collections.abc import Callable, Iterable

from prometheus_client.core import Metric

type MetricsSource = Callable[[], Iterable[Metric]]

_SOURCES: dict[str, MetricsSource] = {}


def metrics_source_register(name: str, source: MetricsSource) -> None:
    if name in _SOURCES and _SOURCES[name] is not source:
        raise ValueError(f"Another metrics source is registered as {name!r}.")
    _SOURCES[name] = source


def metrics_sources_registered() -> dict[str, MetricsSource]:
    """The registered sources by name, in the names' order (not the apps' order in
    INSTALLED_APPS), as a scrape reads them."""
    return {name: _SOURCES[name] for name in sorted(_SOURCES)}
