"""Runtime knobs. Everything here can be set by CLI flag and changed by the admin API."""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Algorithm = Literal["fixed", "sliding", "token"]
ALGORITHMS: tuple[str, ...] = ("fixed", "sliding", "token")

# Which Braze the sandbox plays. "current" follows Braze's public API docs as they read today
# (braze-docs `_docs/_api/`); "reference" follows the project's older reference collection
# (shared/braze-api, split from Braze's Postman collection). The README's table lists each rule
# that differs and the profile(s) it applies to.
Profile = Literal["current", "reference"]
PROFILES: tuple[str, ...] = ("current", "reference")

# Whether the company's catalog storage refuses item writes, and how (catalogs.py,
# ``check_storage``). A switch rather than a byte budget: Braze counts storage on items and
# selections by a measure it does not publish (braze-facts §1.1), so a budget here would be
# an invented accounting that tests then depend on; what the console must handle is the
# refusal, and a switch produces either refusal on the next write and stops on the next
# write after it is cleared.
StorageLimit = Literal["none", "reached", "surge"]
STORAGE_LIMITS: tuple[str, ...] = ("none", "reached", "surge")

# Limit groups, (requests, window seconds). Current: "Rate limits by request type" in
# _docs/_api/api_limits.md. Reference: the figures in shared/braze-api.
PROFILE_LIMITS: dict[str, dict[str, tuple[int, float]]] = {
    "current": {
        "catalogs_sync": (50, 60.0),
        "catalog_items_sync": (50, 60.0),
        "catalog_items_async": (16_000, 60.0),
        "catalog_fields_selections": (50, 60.0),
        "preference_center_read": (1000, 60.0),
        "preference_center_write": (10, 60.0),
        "scim": (5000, 86400.0),
        # "Export user profile by identifier": 250/min for workspaces onboarded since
        # 22 August 2024 (40/s on request, with fields_to_export).
        "users_export_ids": (250, 60.0),
        # The translation endpoints (early access): "250,000 requests per minute".
        "translations": (250_000, 60.0),
        "default": (250_000, 3600.0),
    },
    "reference": {
        "catalogs_sync": (5, 60.0),
        "catalog_items_sync": (50, 60.0),
        "catalog_items_async": (100, 60.0),
        # The reference collection predates the field and selection endpoints.
        "catalog_fields_selections": (50, 60.0),
        "preference_center_read": (1000, 60.0),
        "preference_center_write": (10, 60.0),
        "scim": (5000, 86400.0),
        # The older page's figure: 2,500/min for customers onboarded since 16 August 2021.
        "users_export_ids": (2500, 60.0),
        # The reference collection predates the translation endpoints.
        "translations": (250_000, 60.0),
        "default": (250_000, 3600.0),
    },
}
DEFAULT_LIMITS = PROFILE_LIMITS["current"]
REFERENCE_LIMITS = PROFILE_LIMITS["reference"]


@dataclass
class GroupLimit:
    limit: int
    window_seconds: float  # in Braze time; the real window is window_seconds / clock_scale


def profile_limits(profile: str) -> dict[str, GroupLimit]:
    return {g: GroupLimit(n, w) for g, (n, w) in PROFILE_LIMITS[profile].items()}


@dataclass
class Injection:
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    # Divide injected latency by the clock scale so a scaled benchmark keeps its proportions.
    latency_scaled: bool = False
    error_rate: float = 0.0
    error_status: int = 500
    timeout_rate: float = 0.0
    timeout_mode: Literal["hold", "drop"] = "hold"
    timeout_seconds: float = 30.0
    # Braze can commit a write whose response never arrives; by default a timed-out write lands.
    timeout_applies: bool = True
    # Share of 2xx answers replaced, after the handler ran, by an unreadable body: "html" (a
    # maintenance page) or "shape" (a JSON object without the documented fields).
    malformed_rate: float = 0.0
    malformed: Literal["html", "shape"] = "html"
    # Limit injection to some groups; empty means every group.
    groups: list[str] = field(default_factory=list)


@dataclass
class ExternalConsumer:
    workspace: str
    group: str
    fraction: float


@dataclass
class SandboxConfig:
    profile: Profile = "current"
    clock_scale: float = 1.0
    algorithm: Algorithm = "fixed"
    rate_limits_enabled: bool = True
    limits: dict[str, GroupLimit] = field(default_factory=lambda: profile_limits("current"))
    async_delay_seconds: float = 0.5
    # False: bulk item requests are validated, answered and logged (item ids, counts, limits)
    # but never queued or applied, so the sandbox costs little beside the console it measures.
    store_items: bool = True
    injection: Injection = field(default_factory=Injection)
    consumers: list[ExternalConsumer] = field(default_factory=list)
    max_catalogs_per_workspace: int = 100
    max_preference_centers: int = 50
    seed_products: int = 10_000
    storage_limit: StorageLimit = "none"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def reference(self) -> bool:
        """True when the sandbox plays the older reference collection's Braze."""
        return self.profile == "reference"

    def set_profile(self, profile: str) -> None:
        """Switch profile; the limits become that profile's defaults."""
        if profile == "current":
            self.profile = "current"
        elif profile == "reference":
            self.profile = "reference"
        else:
            raise ValueError(f"profile must be one of {PROFILES}")
        self.limits = profile_limits(profile)

    def clone(self) -> SandboxConfig:
        return copy.deepcopy(self)

    def real_window(self, group: str) -> float:
        return self.limits[group].window_seconds / self.clock_scale


def parse_limit(spec: str) -> tuple[str, GroupLimit]:
    """Parse ``group=LIMIT[/WINDOW_SECONDS]`` as given to ``--limit``."""
    group, _, rest = spec.partition("=")
    if group not in DEFAULT_LIMITS or not rest:
        raise ValueError(f"expected GROUP=LIMIT[/SECONDS] with GROUP in {sorted(DEFAULT_LIMITS)}")
    count, _, window = rest.partition("/")
    return group, GroupLimit(int(count), float(window) if window else DEFAULT_LIMITS[group][1])
