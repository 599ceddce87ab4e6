"""How the apply step reaches a kind of Braze resource, without knowing any of them.

Each resource type's applier (e.g. `catalogs/appliers.py` for catalog items) is registered
with the rest of what the core knows about the type, as a `ResourceType`
(`console/changes/resource_types.py`), from its app's `AppConfig.ready()`.
"""

from typing import Any, Protocol

from console.changes.diff import same


class ApplyRefused(Exception):
    """Raised by an applier that checked and sent nothing; its message is shown as is
    (the change request fails with it, and may be retried once the cause is gone)."""


class Applier(Protocol):
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


def merge_state(
    base: dict[str, Any] | None, action: str, payload: dict[str, Any]
) -> dict[str, Any] | None:
    """The usual meaning of each action; appliers may delegate to it."""
    if action == "delete":
        return None
    if action == "update":
        return {**(base or {}), **payload}
    return dict(payload)


class ConsoleUserApplier:
    """Base for changes to one console user made in the console's own database once approved
    (``local`` resource types): the identifier is the user's id, and the snapshot is the whole
    state being changed, so any change since the proposal is a conflict. Subclasses give
    ``read_current`` and ``apply_local``."""

    def lock(self, identifier: str) -> None:
        # Imported here: this module is imported while apps load, before models may be.
        from django.contrib.auth.models import User

        User.objects.select_for_update().filter(pk=int(identifier)).first()

    def read_current(self, identifier: str) -> dict[str, Any] | None:
        raise NotImplementedError

    def is_applied(self, action: str, identifier: str, payload: dict[str, Any]) -> bool:
        return same(self.read_current(identifier), payload)

    def proposed_state(
        self, base: dict[str, Any] | None, action: str, payload: dict[str, Any]
    ) -> dict[str, Any] | None:
        return merge_state(base, action, payload)

    def apply(self, action: str, identifier: str, payload: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError(f"{type(self).__name__} changes are made by apply_local")
