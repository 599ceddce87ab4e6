"""How the apply step reaches each kind of Braze resource, without knowing any of them.

Each resource type registers one applier (e.g. `catalogs/appliers.py` for catalog items)
from its app's `AppConfig.ready()`. An applier may also define
``closed(*, change_request_id, actor)``: called after the commit that rejects or withdraws
one of its change requests, for resources holding work that now will never be applied.
It may define ``apply_update(identifier, payload, *, base)``: used for updates instead of
``apply``, with the base snapshot the change request keeps (which Braze was just found to
hold), so it can send only the fields that changed. And ``review_notes(cr)``: sentences the
change-request page shows above the diff (e.g. what Braze will do beyond the diff).

Who takes part, per resource type (attributes, all optional):
- ``propose_capability``: who proposes and edits (default PROPOSE);
- ``review_capability``: who approves or rejects (default REVIEW);
- ``view_capabilities``: who may list, open and comment on its requests at all (default
  BROWSE: whoever may read the content). Requests carrying staff personal data or changing
  who may do what name narrower ones; proposers and reviewers of the type must be among them.
- ``concerns_console_user``: the identifier is a console user's id, and that person may not
  review a request about themselves.
- ``full_rate_limit``: an approver may let its work use the whole of Braze's limit (bulk
  jobs: long background work); other types' approvers are not offered the choice.
- ``local``: the change is made in the console's own database, not Braze.
  ``apply_local(*, change_request, actor)`` then runs inside the transaction that records
  the outcome (so it writes its own audit entries and either all of it commits or none);
  it raises ``ChangeRequestError`` to refuse, with the message the request shows.
"""

import logging
from typing import Any, Protocol

from console.roles import Capability

logger = logging.getLogger(__name__)


class ApplyRefused(Exception):
    """Raised by an applier that checked and sent nothing; its message is shown as is
    (the change request fails with it, and may be retried once the cause is gone)."""


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


class LocalApplier(Applier, Protocol):
    def apply_local(self, *, change_request: Any, actor: Any) -> dict[str, Any]:
        """Make the change in the console's database (see the module's docstring)."""


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


# Requests of a type no applier knows (its app removed) are shown only to those who read
# everything: Admins and Auditors.
UNKNOWN_TYPE_VIEWERS = frozenset({Capability.MANAGE_USERS, Capability.AUDIT})


def propose_capability(resource_type: str) -> Capability:
    capability: Capability = getattr(
        get_applier(resource_type), "propose_capability", Capability.PROPOSE
    )
    return capability


def review_capability(resource_type: str) -> Capability:
    capability: Capability = getattr(
        _APPLIERS.get(resource_type), "review_capability", Capability.REVIEW
    )
    return capability


def view_capabilities(resource_type: str) -> frozenset[Capability]:
    applier = _APPLIERS.get(resource_type)
    if applier is None:
        return UNKNOWN_TYPE_VIEWERS
    return frozenset(getattr(applier, "view_capabilities", {Capability.BROWSE}))


def concerns_console_user(resource_type: str) -> bool:
    return bool(getattr(_APPLIERS.get(resource_type), "concerns_console_user", False))


def allows_full_rate_limit(resource_type: str) -> bool:
    """Whether an approver may let this resource's work use the whole of Braze's limit.

    Appliers opt in with ``full_rate_limit = True`` (bulk jobs: long background work).
    """
    return bool(getattr(_APPLIERS.get(resource_type), "full_rate_limit", False))


def is_local(resource_type: str) -> bool:
    return bool(getattr(_APPLIERS.get(resource_type), "local", False))


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
