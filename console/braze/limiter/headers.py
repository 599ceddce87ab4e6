"""Reading Braze's rate-limit headers."""

from __future__ import annotations

import email.utils


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date (RFC 9110)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def parse_rate_limit_reset(value: str | None, *, now: float) -> float | None:
    """Epoch seconds from X-RateLimit-Reset.

    Braze documents UTC epoch seconds. A small number is read as seconds from now (the
    IETF RateLimit draft's form) and a 13-digit one as epoch milliseconds, so a change of
    units never reads as a reset decades away or long past.
    """
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    if number != number or number < 0:  # NaN or negative
        return None
    if number >= 1e11:
        return number / 1000
    if number >= 1e9:
        return number
    return now + number
