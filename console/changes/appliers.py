"""How the apply step reaches each kind of Braze resource, without knowing any of them.

Each resource type registers one applier (e.g. `catalogs/appliers.py` for catalog items)
from its app's `AppConfig.ready()`. An applier may also define
``closed(*, change_request_id, actor)``: called after the commit that rejects or withdraws
one of its change requests, for resources holding work that now will never be applied.
"""

import logging
from typing import Any, Protocol

logger = logging.getLogger(__name__)


class Applier(Protocol):
    label: str  # shown in screens, e.g. "Catalog item"

    def read_current(self, identifier: str) -> dict[str, Any] | None:
        """Braze's current state of the resource; None when it does not exist."""

    def apply(self, action: str, identifier: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Send the change; returns what Braze answered. Raises BrazeError on failure."""

    def is_applied(self, action: str, identifier: str, payload: dict[str, Any]) -> bool:
        """True when Braze already holds the change (a retried task must not resend it)."""

    def proposed_state(
        self, base: dict[str, Any] | None, action: str, payload: dict[str, Any]
    ) -> dict[str, Any] | None:
        """The resource as it will be after the change (used for the field diff)."""


def allows_full_rate_limit(resource_type: str) -> bool:
    """Whether an approver may let this resource's work use the whole of Braze's limit.

    Appliers opt in with ``full_rate_limit = True`` (bulk jobs: long background work).
    """
    return bool(getattr(_APPLIERS.get(resource_type), "full_rate_limit", False))


_APPLIERS: dict[str, Applier] = {}


class UnknownResourceType(LookupError):
    pass


def register_applier(resource_type: str, applier: Applier) -> None:
    _APPLIERS[resource_type] = applier


def get_applier(resource_type: str) -> Applier:
    try:
        return _APPLIERS[resource_type]
    except KeyError:
        raise UnknownResourceType(f"No applier is registered for {resource_type!r}.") from None


def applier_closed(resource_type: str, *, change_request_id: int, actor: Any) -> None:
    """Run the resource's ``closed`` hook, if it has one (after the commit).

    The rejection or withdrawal has committed already, so a failing hook is logged, not
    raised: the resource's own sweeper is the backstop.
    """
    hook = getattr(_APPLIERS.get(resource_type), "closed", None)
    if hook is None:
        return
    try:
        hook(change_request_id=change_request_id, actor=actor)
    except Exception:
        logger.exception("closing %s for change request #%s failed", resource_type,
                         change_request_id)  # fmt: skip


def registered_types() -> dict[str, str]:
    return {key: applier.label for key, applier in sorted(_APPLIERS.items())}


def merge_state(
    base: dict[str, Any] | None, action: str, payload: dict[str, Any]
) -> dict[str, Any] | None:
    """The usual meaning of each action; appliers may delegate to it."""
    if action == "delete":
        return None
    if action == "update":
        return {**(base or {}), **payload}
    return dict(payload)
