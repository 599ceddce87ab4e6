"""The configured rate limits: Braze's documented defaults, overrides set by hand.

Reference: "API Rate Limits", "Rate limits by request type" (braze-docs
_docs/_api/api_limits.md).
"""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from console.braze.limiter import GROUPS, limits_from_settings
from console.settings import braze_limit_groups, braze_limit_overrides


def test_the_defaults_are_braze_s_documented_limits() -> None:
    assert braze_limit_groups("") == {
        "catalogs_sync": (50, 60.0),
        "catalog_items_sync": (50, 60.0),
        "catalog_items_async": (16_000, 60.0),
        "catalog_fields_selections": (50, 60.0),
        "preference_center_read": (1000, 60.0),
        "preference_center_write": (10, 60.0),
        "scim": (5000, 86400.0),  # per company
        # "Export user profile by identifier", for workspaces onboarded since 2024-08-22
        "users_export_ids": (250, 60.0),
        "translations": (250_000, 60.0),  # translations of templates and blocks
        "default": (250_000, 3600.0),  # email templates, Content Blocks
    }
    assert set(braze_limit_groups("")) == set(GROUPS)


def test_background_work_takes_at_most_0_7_of_a_group_and_leaves_a_margin() -> None:
    limits = limits_from_settings()
    assert settings.BRAZE_RATE_LIMITS["background_share"] == 0.7
    assert (limits.background_share, limits.yield_margin) == (0.7, 0.05)
    assert limits.overrides == frozenset()


def test_an_override_replaces_one_figure_and_is_marked_as_set_by_hand() -> None:
    groups = braze_limit_groups("catalogs_sync=40/60, catalog_items_async=20000")
    assert groups["catalogs_sync"] == (40, 60.0)
    assert groups["catalog_items_async"] == (20_000, 60.0)
    assert groups["catalog_items_sync"] == (50, 60.0)
    assert set(braze_limit_overrides("catalogs_sync=40/60")) == {"catalogs_sync"}


@pytest.mark.parametrize("entry", ["nope=5", "catalogs_sync", "catalogs_sync="])
def test_a_bad_override_is_refused_at_start_up(entry: str) -> None:
    with pytest.raises(ImproperlyConfigured):
        braze_limit_groups(entry)
