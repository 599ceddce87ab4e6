"""The global Braze rate limiter. README.md in this folder describes the algorithm."""

from console.braze.limiter.limits import (
    GROUPS,
    BrazeLimits,
    GroupLimit,
    Lane,
    background_cap,
    background_room,
    limits_from_settings,
    margin_count,
)
from console.braze.limiter.permit import Permit
from console.braze.limiter.reports import limiter_state, limits_in_effect
from console.braze.limiter.sliding_log import GroupUsage, RateLimiter
from console.braze.limiter.slot import Refusal, Slot

__all__ = [
    "GROUPS",
    "BrazeLimits",
    "GroupLimit",
    "GroupUsage",
    "Lane",
    "Permit",
    "RateLimiter",
    "Refusal",
    "Slot",
    "background_cap",
    "background_room",
    "limiter_state",
    "limits_from_settings",
    "limits_in_effect",
    "margin_count",
]
